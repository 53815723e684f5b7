//! Per-room conversation history: what a run carries into the model, and
//! trimming it to the configured budget.

use crate::llm::{Block, Message, Role};

/// Drops the oldest messages until the history fits `budget` tokens, then
/// any that no longer start a turn (an answer or tool result without the
/// question before it).
pub fn trim(history: &mut Vec<Message>, budget: usize) {
    let mut total: usize = history.iter().map(Message::estimated_tokens).sum();
    let mut drop = 0;
    while drop < history.len() && total > budget {
        total -= history[drop].estimated_tokens();
        drop += 1;
    }
    while drop < history.len() && !starts_turn(&history[drop]) {
        drop += 1;
    }
    history.drain(..drop);
}

fn starts_turn(m: &Message) -> bool {
    m.role == Role::User
        && !m
            .content
            .iter()
            .any(|b| matches!(b, Block::ToolResult { .. }))
}

/// The history as a guest run may see it: the words said in the room, none
/// of the tool traffic of the owner's runs.
pub fn words_only(history: &[Message]) -> Vec<Message> {
    history
        .iter()
        .filter_map(|m| {
            let text = m.text();
            (!text.is_empty()).then(|| Message {
                role: m.role,
                content: vec![Block::Text { text }],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool_turn() -> Vec<Message> {
        vec![
            Message::user_text("read my diary"),
            Message {
                role: Role::Assistant,
                content: vec![Block::ToolUse {
                    id: "t".into(),
                    name: "read_file".into(),
                    input: json!({}),
                }],
            },
            Message {
                role: Role::User,
                content: vec![Block::ToolResult {
                    tool_use_id: "t".into(),
                    content: "SECRET".into(),
                    is_error: false,
                }],
            },
            Message::assistant_text("done"),
        ]
    }

    #[test]
    fn trimming_keeps_whole_turns() {
        let mut h = tool_turn();
        h.push(Message::user_text("x".repeat(400)));
        h.push(Message::assistant_text("ok"));
        trim(&mut h, 120);
        assert_eq!(h.len(), 2);
        assert!(starts_turn(&h[0]));
    }

    #[test]
    fn guests_never_see_tool_results() {
        let seen = words_only(&tool_turn());
        assert_eq!(seen.len(), 2);
        assert!(!serde_json::to_string(&seen).unwrap().contains("SECRET"));
    }
}
