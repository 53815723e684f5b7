//! Notes the AI is asked to keep, in `system/memory.md` (one line each).

use serde_json::Value;

use super::args::{blocking, optional, required};
use crate::host::{Host, RunContext};

pub const MEMORY_FILE: &str = "system/memory.md";

pub async fn run<H: Host>(
    ctx: &RunContext<H>,
    name: &str,
    input: &Value,
) -> Result<String, String> {
    match name {
        "remember" => remember(ctx, required(input, "note")?).await,
        "recall" => recall(ctx, optional(input, "query")).await,
        _ => Err(format!("There is no tool called {name}.")),
    }
}

pub async fn remember<H: Host>(ctx: &RunContext<H>, note: &str) -> Result<String, String> {
    let note = note.split_whitespace().collect::<Vec<_>>().join(" ");
    if note.is_empty() {
        return Err("There is nothing to remember.".into());
    }
    let date = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ctx.now_ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let line = format!("- {date}: {note}\n");
    let short: String = note.chars().take(60).collect();
    blocking(&ctx.home, move |h| {
        let mut text = h.read(MEMORY_FILE).unwrap_or_else(|_| "# Memory\n".into());
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&line);
        h.write(MEMORY_FILE, &text, &format!("Remember: {short}"))
    })
    .await?;
    Ok(format!("Noted: {note}"))
}

pub async fn recall<H: Host>(ctx: &RunContext<H>, query: Option<&str>) -> Result<String, String> {
    let text = blocking(&ctx.home, |h| h.read(MEMORY_FILE))
        .await
        .unwrap_or_default();
    let needle = query.map(str::to_lowercase);
    let notes: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("- "))
        .filter(|l| needle.as_ref().is_none_or(|n| l.to_lowercase().contains(n)))
        .collect();
    Ok(if notes.is_empty() {
        "Nothing remembered yet.".into()
    } else {
        notes.join("\n")
    })
}
