//! File and history tools over the git home.

use serde_json::Value;

use super::args::{blocking, committed, limit, optional, required};
use crate::host::{Host, RunContext};

/// Most characters of a file or diff handed back to the model.
const MAX_OUTPUT: usize = 60_000;

fn clip(mut text: String) -> String {
    if text.len() > MAX_OUTPUT {
        let mut cut = MAX_OUTPUT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n[…cut]");
    }
    text
}

pub async fn run<H: Host>(
    ctx: &RunContext<H>,
    name: &str,
    input: &Value,
) -> Result<String, String> {
    let home = &ctx.home;
    match name {
        "read_file" => {
            let path = required(input, "path")?.to_owned();
            blocking(home, move |h| h.read(&path)).await.map(clip)
        }
        "write_file" => {
            let path = required(input, "path")?.to_owned();
            let content = required(input, "content")?.to_owned();
            let message =
                optional(input, "message").map_or_else(|| format!("Write {path}"), str::to_owned);
            let result = blocking(home, move |h| h.write(&path, &content, &message)).await?;
            after_change(ctx, input);
            Ok(committed(result))
        }
        "edit_file" => {
            let path = required(input, "path")?.to_owned();
            let old = required(input, "old_text")?.to_owned();
            let new = required(input, "new_text")?.to_owned();
            let message = format!("Edit {path}");
            let result = blocking(home, move |h| h.edit(&path, &old, &new, &message)).await?;
            after_change(ctx, input);
            Ok(committed(result))
        }
        "delete_file" => {
            let path = required(input, "path")?.to_owned();
            let message = format!("Delete {path}");
            blocking(home, move |h| h.delete(&path, &message))
                .await
                .map(committed)
        }
        "list_files" => {
            let path = optional(input, "path").unwrap_or("").to_owned();
            let files = blocking(home, move |h| h.list(&path, 500)).await?;
            Ok(if files.is_empty() {
                "(empty)".into()
            } else {
                files.join("\n")
            })
        }
        "search_files" => {
            let query = required(input, "query")?.to_owned();
            let hits = blocking(home, move |h| h.search(&query, 50)).await?;
            Ok(if hits.is_empty() {
                "No matches.".into()
            } else {
                hits.join("\n")
            })
        }
        "git_log" => {
            let path = optional(input, "path").map(str::to_owned);
            let n = limit(input, 20, 200);
            let log = blocking(home, move |h| h.log(path.as_deref(), n)).await?;
            let lines: Vec<String> = log
                .iter()
                .map(|c| {
                    let when = chrono::DateTime::<chrono::Utc>::from_timestamp(c.time, 0)
                        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_default();
                    format!("{} {when} {}", &c.id[..10], c.message)
                })
                .collect();
            Ok(lines.join("\n"))
        }
        "git_diff" => {
            let rev = optional(input, "revision").map(str::to_owned);
            let path = optional(input, "path").map(str::to_owned);
            let diff = blocking(home, move |h| {
                h.diff(rev.as_deref(), path.as_deref(), MAX_OUTPUT)
            })
            .await?;
            Ok(if diff.is_empty() {
                "No changes.".into()
            } else {
                clip(diff)
            })
        }
        "restore_file" => {
            let path = required(input, "path")?.to_owned();
            let rev = required(input, "revision")?.to_owned();
            let result = blocking(home, move |h| h.restore(&path, &rev)).await?;
            after_change(ctx, input);
            Ok(committed(result))
        }
        _ => Err(format!("There is no tool called {name}.")),
    }
}

/// A hand edit of the reminders file takes effect at once.
fn after_change<H: Host>(ctx: &RunContext<H>, input: &Value) {
    let path = input["path"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("./");
    if path == crate::reminders::CRON_FILE {
        ctx.host.reminders_changed(&ctx.owner);
    }
}
