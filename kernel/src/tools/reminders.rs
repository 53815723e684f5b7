//! Reminder tools over `system/cron.json`.

use serde_json::Value;

use super::args::{blocking, optional, required};
use crate::cron::CronExpr;
use crate::host::{Host, RunContext};
use crate::reminders::{CronFile, Reminder, CRON_FILE};

pub async fn run<H: Host>(
    ctx: &RunContext<H>,
    name: &str,
    input: &Value,
) -> Result<String, String> {
    match name {
        "set_reminder" => {
            let text = required(input, "text")?;
            let when = When::from_input(input, ctx.now_ms)?;
            add_reminder(ctx, text, when).await
        }
        "list_reminders" => {
            let file = load(ctx).await?;
            let lines: Vec<String> = file.reminders.iter().map(Reminder::describe).collect();
            Ok(if lines.is_empty() {
                "No reminders.".into()
            } else {
                lines.join("\n")
            })
        }
        "cancel_reminder" => {
            let id = required(input, "id")?.to_owned();
            let result = blocking(&ctx.home, move |h| {
                let mut file = CronFile::parse(&h.read(CRON_FILE)?)
                    .map_err(crate::home::HomeError::Invalid)?;
                let before = file.reminders.len();
                file.reminders.retain(|r| r.id != id);
                if file.reminders.len() == before {
                    return Ok(None);
                }
                h.write(CRON_FILE, &file.to_text(), &format!("Cancel reminder {id}"))
                    .map(|_| Some(id))
            })
            .await?;
            ctx.host.reminders_changed(&ctx.owner);
            result
                .map(|id| format!("Cancelled {id}."))
                .ok_or_else(|| "No reminder has that id.".into())
        }
        _ => Err(format!("There is no tool called {name}.")),
    }
}

async fn load<H: Host>(ctx: &RunContext<H>) -> Result<CronFile, String> {
    let text = blocking(&ctx.home, |h| h.read(CRON_FILE))
        .await
        .unwrap_or_default();
    if text.trim().is_empty() {
        return Ok(CronFile::default());
    }
    CronFile::parse(&text)
}

/// When a new reminder fires.
pub enum When {
    At(i64),
    Cron(String),
}

impl When {
    fn from_input(input: &Value, now_ms: i64) -> Result<Self, String> {
        let at = optional(input, "at");
        let minutes = input["in_minutes"].as_f64();
        let cron = optional(input, "cron");
        match (at, minutes, cron) {
            (Some(at), None, None) => chrono::DateTime::parse_from_rfc3339(at)
                .map(|t| When::At(t.timestamp_millis()))
                .map_err(|_| format!("{at:?} is not an RFC 3339 time like 2026-01-31T09:00:00Z.")),
            (None, Some(m), None) if (0.0..=525_600.0).contains(&m) => {
                Ok(When::At(now_ms + (m * 60_000.0) as i64))
            }
            (None, None, Some(cron)) => {
                CronExpr::parse(cron)?;
                Ok(When::Cron(cron.to_owned()))
            }
            _ => Err("Give exactly one of at, in_minutes (0 to 525600) or cron.".into()),
        }
    }
}

/// Adds a reminder for this run's room and commits it.
pub async fn add_reminder<H: Host>(
    ctx: &RunContext<H>,
    text: &str,
    when: When,
) -> Result<String, String> {
    let text = text.trim().to_owned();
    if text.is_empty() || text.len() > 1000 {
        return Err("A reminder needs a text of at most 1000 characters.".into());
    }
    let (room, sender) = (ctx.room.clone(), ctx.sender.clone());
    let reminder = blocking(&ctx.home, move |h| {
        let current = h.read(CRON_FILE).unwrap_or_default();
        let mut file = if current.trim().is_empty() {
            CronFile::default()
        } else {
            CronFile::parse(&current).map_err(crate::home::HomeError::Invalid)?
        };
        let (at, cron) = match when {
            When::At(ms) => (Some(ms), None),
            When::Cron(c) => (None, Some(c)),
        };
        let reminder = Reminder {
            id: file.next_id(),
            room,
            text,
            at,
            cron,
            created_by: sender,
        };
        file.reminders.push(reminder.clone());
        h.write(
            CRON_FILE,
            &file.to_text(),
            &format!("Add reminder {}: {}", reminder.id, reminder.text),
        )?;
        Ok(reminder)
    })
    .await?;
    ctx.host.reminders_changed(&ctx.owner);
    Ok(format!("Reminder set: {}", reminder.describe()))
}
