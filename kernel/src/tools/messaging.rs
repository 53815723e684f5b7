//! Talking to rooms, and reading back what the AI did.

use serde_json::Value;

use super::args::{limit, required};
use crate::host::{Host, RunContext};

pub async fn send<H: Host>(ctx: &RunContext<H>, input: &Value) -> Result<String, String> {
    let room = required(input, "room_id")?;
    let text = required(input, "text")?;
    let event = ctx.host.send_text(&ctx.ai, room, text).await?;
    Ok(format!("Sent ({event})."))
}

pub fn recent_activity<H: Host>(ctx: &RunContext<H>, input: &Value) -> String {
    let runs = ctx.host.recent_runs(&ctx.owner, limit(input, 10, 100));
    if runs.is_empty() {
        return "No runs recorded yet.".into();
    }
    runs.iter()
        .map(|r| r.summary())
        .collect::<Vec<_>>()
        .join("\n")
}
