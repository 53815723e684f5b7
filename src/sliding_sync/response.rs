//! What a sliding sync answer holds, serialised as MSC4186 has it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

pub type RawEvent = Box<RawValue>;

#[derive(Debug, Default, Serialize)]
pub struct SyncResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txn_id: Option<String>,
    pub pos: String,
    pub lists: BTreeMap<String, ListCount>,
    pub rooms: BTreeMap<String, RoomResponse>,
    pub extensions: ExtensionsResponse,
}

#[derive(Debug, Default, Serialize)]
pub struct ListCount {
    pub count: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Hero {
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub displayname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
}

/// One room's part. Fields left out did not change.
#[derive(Debug, Default, Serialize)]
pub struct RoomResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A URL, or `null` once the avatar is removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heroes: Option<Vec<Hero>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_dm: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invite_state: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knock_state: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub highlight_count: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<RawEvent>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub required_state: Vec<RawEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev_batch: Option<String>,
    pub limited: bool,
    /// The timeline was sent again, longer, for a larger timeline limit.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unstable_expanded_timeline: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joined_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invited_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_live: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bump_stamp: Option<u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct ExtensionsResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_device: Option<ToDeviceResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e2ee: Option<E2eeResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_data: Option<AccountDataResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipts: Option<EphemeralResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typing: Option<EphemeralResponse>,
}

#[derive(Debug, Default, Serialize)]
pub struct ToDeviceResponse {
    pub next_batch: String,
    pub events: Vec<Value>,
}

#[derive(Debug, Default, Serialize)]
pub struct DeviceListsResponse {
    pub changed: Vec<String>,
    pub left: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct E2eeResponse {
    pub device_lists: DeviceListsResponse,
    pub device_one_time_keys_count: BTreeMap<String, u64>,
    pub device_unused_fallback_key_types: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct AccountDataResponse {
    pub global: Vec<Value>,
    pub rooms: BTreeMap<String, Vec<Value>>,
}

/// Receipts or typing: one event per room.
#[derive(Debug, Default, Serialize)]
pub struct EphemeralResponse {
    pub rooms: BTreeMap<String, Value>,
}

impl ExtensionsResponse {
    /// Whether it carries anything the client did not have (counts of
    /// one-time keys are always there and do not count).
    pub fn has_news(&self) -> bool {
        self.to_device
            .as_ref()
            .is_some_and(|t| !t.events.is_empty())
            || self.e2ee.as_ref().is_some_and(|e| {
                !e.device_lists.changed.is_empty() || !e.device_lists.left.is_empty()
            })
            || self
                .account_data
                .as_ref()
                .is_some_and(|a| !a.global.is_empty() || !a.rooms.is_empty())
            || self.receipts.as_ref().is_some_and(|r| !r.rooms.is_empty())
            || self.typing.as_ref().is_some_and(|t| !t.rooms.is_empty())
    }
}
