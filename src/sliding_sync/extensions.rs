//! The extensions of a sliding sync answer: to-device messages, end-to-end
//! encryption counts and device list changes, account data, receipts and
//! typing.

use std::collections::{BTreeMap, BTreeSet};

use ruma::OwnedRoomId;
use serde_json::Value;

use super::request::{ExtensionsRequest, ScopedToggle};
use super::response::{
    AccountDataResponse, DeviceListsResponse, E2eeResponse, EphemeralResponse, ExtensionsResponse,
    ToDeviceResponse,
};
use crate::error::{Error, Result};
use crate::http::Caller;
use crate::services::receipts::Receipts;
use crate::services::Services;

/// Most to-device messages one answer carries unless the client asks for
/// fewer.
const TO_DEVICE_LIMIT: u32 = 100;

/// Where each room of the answer comes from: the lists it is in, whether
/// it is subscribed to, and whether it is sent whole (`initial`).
#[derive(Default)]
pub struct RoomSources {
    pub lists: BTreeMap<OwnedRoomId, Vec<String>>,
    pub subscribed: BTreeSet<OwnedRoomId>,
    pub initial: BTreeSet<OwnedRoomId>,
}

impl RoomSources {
    /// The rooms an extension covers.
    fn covered<'a>(&'a self, toggle: &'a ScopedToggle) -> impl Iterator<Item = &'a OwnedRoomId> {
        let mut rooms: BTreeSet<&OwnedRoomId> = self
            .lists
            .iter()
            .filter(|(_, lists)| lists.iter().any(|l| toggle.covers_list(l)))
            .map(|(room, _)| room)
            .collect();
        rooms.extend(
            self.subscribed
                .iter()
                .filter(|room| toggle.covers_subscription(room.as_str())),
        );
        rooms.into_iter()
    }

    /// The position a covered room's updates start after: none sent yet
    /// for a room sent whole.
    fn since(&self, room: &OwnedRoomId, since: u64) -> u64 {
        if self.initial.contains(room) {
            0
        } else {
            since
        }
    }
}

pub struct Extensions<'a> {
    pub s: &'a Services,
    pub caller: &'a Caller,
    pub since: u64,
    pub next: u64,
    pub sources: &'a RoomSources,
}

impl Extensions<'_> {
    pub async fn build(&self, req: &ExtensionsRequest) -> Result<ExtensionsResponse> {
        let mut out = ExtensionsResponse::default();
        if req.to_device.enabled == Some(true) {
            out.to_device = Some(self.to_device(req).await?);
        }
        if req.e2ee.enabled == Some(true) {
            out.e2ee = Some(self.e2ee()?);
        }
        if req.account_data.on() {
            out.account_data = Some(self.account_data(&req.account_data)?);
        }
        if req.receipts.on() {
            out.receipts = Some(self.receipts(&req.receipts)?);
        }
        if req.typing.on() {
            out.typing = Some(self.typing(&req.typing));
        }
        Ok(out)
    }

    /// Messages after the extension's own `since` (those up to it are
    /// acknowledged and deleted), at most `limit`.
    async fn to_device(&self, req: &ExtensionsRequest) -> Result<ToDeviceResponse> {
        let since = match req.to_device.since.as_deref() {
            None => 0,
            Some(token) => token
                .parse::<u64>()
                .map_err(|_| Error::invalid_param("Invalid to_device since token"))?,
        };
        let limit = req
            .to_device
            .limit
            .unwrap_or(TO_DEVICE_LIMIT)
            .clamp(1, 1000) as usize;
        let (user, device) = (&self.caller.user_id, &self.caller.device_id);
        let messages = self
            .s
            .keys
            .take_to_device(user, device, since, self.next)
            .await?;
        let more = messages.len() > limit;
        let messages: Vec<_> = messages.into_iter().take(limit).collect();
        let next_batch = match (more, messages.last()) {
            (true, Some(last)) => last.count,
            _ => self.next.max(since),
        };
        Ok(ToDeviceResponse {
            next_batch: next_batch.to_string(),
            events: messages.into_iter().map(|m| m.json).collect(),
        })
    }

    fn e2ee(&self) -> Result<E2eeResponse> {
        let (user, device) = (&self.caller.user_id, &self.caller.device_id);
        let mut device_lists = DeviceListsResponse::default();
        if self.since > 0 {
            let (changed, left) =
                crate::sync::device_list_changes(self.s, user, self.since, self.next)?;
            device_lists.changed = changed.iter().map(ToString::to_string).collect();
            device_lists.left = left.iter().map(ToString::to_string).collect();
        }
        Ok(E2eeResponse {
            device_lists,
            device_one_time_keys_count: self.s.keys.one_time_key_counts(user, device)?,
            device_unused_fallback_key_types: self.s.keys.unused_fallback_types(user, device)?,
        })
    }

    /// Global account data changed since the connection's position (all of
    /// it, with the default push rules, on a new connection); per room,
    /// for the covered rooms, all of it for rooms sent whole.
    fn account_data(&self, toggle: &ScopedToggle) -> Result<AccountDataResponse> {
        let user = &self.caller.user_id;
        let changed = self.s.account_data.changed_since(user, self.since)?;
        let mut out = AccountDataResponse {
            global: crate::sync::global_account_data(self.s, user, self.since, &changed)?,
            ..AccountDataResponse::default()
        };
        let covered: Vec<&OwnedRoomId> = self.sources.covered(toggle).collect();
        let all_of_rooms = match covered.iter().any(|r| self.sources.initial.contains(*r)) {
            true if self.since > 0 => self.s.account_data.changed_since(user, 0)?,
            _ => Vec::new(),
        };
        for room in covered {
            let entries = match self.sources.initial.contains(room) && self.since > 0 {
                true => &all_of_rooms,
                false => &changed,
            };
            let events: Vec<Value> = entries
                .iter()
                .filter(|e| e.room_id.as_ref() == Some(room))
                .map(|e| e.event())
                .collect();
            if !events.is_empty() {
                out.rooms.insert(room.to_string(), events);
            }
        }
        Ok(out)
    }

    fn receipts(&self, toggle: &ScopedToggle) -> Result<EphemeralResponse> {
        let mut out = EphemeralResponse::default();
        for room in self.sources.covered(toggle) {
            let since = self.sources.since(room, self.since);
            let receipts = self.s.receipts.since(room, since)?;
            let receipts = receipts.iter().filter(|r| r.count <= self.next);
            if let Some(edu) = Receipts::edu(receipts, &self.caller.user_id) {
                out.rooms.insert(room.to_string(), edu);
            }
        }
        Ok(out)
    }

    fn typing(&self, toggle: &ScopedToggle) -> EphemeralResponse {
        let mut out = EphemeralResponse::default();
        for room in self.sources.covered(toggle) {
            let since = self.sources.since(room, self.since);
            if let Some(edu) = self.s.receipts.typing_edu(room, since) {
                out.rooms.insert(room.to_string(), edu);
            }
        }
        out
    }
}
