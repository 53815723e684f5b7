//! The offline kernel: what the AI does with no model configured. It
//! understands a few plain requests (reminders, notes, apps) and says
//! honestly that anything else needs a model.

use crate::host::{Host, RunContext};
use crate::ledger::{RunRecord, ToolCall};
use crate::privacy::Audience;
use crate::tools::{self, add_reminder};

const HELP: &str = "I am running without a language model, so I cannot write free-form answers yet. \
What I can do right now:\n\
- remind me in 10 minutes to stretch / remind me at 14:30 to call Bob (UTC)\n\
- remember <something> / what do you remember\n\
- list apps / open <app>\n\
- install <notes|todo|counter>\n\
For everything else, the server admin needs to configure a model in the [ai] section (Anthropic, OpenAI or any OpenAI-compatible server such as Ollama).";

fn lower_trimmed(text: &str) -> String {
    text.trim().trim_end_matches(['.', '!', '?']).to_lowercase()
}

/// Parses "in 10 minutes to X", "in 2 hours to X", "at 14:30 to X".
fn parse_reminder(rest: &str, now_ms: i64) -> Option<(i64, String)> {
    let (when, what) = rest
        .split_once(" to ")
        .or_else(|| rest.split_once(" that "))?;
    let words: Vec<&str> = when.split_whitespace().collect();
    let at = match words.as_slice() {
        ["in", n, unit] => {
            let n: f64 = n.parse().ok()?;
            let minutes = match unit.trim_end_matches('s') {
                "second" | "sec" => n / 60.0,
                "minute" | "min" => n,
                "hour" => n * 60.0,
                "day" => n * 1440.0,
                _ => return None,
            };
            (n >= 0.0 && minutes <= 525_600.0).then(|| now_ms + (minutes * 60_000.0) as i64)?
        }
        ["at", time] => {
            let (h, m) = time.split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            let now = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now_ms)?;
            let today = now.date_naive().and_hms_opt(h, m, 0)?.and_utc();
            let t = if today <= now {
                today + chrono::Duration::days(1)
            } else {
                today
            };
            t.timestamp_millis()
        }
        _ => return None,
    };
    Some((at, what.trim().to_owned()))
}

async fn tool(
    audience: &Audience,
    record: &mut RunRecord,
    name: &str,
    work: impl std::future::Future<Output = Result<String, String>>,
) -> String {
    if !audience.may_use(name) {
        return "That is not something I can do for you here. I can pass a message on to my owner."
            .into();
    }
    let result = work.await;
    record.tools.push(ToolCall {
        name: name.into(),
        ok: result.is_ok(),
        detail: result.as_ref().err().cloned().unwrap_or_default(),
    });
    result.unwrap_or_else(|e| e)
}

pub async fn answer<H: Host>(
    ctx: &RunContext<H>,
    audience: &Audience,
    text: &str,
    record: &mut RunRecord,
) -> String {
    let lower = lower_trimmed(text);
    let original = text.trim();
    if let Some(rest) = lower.strip_prefix("remind me ") {
        return match parse_reminder(rest, ctx.now_ms) {
            Some((at, _)) => {
                // Keep the person's own capitalisation of the reminder text.
                let what = original
                    .rsplit_once(" to ")
                    .or_else(|| original.rsplit_once(" that "))
                    .map_or(String::new(), |(_, w)| w.trim_end_matches(['.', '!']).to_owned());
                let work = add_reminder(ctx, &what, tools::When::At(at));
                tool(audience, record, "set_reminder", work).await
            }
            None => "Say it like: remind me in 10 minutes to stretch, or remind me at 14:30 to call Bob.".into(),
        };
    }
    if lower.starts_with("remember ") {
        let note = original["remember ".len()..].to_owned();
        return tool(audience, record, "remember", tools::remember(ctx, &note)).await;
    }
    if ["what do you remember", "recall", "notes", "my notes"].contains(&lower.as_str()) {
        return tool(audience, record, "recall", tools::recall(ctx, None)).await;
    }
    if ["apps", "list apps", "my apps", "list my apps"].contains(&lower.as_str()) {
        let work = async { tools::list_apps(ctx).await.map(|l| l.join("\n")) };
        return tool(audience, record, "list_apps", work).await;
    }
    if let Some(slug) = lower.strip_prefix("open ") {
        let slug = slug.trim().trim_end_matches(" app").to_owned();
        let work = async {
            let apps = tools::list_apps(ctx).await?;
            let url = ctx.host.app_url(&ctx.owner, &slug);
            apps.iter()
                .any(|a| a.ends_with(&url))
                .then(|| format!("Open it here: {url}"))
                .ok_or_else(|| {
                    format!("There is no app called {slug}. Say \"list apps\" to see them.")
                })
        };
        return tool(audience, record, "list_apps", work).await;
    }
    if let Some(slug) = lower.strip_prefix("install ") {
        let slug = slug.trim().trim_end_matches(" app").to_owned();
        return tool(
            audience,
            record,
            "install_app_template",
            tools::install_app(ctx, &slug),
        )
        .await;
    }
    HELP.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminder_phrases() {
        let now = 1_700_000_000_000;
        assert_eq!(
            parse_reminder("in 10 minutes to stretch", now),
            Some((now + 600_000, "stretch".into()))
        );
        assert_eq!(
            parse_reminder("in 1 hour to eat", now).unwrap().0,
            now + 3_600_000
        );
        assert!(parse_reminder("at 25:00 to x", now).is_none());
        assert!(parse_reminder("tomorrow to x", now).is_none());
        let (at, _) = parse_reminder("at 00:00 to x", now).unwrap();
        assert!(at > now && at - now <= 86_400_000);
    }
}
