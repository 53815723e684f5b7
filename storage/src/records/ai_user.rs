//! A person's AI user.

use ruma::{OwnedRoomId, OwnedUserId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiUserRecord {
    pub owner: OwnedUserId,
    /// Off when an admin disabled this person's AI.
    pub enabled: bool,
    /// The owner's direct-message room with the AI, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dm_room: Option<OwnedRoomId>,
}
