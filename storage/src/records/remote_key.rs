//! Another server's public signing key, as this server learnt it.

use serde::{Deserialize, Serialize};

/// A key and the last moment (ms since the epoch) a signature by it counts:
/// the answer's `valid_until_ts` for a current key (at most a week after
/// it was fetched), its `expired_ts` for an old one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteKey {
    /// Unpadded standard base64, as published.
    pub key: String,
    pub valid_until_ts: u64,
}
