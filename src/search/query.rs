//! What a search term asks for, in the syntax Synapse's Postgres search
//! takes (web search style): words must all appear, each also matching
//! as the start of a longer word; `"quoted words"` must appear together;
//! `-word` must not appear; `or` between words lets either side match.

use tantivy::query::{BooleanQuery, Occur, PhrasePrefixQuery, PhraseQuery, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::Term;

use super::tokens::terms;

/// Past this many words and phrases the rest of a search term is ignored.
const MAX_PARTS: usize = 32;

/// A word shorter than this matches only itself, not as a prefix (a
/// prefix of one or two letters would match most of the index).
const MIN_PREFIX_CHARS: usize = 3;

/// A word or a quoted phrase of the search term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Word(String),
    Phrase(String),
}

/// A search term, parsed: any one group may match (`or`); within a group
/// every part must; no excluded part may.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub groups: Vec<Vec<Part>>,
    pub excluded: Vec<Part>,
}

impl Parsed {
    pub fn parse(text: &str) -> Parsed {
        let mut parsed = Parsed::default();
        let mut group = Vec::new();
        let mut chars = text.chars().peekable();
        let mut parts = 0;
        while parts < MAX_PARTS {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(&first) = chars.peek() else {
                break;
            };
            let negated = first == '-';
            if negated {
                chars.next();
            }
            let part = if chars.next_if_eq(&'"').is_some() {
                Part::Phrase(chars.by_ref().take_while(|c| *c != '"').collect())
            } else {
                let mut word = String::new();
                while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '"') {
                    word.push(c);
                }
                Part::Word(word)
            };
            parts += 1;
            if negated {
                parsed.excluded.push(part);
            } else if matches!(&part, Part::Word(w) if w.eq_ignore_ascii_case("or")) {
                if !group.is_empty() {
                    parsed.groups.push(std::mem::take(&mut group));
                }
            } else {
                group.push(part);
            }
        }
        if !group.is_empty() {
            parsed.groups.push(group);
        }
        parsed
    }

    /// The terms a result's words are highlighted by: those of every part
    /// that may match, with whether a word may only start with it.
    pub fn highlight_terms(&self, analyzer: &mut TextAnalyzer) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        for part in self.groups.iter().flatten() {
            let (text, prefix) = match part {
                Part::Word(w) => (w, true),
                Part::Phrase(p) => (p, false),
            };
            for term in terms(analyzer, text) {
                let prefix = prefix && term.chars().count() >= MIN_PREFIX_CHARS;
                out.push((term, prefix));
            }
        }
        out
    }

    /// The query over `fields`, or `None` when nothing could match (no
    /// searchable word in any group).
    pub fn query(&self, analyzer: &mut TextAnalyzer, fields: &[Field]) -> Option<Box<dyn Query>> {
        let mut groups = Vec::new();
        for group in &self.groups {
            let parts: Vec<_> = group
                .iter()
                .filter_map(|part| part_query(analyzer, fields, part))
                .collect();
            if !parts.is_empty() {
                groups.push((Occur::Should, all_of(parts)));
            }
        }
        if groups.is_empty() {
            return None;
        }
        let mut top = vec![(Occur::Must, Box::new(BooleanQuery::new(groups)) as _)];
        for part in &self.excluded {
            if let Some(query) = part_query(analyzer, fields, part) {
                top.push((Occur::MustNot, query));
            }
        }
        Some(Box::new(BooleanQuery::new(top)))
    }
}

fn all_of(parts: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(
        parts.into_iter().map(|q| (Occur::Must, q)).collect(),
    ))
}

/// One part in any of the fields; `None` when it has no searchable word.
fn part_query(
    analyzer: &mut TextAnalyzer,
    fields: &[Field],
    part: &Part,
) -> Option<Box<dyn Query>> {
    let (text, is_word) = match part {
        Part::Word(w) => (w, true),
        Part::Phrase(p) => (p, false),
    };
    let words = terms(analyzer, text);
    if words.is_empty() {
        return None;
    }
    let as_prefix = is_word
        && words
            .last()
            .is_some_and(|w| w.chars().count() >= MIN_PREFIX_CHARS);
    let per_field = fields
        .iter()
        .map(|field| {
            let in_field: Vec<Term> = words
                .iter()
                .map(|w| Term::from_field_text(*field, w))
                .collect();
            (Occur::Should, field_query(in_field, as_prefix))
        })
        .collect();
    Some(Box::new(BooleanQuery::new(per_field)))
}

/// A word matches itself (scored) or, long enough, longer words it
/// starts; several terms (a phrase, or a word such as `e-mail` or
/// `東京` that cuts into several) match next to each other, a word's last
/// one also as a prefix.
fn field_query(mut terms: Vec<Term>, as_prefix: bool) -> Box<dyn Query> {
    if terms.len() == 1 {
        let Some(term) = terms.pop() else {
            unreachable!("one term")
        };
        let exact = Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs));
        if !as_prefix {
            return exact;
        }
        let prefix = Box::new(PhrasePrefixQuery::new(vec![term]));
        return Box::new(BooleanQuery::new(vec![
            (Occur::Should, exact as Box<dyn Query>),
            (Occur::Should, prefix),
        ]));
    }
    if as_prefix {
        Box::new(PhrasePrefixQuery::new(terms))
    } else {
        Box::new(PhraseQuery::new(terms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(w: &str) -> Part {
        Part::Word(w.to_owned())
    }

    #[test]
    fn words_phrases_exclusions_and_or() {
        let parsed = Parsed::parse(r#"  lunch "at noon" -dinner  or  brunch -"late night" "#);
        assert_eq!(
            parsed.groups,
            vec![
                vec![word("lunch"), Part::Phrase("at noon".to_owned())],
                vec![word("brunch")],
            ]
        );
        assert_eq!(
            parsed.excluded,
            vec![word("dinner"), Part::Phrase("late night".to_owned())]
        );
    }

    #[test]
    fn odd_input_parses_to_something_or_nothing() {
        assert_eq!(Parsed::parse(""), Parsed::default());
        assert_eq!(Parsed::parse("or or"), Parsed::default());
        assert_eq!(
            Parsed::parse("\"unclosed"),
            Parsed {
                groups: vec![vec![Part::Phrase("unclosed".to_owned())]],
                excluded: Vec::new(),
            }
        );
        let many = "w ".repeat(1000);
        assert_eq!(Parsed::parse(&many).groups[0].len(), MAX_PARTS);
    }
}
