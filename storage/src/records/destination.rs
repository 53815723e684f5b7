//! Another server this one sends transactions to, as far as retries go.

use serde::{Deserialize, Serialize};

/// How often sending to a server has failed in a row, and the earliest
/// moment (ms since the epoch) to try it again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationRecord {
    pub failures: u32,
    pub retry_at: u64,
}
