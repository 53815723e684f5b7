//! A report of a room, an event or a user, kept for the server's admins.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRecord {
    /// The reported room (or the room of the reported event); none for a
    /// report of a user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// The reported user, for a report of a user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_user: Option<String>,
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
