//! A device's peek into a room it is not in (MSC2753).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeekRecord {
    /// The stream position at which the peek started: a sync from before
    /// it gets the room's whole state.
    pub started: u64,
    /// When the server ends the peek unless the device renews it (ms since
    /// the epoch).
    pub expires_ts: u64,
    /// The stream position at which the peek ended (unpeeked, expired, or
    /// the room stopped being world-readable): a sync from before it gets
    /// the room in `leave`. Kept until `ended_ts` is a day old.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ts: Option<u64>,
}
