//! What a page says of itself: its Open Graph tags (`og:*`), else its
//! `<title>` and `<meta name="description">`, read from the HTML's text.
//! Only tags and attribute values are looked at; no script runs, nothing
//! else is fetched.

use std::collections::BTreeMap;

/// The longest value kept of any one tag, in characters.
const MAX_VALUE_CHARS: usize = 2000;
/// Most `og:` properties kept of one page.
const MAX_PROPERTIES: usize = 32;

/// The Open Graph properties of a page, with `og:title` and
/// `og:description` filled in from `<title>` and the description meta tag
/// when the page has none.
pub fn open_graph(html: &str) -> BTreeMap<String, String> {
    let mut og = BTreeMap::new();
    let (mut title, mut description) = (None, None);
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..end];
        let name = tag_name(tag);
        if name.eq_ignore_ascii_case("meta") {
            let attrs = attributes(tag);
            let key = attrs
                .get("property")
                .or_else(|| attrs.get("name"))
                .map(|k| k.to_ascii_lowercase());
            let value = attrs.get("content").map(|v| clip(&decode(v)));
            match (key.as_deref(), value) {
                (Some(k), Some(v)) if k.starts_with("og:") && og.len() < MAX_PROPERTIES => {
                    og.entry(k.to_owned()).or_insert(v);
                }
                (Some("description"), Some(v)) => description = description.or(Some(v)),
                _ => {}
            }
        } else if name.eq_ignore_ascii_case("title") && title.is_none() {
            let body = &rest[(end + 1).min(rest.len())..];
            let close = find_ignore_case(body, "</title").unwrap_or(body.len());
            title = Some(clip(decode(&body[..close]).trim())).filter(|t| !t.is_empty());
        }
        rest = &rest[end.min(rest.len())..];
    }
    if let Some(t) = title {
        og.entry("og:title".to_owned()).or_insert(t);
    }
    if let Some(d) = description {
        og.entry("og:description".to_owned()).or_insert(d);
    }
    og
}

fn tag_name(tag: &str) -> &str {
    let end = tag
        .find(|c: char| c.is_whitespace() || c == '/')
        .unwrap_or(tag.len());
    &tag[..end]
}

/// The attributes of a tag's text (`name="value"`, `name='value'` or
/// `name=value`), names lower-cased.
fn attributes(tag: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = &tag[tag_name(tag).len()..];
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        let name_end = rest
            .find(|c: char| c == '=' || c.is_whitespace() || c == '/')
            .unwrap_or(rest.len());
        if name_end == 0 {
            return out;
        }
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        let Some(after) = rest.strip_prefix('=') else {
            out.entry(name).or_default();
            continue;
        };
        let after = after.trim_start();
        let (value, remaining) = match after.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let inner = &after[1..];
                let close = inner.find(quote).unwrap_or(inner.len());
                (&inner[..close], &inner[(close + 1).min(inner.len())..])
            }
            _ => {
                let close = after.find(char::is_whitespace).unwrap_or(after.len());
                (&after[..close], &after[close..])
            }
        };
        out.entry(name).or_insert_with(|| value.to_owned());
        rest = remaining;
    }
}

fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The common character references; others are left as written.
fn decode(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

fn clip(text: &str) -> String {
    text.chars().take(MAX_VALUE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_graph_tags_win_over_title_and_description() {
        let page = r#"<html><head><TITLE>Plain &amp; simple</TITLE>
            <meta property="og:title" content="The &quot;real&quot; title">
            <meta name=description content='A page'>
            <meta property="og:image" content="/cat.png" />
            </head><body><meta property="og:title" content="ignored"></body></html>"#;
        let og = open_graph(page);
        assert_eq!(og["og:title"], "The \"real\" title");
        assert_eq!(og["og:description"], "A page");
        assert_eq!(og["og:image"], "/cat.png");
    }

    #[test]
    fn title_and_description_stand_in() {
        let og = open_graph("<title> Hello </title><meta name=\"description\" content=\"Words\">");
        assert_eq!(og["og:title"], "Hello");
        assert_eq!(og["og:description"], "Words");
        assert!(open_graph("no tags at all").is_empty());
        assert!(open_graph("<meta <<< property=").is_empty());
    }
}
