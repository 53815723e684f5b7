//! A room deletion an admin asked for through Synapse's v2 admin API, kept
//! for its status.

use serde::{Deserialize, Serialize};

/// What a deletion did, in the shape Synapse answers it (`shutdown_room`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownRecord {
    pub kicked_users: Vec<String>,
    pub failed_to_kick_users: Vec<String>,
    pub local_aliases: Vec<String>,
    pub new_room_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomDeletionRecord {
    pub delete_id: String,
    pub room_id: String,
    /// `shutting_down`, `purging`, then `complete` or `failed`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub shutdown_room: ShutdownRecord,
    /// When it was asked for (ms since the epoch).
    pub started_ts: u64,
    /// What was asked, so that a deletion a restart interrupted can be
    /// taken up again (absent in records from before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<DeletionRequest>,
}

/// The admin's request for a deletion: who asked, and its options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionRequest {
    pub admin: String,
    pub block: bool,
    pub purge: bool,
    pub new_room_user_id: Option<String>,
    pub room_name: String,
    pub message: String,
}

impl RoomDeletionRecord {
    /// Still shutting the room down or purging it.
    pub fn active(&self) -> bool {
        matches!(self.status.as_str(), "shutting_down" | "purging")
    }
}
