//! How message text is cut into searchable terms, the same for what is
//! indexed and for what is searched: words of letters and digits of any
//! script, except that each Chinese or Japanese character is a term of its
//! own (those scripts do not separate words with spaces, so a search for
//! a few characters is a phrase of them); then lower-cased, folded to
//! ASCII where a letter has an ASCII form ("café" finds "cafe"), and
//! reduced to an English stem ("meetings" finds "meeting"), as Synapse's
//! Postgres search does.

use std::str::CharIndices;

use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, Stemmer, TextAnalyzer, Token,
    TokenStream, Tokenizer,
};

/// The name the analyzer is registered under in the index.
pub const ANALYZER: &str = "matrix";

/// Longer words are not indexed (base64 blobs, URLs' long parts).
const MAX_WORD_BYTES: usize = 60;

/// Han ideographs, hiragana and katakana: one term per character.
pub fn stands_alone(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{FF66}'..='\u{FF9F}'
        | '\u{20000}'..='\u{2FA1F}')
}

fn in_word(c: char) -> bool {
    c.is_alphanumeric() && !stands_alone(c)
}

/// The text analyzer for message bodies, names, topics and searches.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(Words::default())
        .filter(RemoveLongFilter::limit(MAX_WORD_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The terms of a text, in order.
pub fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while let Some(token) = stream.next() {
        out.push(token.text.clone());
    }
    out
}

/// Splits text into words and lone characters.
#[derive(Clone, Default)]
pub struct Words {
    token: Token,
}

pub struct WordStream<'a> {
    text: &'a str,
    chars: std::iter::Peekable<CharIndices<'a>>,
    token: &'a mut Token,
}

impl Tokenizer for Words {
    type TokenStream<'a> = WordStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordStream<'a> {
        self.token.reset();
        WordStream {
            text,
            chars: text.char_indices().peekable(),
            token: &mut self.token,
        }
    }
}

impl WordStream<'_> {
    fn emit(&mut self, from: usize, to: usize) -> bool {
        self.token.text.clear();
        self.token.text.push_str(&self.text[from..to]);
        self.token.offset_from = from;
        self.token.offset_to = to;
        self.token.position = self.token.position.wrapping_add(1);
        true
    }
}

impl TokenStream for WordStream<'_> {
    fn advance(&mut self) -> bool {
        while let Some((from, c)) = self.chars.next() {
            if stands_alone(c) {
                return self.emit(from, from + c.len_utf8());
            }
            if in_word(c) {
                let mut to = from + c.len_utf8();
                while let Some(&(at, next)) = self.chars.peek() {
                    if !in_word(next) {
                        break;
                    }
                    to = at + next.len_utf8();
                    self.chars.next();
                }
                return self.emit(from, to);
            }
        }
        false
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<String> {
        terms(&mut analyzer(), text)
    }

    #[test]
    fn words_of_every_script_are_folded_and_stemmed() {
        assert_eq!(all("Hello, Meetings!"), ["hello", "meet"]);
        assert_eq!(all("Café crème"), ["cafe", "creme"]);
        assert_eq!(all("Привет мир"), ["привет", "мир"]);
        assert_eq!(all("e-mail x2"), ["e", "mail", "x2"]);
    }

    #[test]
    fn chinese_and_japanese_characters_stand_alone() {
        assert_eq!(all("今天天气"), ["今", "天", "天", "气"]);
        assert_eq!(all("abc東京def"), ["abc", "東", "京", "def"]);
        assert_eq!(all("カタカナ"), ["カ", "タ", "カ", "ナ"]);
    }

    #[test]
    fn positions_follow_each_other() {
        let mut analyzer = analyzer();
        let mut stream = analyzer.token_stream("one 二三 four");
        let mut positions = Vec::new();
        while let Some(token) = stream.next() {
            positions.push(token.position);
        }
        assert_eq!(positions, [0, 1, 2, 3]);
    }
}
