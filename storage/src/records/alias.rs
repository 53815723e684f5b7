//! A room alias's record.

use ruma::{OwnedRoomId, OwnedUserId};
use serde::{Deserialize, Serialize};

/// Where an alias points and who made it (who may delete it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub room_id: OwnedRoomId,
    pub creator: OwnedUserId,
}
