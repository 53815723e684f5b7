//! A sliding sync connection: the positions a client may continue from and
//! what the client had been sent at each.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How far one room was sent on a connection, and with which settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentRoom {
    /// The stream position the client has the room up to.
    pub up_to: u64,
    /// The user's membership when it was last sent (`join`, `invite`, …).
    pub membership: String,
    /// Index into [`SlidingPosition::configs`]: the `required_state` sent.
    pub config: u32,
    /// The largest timeline limit it was sent with.
    pub timeline_limit: u32,
}

/// What a client had been sent when it got one position.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlidingPosition {
    pub id: u64,
    /// room id → how far it was sent.
    pub rooms: BTreeMap<String, SentRoom>,
    /// The distinct `required_state` lists rooms were sent with, each as
    /// sorted (type, state key) pairs.
    pub configs: Vec<Vec<(String, String)>>,
}

/// A connection (user, device, `conn_id`): the last positions handed out,
/// oldest first (at most two stay valid).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlidingConnection {
    pub positions: Vec<SlidingPosition>,
    /// The id the next new position takes.
    pub next_id: u64,
    /// When a request last used it (ms since the epoch).
    pub last_used_ms: u64,
}
