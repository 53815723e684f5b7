//! A user's membership in one room, as the user's room index keeps it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Kept as JSON: the stripped state is JSON shown to clients as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MembershipRecord {
    pub membership: String,
    /// Stream position of the member event.
    pub count: u64,
    /// Short id of the member event.
    pub event: u64,
    /// Stripped state shown with an invite or knock.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stripped_state: Vec<Value>,
}
