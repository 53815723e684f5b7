//! A report of a room or of an event, kept for the server's admins.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRecord {
    pub room_id: String,
    /// The reported event; none for a report of the whole room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Who reported it.
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it arrived (ms since the epoch).
    pub received_ts: u64,
}
