//! What a simplified sliding sync request (MSC4186) asks for. Nothing in it
//! is sticky: every request carries its lists, subscriptions and
//! extensions.

use std::collections::{BTreeMap, BTreeSet};

use ruma::OwnedRoomId;
use serde::Deserialize;

use crate::error::{Error, Result};

/// Most timeline events one room's answer carries.
pub const MAX_TIMELINE_LIMIT: u32 = 500;
/// Most lists, ranges per list, subscriptions and `required_state` pairs
/// one request may hold: each costs work on every answer.
const MAX_LISTS: usize = 100;
const MAX_RANGES: usize = 100;
const MAX_SUBSCRIPTIONS: usize = 1_000;
const MAX_REQUIRED_STATE: usize = 200;
/// Longest connection id kept.
const MAX_CONN_ID: usize = 64;

#[derive(Debug, Default, Deserialize)]
pub struct SyncRequest {
    #[serde(default)]
    pub conn_id: Option<String>,
    #[serde(default)]
    pub txn_id: Option<String>,
    #[serde(default)]
    pub lists: BTreeMap<String, ListRequest>,
    #[serde(default)]
    pub room_subscriptions: BTreeMap<OwnedRoomId, RoomConfig>,
    #[serde(default)]
    pub extensions: ExtensionsRequest,
}

/// What to send of each room: which state and how many timeline events.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RoomConfig {
    #[serde(default)]
    pub required_state: Vec<(String, String)>,
    #[serde(default)]
    pub timeline_limit: u32,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListRequest {
    #[serde(default)]
    pub ranges: Vec<(u64, u64)>,
    #[serde(flatten)]
    pub config: RoomConfig,
    #[serde(default)]
    pub filters: Option<ListFilters>,
}

/// Which rooms a list holds: every field given must hold (AND).
#[derive(Debug, Default, Deserialize)]
pub struct ListFilters {
    pub is_dm: Option<bool>,
    pub is_encrypted: Option<bool>,
    pub is_invite: Option<bool>,
    /// Room types (the create event's `type`; `null` is an ordinary room).
    #[serde(default)]
    pub room_types: Vec<Option<String>>,
    #[serde(default)]
    pub not_room_types: Vec<Option<String>>,
    /// Only rooms that are children of these spaces.
    #[serde(default)]
    pub spaces: Vec<OwnedRoomId>,
    /// Only rooms with one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub not_tags: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ExtensionsRequest {
    #[serde(default)]
    pub to_device: ToDeviceRequest,
    #[serde(default)]
    pub e2ee: Toggle,
    #[serde(default)]
    pub account_data: ScopedToggle,
    #[serde(default)]
    pub receipts: ScopedToggle,
    #[serde(default)]
    pub typing: ScopedToggle,
}

#[derive(Debug, Default, Deserialize)]
pub struct Toggle {
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ToDeviceRequest {
    pub enabled: Option<bool>,
    pub limit: Option<u32>,
    pub since: Option<String>,
}

/// An extension about rooms: for which lists (all when absent) and which
/// subscribed rooms (`*` for all of them, the default).
#[derive(Debug, Default, Deserialize)]
pub struct ScopedToggle {
    pub enabled: Option<bool>,
    pub lists: Option<Vec<String>>,
    pub rooms: Option<Vec<String>>,
}

impl ScopedToggle {
    pub fn on(&self) -> bool {
        self.enabled == Some(true)
    }

    /// Whether it covers the list named `list`.
    pub fn covers_list(&self, list: &str) -> bool {
        self.lists
            .as_ref()
            .is_none_or(|lists| lists.iter().any(|l| l == list))
    }

    /// Whether it covers the subscribed room `room`.
    pub fn covers_subscription(&self, room: &str) -> bool {
        self.rooms
            .as_ref()
            .is_none_or(|rooms| rooms.iter().any(|r| r == "*" || r == room))
    }
}

impl SyncRequest {
    /// Reads a request body; a malformed one is the client's error.
    pub fn parse(body: serde_json::Value) -> Result<Self> {
        let request: Self = serde_json::from_value(body)
            .map_err(|e| Error::bad_json(format!("Invalid sliding sync request: {e}")))?;
        request.check()?;
        Ok(request)
    }

    fn check(&self) -> Result<()> {
        let too_many = |what: &str| Error::invalid_param(format!("Too many {what}"));
        if self.lists.len() > MAX_LISTS {
            return Err(too_many("lists"));
        }
        if self.room_subscriptions.len() > MAX_SUBSCRIPTIONS {
            return Err(too_many("room subscriptions"));
        }
        if self.conn_id.as_ref().is_some_and(|c| c.len() > MAX_CONN_ID) {
            return Err(Error::invalid_param("conn_id is too long"));
        }
        let configs = self
            .lists
            .values()
            .map(|l| &l.config)
            .chain(self.room_subscriptions.values());
        for config in configs {
            if config.required_state.len() > MAX_REQUIRED_STATE {
                return Err(too_many("required_state entries"));
            }
        }
        for list in self.lists.values() {
            if list.ranges.len() > MAX_RANGES {
                return Err(too_many("ranges"));
            }
            if list.ranges.iter().any(|(from, to)| from > to) {
                return Err(Error::invalid_param(
                    "A range must not end before it starts",
                ));
            }
        }
        Ok(())
    }
}

impl RoomConfig {
    /// The union of two rooms' settings: the larger timeline, every pair.
    pub fn merge(&mut self, other: &RoomConfig) {
        self.timeline_limit = self.timeline_limit.max(other.timeline_limit);
        for pair in &other.required_state {
            if !self.required_state.contains(pair) {
                self.required_state.push(pair.clone());
            }
        }
    }

    pub fn limit(&self) -> u32 {
        self.timeline_limit.min(MAX_TIMELINE_LIMIT)
    }

    /// The pairs, sorted and without repeats (as a connection stores them).
    pub fn pairs(&self) -> Vec<(String, String)> {
        let set: BTreeSet<_> = self.required_state.iter().cloned().collect();
        set.into_iter().collect()
    }
}
