//! Push rules compiled for evaluation: each user's rule set becomes a list
//! of rules in priority order whose conditions are ready to test (patterns
//! lowercased, globs turned into regular expressions once), so that one
//! event can be tested against many recipients quickly.

use std::sync::Arc;

use regex::Regex;
use ruma::push::{
    Action, ComparisonOperator, PushCondition, RoomMemberCountIs, Ruleset, ScalarJsonValue,
};
use serde_json::Value;

/// Rules the spec switches off when an event says whom it mentions.
const LEGACY_MENTION_RULES: [&str; 3] = [
    ".m.rule.contains_display_name",
    ".m.rule.roomnotif",
    ".m.rule.contains_user_name",
];

/// A glob pattern, lowercased, matched case-insensitively.
enum Matcher {
    /// No wildcards: plain comparison.
    Literal(String),
    Glob(Regex),
}

impl Matcher {
    fn new(pattern: &str, words: bool) -> Option<Self> {
        let lower = pattern.to_lowercase();
        if !lower.contains(['*', '?']) {
            return Some(Matcher::Literal(lower));
        }
        let mut re = String::from("(?is)");
        re.push_str(if words { r"(?:^|\W)" } else { "^" });
        for c in lower.chars() {
            match c {
                '*' => re.push_str(".*?"),
                '?' => re.push('.'),
                c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
            }
        }
        re.push_str(if words { r"(?:\W|$)" } else { "$" });
        Regex::new(&re).ok().map(Matcher::Glob)
    }

    fn matches(&self, value: &str, words: bool) -> bool {
        match self {
            Matcher::Glob(re) => re.is_match(value),
            // An ASCII value lowercases to ASCII, so comparing ignoring
            // ASCII case settles it without lowercasing a copy (the
            // common case: event types and msgtypes, once per recipient).
            Matcher::Literal(p) if !words && value.is_ascii() => value.eq_ignore_ascii_case(p),
            Matcher::Literal(p) if !words => value.to_lowercase() == *p,
            Matcher::Literal(p) => contains_word(&value.to_lowercase(), p),
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `word` occurs in `text` with no word character on either side.
pub fn contains_word(text: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let mut from = 0;
    while let Some(at) = text[from..].find(word).map(|i| i + from) {
        let end = at + word.len();
        let before = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !is_word_char(c));
        let after = text[end..].chars().next().is_none_or(|c| !is_word_char(c));
        if before && after {
            return true;
        }
        from = at + text[at..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// A dotted event path, split on unescaped dots.
fn split_path(key: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = key.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next @ ('.' | '\\')) => parts.last_mut().map(|p| p.push(next)).unwrap_or(()),
                Some(other) => {
                    if let Some(p) = parts.last_mut() {
                        p.push('\\');
                        p.push(other);
                    }
                }
                None => parts.last_mut().map(|p| p.push('\\')).unwrap_or(()),
            },
            '.' => parts.push(String::new()),
            c => parts.last_mut().map(|p| p.push(c)).unwrap_or(()),
        }
    }
    parts
}

fn scalar(value: &ScalarJsonValue) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

enum Condition {
    EventMatch {
        path: Vec<String>,
        words: bool,
        matcher: Matcher,
    },
    ContainsDisplayName,
    MemberCount(RoomMemberCountIs),
    SenderMayNotifyRoom,
    PropertyIs {
        path: Vec<String>,
        value: Value,
    },
    PropertyContains {
        path: Vec<String>,
        value: Value,
    },
    /// A condition this server does not know: the rule never applies.
    Unsupported,
}

impl Condition {
    fn new(condition: &PushCondition) -> Self {
        #[allow(deprecated)]
        match condition {
            PushCondition::EventMatch(c) => {
                let words = c.key == "content.body";
                match Matcher::new(&c.pattern, words) {
                    Some(matcher) => Condition::EventMatch {
                        path: split_path(&c.key),
                        words,
                        matcher,
                    },
                    None => Condition::Unsupported,
                }
            }
            PushCondition::ContainsDisplayName => Condition::ContainsDisplayName,
            PushCondition::RoomMemberCount(c) => Condition::MemberCount(c.is),
            PushCondition::SenderNotificationPermission(c) if c.key.as_str() == "room" => {
                Condition::SenderMayNotifyRoom
            }
            PushCondition::EventPropertyIs(c) => Condition::PropertyIs {
                path: split_path(&c.key),
                value: scalar(&c.value),
            },
            PushCondition::EventPropertyContains(c) => Condition::PropertyContains {
                path: split_path(&c.key),
                value: scalar(&c.value),
            },
            _ => Condition::Unsupported,
        }
    }
}

struct Rule {
    legacy_mention: bool,
    conditions: Vec<Condition>,
    actions: Vec<Action>,
}

/// One user's enabled rules in priority order.
pub struct CompiledRules {
    rules: Vec<Rule>,
}

/// The event being tested: its client form, with the lowercased body.
pub struct EventView {
    event: Value,
    body_lower: Option<String>,
    mentions: bool,
}

impl EventView {
    pub fn new(event: Value) -> Self {
        let body_lower = event["content"]["body"].as_str().map(str::to_lowercase);
        let mentions = event["content"].get("m.mentions").is_some();
        Self {
            event,
            body_lower,
            mentions,
        }
    }

    pub fn content(&self) -> &Value {
        &self.event["content"]
    }

    fn get(&self, path: &[String]) -> Option<&Value> {
        path.iter().try_fold(&self.event, |v, key| v.get(key))
    }
}

/// Who is asking and what the room is like.
pub struct RuleContext<'a> {
    pub display_name_lower: &'a str,
    pub member_count: u64,
    pub sender_may_notify_room: bool,
}

impl CompiledRules {
    pub fn new(rules: &Ruleset) -> Arc<Self> {
        let mut out = Vec::new();
        for rule in rules.iter().filter(|r| r.enabled()) {
            use ruma::push::AnyPushRuleRef as R;
            let (id, conditions) = match rule {
                R::Override(r) | R::Underride(r) => (
                    r.rule_id.as_str(),
                    r.conditions.iter().map(Condition::new).collect(),
                ),
                R::Content(r) => (
                    r.rule_id.as_str(),
                    vec![
                        Matcher::new(&r.pattern, true).map_or(Condition::Unsupported, |m| {
                            Condition::EventMatch {
                                path: split_path("content.body"),
                                words: true,
                                matcher: m,
                            }
                        }),
                    ],
                ),
                R::Room(r) => (
                    r.rule_id.as_str(),
                    vec![Condition::PropertyIs {
                        path: vec!["room_id".into()],
                        value: Value::String(r.rule_id.to_string()),
                    }],
                ),
                R::Sender(r) => (
                    r.rule_id.as_str(),
                    vec![Condition::PropertyIs {
                        path: vec!["sender".into()],
                        value: Value::String(r.rule_id.to_string()),
                    }],
                ),
                _ => (rule.rule_id(), vec![Condition::Unsupported]),
            };
            out.push(Rule {
                legacy_mention: LEGACY_MENTION_RULES.contains(&id),
                conditions,
                actions: rule.actions().to_vec(),
            });
        }
        Arc::new(Self { rules: out })
    }

    /// The actions of the first rule that applies (none: empty).
    pub fn actions(&self, event: &EventView, ctx: &RuleContext<'_>) -> &[Action] {
        self.rules
            .iter()
            .find(|rule| {
                !(rule.legacy_mention && event.mentions)
                    && rule.conditions.iter().all(|c| applies(c, event, ctx))
            })
            .map_or(&[], |rule| rule.actions.as_slice())
    }
}

fn applies(condition: &Condition, event: &EventView, ctx: &RuleContext<'_>) -> bool {
    match condition {
        Condition::EventMatch {
            path,
            words,
            matcher,
        } => {
            match event.get(path).and_then(Value::as_str) {
                Some(value) if *words => match (&event.body_lower, matcher) {
                    // The body is lowercased once per event.
                    (Some(body), Matcher::Literal(p)) if path.len() == 2 => contains_word(body, p),
                    _ => matcher.matches(value, true),
                },
                Some(value) => matcher.matches(value, false),
                None => false,
            }
        }
        Condition::ContainsDisplayName => event
            .body_lower
            .as_deref()
            .is_some_and(|body| contains_word(body, ctx.display_name_lower)),
        Condition::MemberCount(is) => {
            let n = ctx.member_count;
            let want = u64::from(is.count);
            match is.prefix {
                ComparisonOperator::Eq => n == want,
                ComparisonOperator::Lt => n < want,
                ComparisonOperator::Gt => n > want,
                ComparisonOperator::Ge => n >= want,
                ComparisonOperator::Le => n <= want,
            }
        }
        Condition::SenderMayNotifyRoom => ctx.sender_may_notify_room,
        Condition::PropertyIs { path, value } => event.get(path) == Some(value),
        Condition::PropertyContains { path, value } => event
            .get(path)
            .and_then(Value::as_array)
            .is_some_and(|items| items.contains(value)),
        Condition::Unsupported => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruma::UserId;
    use serde_json::json;

    fn view(content: Value) -> EventView {
        EventView::new(json!({
            "type": "m.room.message", "sender": "@bob:x", "room_id": "!r:x", "content": content,
        }))
    }

    fn ctx(members: u64, may_notify: bool) -> RuleContext<'static> {
        RuleContext {
            display_name_lower: "alice",
            member_count: members,
            sender_may_notify_room: may_notify,
        }
    }

    fn notifies(actions: &[Action]) -> (bool, bool) {
        (
            actions.iter().any(Action::should_notify),
            actions.iter().any(Action::is_highlight),
        )
    }

    #[test]
    fn default_rules_as_the_spec_describes() {
        let alice = UserId::parse("@alice:x").unwrap();
        let rules = CompiledRules::new(&Ruleset::server_default(&alice));
        let text = json!({ "msgtype": "m.text", "body": "hi" });
        assert_eq!(
            notifies(rules.actions(&view(text.clone()), &ctx(2, false))),
            (true, false)
        );
        assert_eq!(
            notifies(rules.actions(&view(text), &ctx(5, false))),
            (true, false)
        );
        let notice = json!({ "msgtype": "m.notice", "body": "bot" });
        assert_eq!(
            notifies(rules.actions(&view(notice), &ctx(2, false))),
            (false, false)
        );
        let mention = json!({ "body": "x", "m.mentions": { "user_ids": ["@alice:x"] } });
        assert_eq!(
            notifies(rules.actions(&view(mention), &ctx(5, false))),
            (true, true)
        );
        let room = json!({ "body": "@room", "m.mentions": { "room": true } });
        assert_eq!(
            notifies(rules.actions(&view(room.clone()), &ctx(5, true))),
            (true, true)
        );
        assert_eq!(
            notifies(rules.actions(&view(room), &ctx(5, false))),
            (true, false)
        );
        let edit =
            json!({ "body": "* x", "m.relates_to": { "rel_type": "m.replace", "event_id": "$e" } });
        assert_eq!(
            notifies(rules.actions(&view(edit), &ctx(2, false))),
            (false, false)
        );
    }

    #[test]
    fn globs_words_and_paths() {
        assert!(contains_word("hello alice!", "alice"));
        assert!(!contains_word("malice", "alice"));
        assert!(contains_word("é alice", "alice"));
        let glob = Matcher::new("cake*lie", true).unwrap();
        assert!(glob.matches("The CAKE is a lie.", true));
        assert!(!glob.matches("cakes are lies", true));
        let whole = Matcher::new("m.room.*", false).unwrap();
        assert!(whole.matches("m.room.message", false));
        assert!(!whole.matches("xm.room.message", false));
        let literal = Matcher::new("M.Notice", false).unwrap();
        assert!(literal.matches("m.notice", false));
        assert!(literal.matches("M.NOTICE", false));
        assert!(!literal.matches("m.notices", false));
        assert!(!literal.matches("m.text", false));
        let accented = Matcher::new("ÉTÉ", false).unwrap();
        assert!(accented.matches("été", false));
        assert!(accented.matches("Été", false));
        assert!(!accented.matches("ete", false));
        assert_eq!(
            split_path(r"content.m\.relates_to.rel_type"),
            vec!["content", "m.relates_to", "rel_type"]
        );
    }
}
