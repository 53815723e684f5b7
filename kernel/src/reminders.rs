//! Reminders as `system/cron.json` keeps them: one-off (`at`, Unix ms) or
//! repeating (`cron`). The file is the truth; the server's scheduler reads it
//! and fires what is due.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cron::CronExpr;

pub const CRON_FILE: &str = "system/cron.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    pub id: String,
    /// The room the reminder is posted in.
    pub room: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default)]
    pub created_by: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronFile {
    #[serde(default)]
    pub reminders: Vec<Reminder>,
}

impl CronFile {
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("{CRON_FILE} is invalid: {e}"))
    }

    pub fn to_text(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{\"reminders\":[]}".into()) + "\n"
    }

    pub fn next_id(&self) -> String {
        let n = self
            .reminders
            .iter()
            .filter_map(|r| r.id.strip_prefix('r').and_then(|n| n.parse::<u64>().ok()))
            .max()
            .unwrap_or(0);
        format!("r{}", n + 1)
    }
}

impl Reminder {
    /// When this reminder next fires after `after_ms` (one-offs fire once,
    /// at their time, even if that has passed).
    pub fn next_due(&self, after_ms: i64) -> Option<i64> {
        if let Some(at) = self.at {
            return Some(at);
        }
        let expr = CronExpr::parse(self.cron.as_deref()?).ok()?;
        let after = DateTime::<Utc>::from_timestamp_millis(after_ms)?;
        expr.next_after(after).map(|t| t.timestamp_millis())
    }

    pub fn is_repeating(&self) -> bool {
        self.at.is_none()
    }

    /// How the reminder reads in a list.
    pub fn describe(&self) -> String {
        match (self.at, &self.cron) {
            (Some(at), _) => {
                let when = DateTime::<Utc>::from_timestamp_millis(at)
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_else(|| at.to_string());
                format!("{}: {} (at {when})", self.id, self.text)
            }
            (None, Some(cron)) => format!("{}: {} (cron {cron})", self.id, self.text),
            (None, None) => format!("{}: {} (never)", self.id, self.text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_due_times() {
        let mut file = CronFile::parse("{\"reminders\":[]}").unwrap();
        assert_eq!(file.next_id(), "r1");
        file.reminders.push(Reminder {
            id: "r1".into(),
            room: "!r:x".into(),
            text: "tea".into(),
            at: Some(1_000),
            cron: None,
            created_by: "@a:x".into(),
        });
        file.reminders.push(Reminder {
            id: "r7".into(),
            room: "!r:x".into(),
            text: "stand up".into(),
            at: None,
            cron: Some("0 * * * *".into()),
            created_by: "@a:x".into(),
        });
        assert_eq!(file.next_id(), "r8");
        assert_eq!(file.reminders[0].next_due(5_000), Some(1_000));
        assert_eq!(file.reminders[1].next_due(0), Some(3_600_000));
        let back = CronFile::parse(&file.to_text()).unwrap();
        assert_eq!(back, file);
    }
}
