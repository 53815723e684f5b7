//! One room's part of a sync response.

use std::collections::BTreeSet;

use matrixos_storage::Direction;
use ruma::api::client::sync::sync_events::v3::{
    Ephemeral, JoinedRoom, LeftRoom, RoomAccountData, RoomSummary, State, StateEvents, Timeline,
};
use ruma::api::client::sync::sync_events::UnreadNotificationsCount;
use ruma::events::{AnyRoomAccountDataEvent, AnySyncStateEvent};
use ruma::serde::Raw;
use ruma::{OwnedUserId, RoomId, UInt, UserId};
use serde_json::Value;

use super::filter::Filter;
use crate::error::Result;
use crate::http::Caller;
use crate::push::Unread;
use crate::rooms::pdu::Pdu;
use crate::rooms::timeline::{TimelineEntry, TimelinePos};
use crate::rooms::visibility::RoomReader;
use crate::services::account_data::AccountDataEntry;
use crate::services::lazy_members::Carried;
use crate::services::Services;

/// Default number of timeline events per room.
const DEFAULT_LIMIT: usize = 10;

/// Most events one room's timeline looks through for those its filter
/// lets through.
const MAX_SCANNED: usize = 5_000;

/// Users seen joining the caller's rooms in this sync window, the rooms the
/// caller joined, and the member events a lazy-loading answer carries.
#[derive(Default)]
pub struct MemberChanges {
    pub joined: BTreeSet<OwnedUserId>,
    /// Rooms the caller joined in the window.
    pub rooms_joined: Vec<ruma::OwnedRoomId>,
    pub carried: Vec<Carried>,
}

/// Notes `pdu` if it is a member event (for lazy loading).
fn note_member(room: &RoomId, pdu: &Pdu, short: u64, carried: &mut Vec<Carried>) {
    if pdu.kind.to_string() != "m.room.member" {
        return;
    }
    if let Some(member) = pdu.state_key.as_deref().and_then(|k| UserId::parse(k).ok()) {
        carried.push((room.to_owned(), member, short));
    }
}

pub struct RoomSync<'a> {
    pub s: &'a Services,
    pub caller: &'a Caller,
    pub room_id: &'a RoomId,
    pub since: u64,
    pub next: u64,
    pub full_state: bool,
    /// `use_state_after`: state at the timeline's end, as `state_after`.
    pub state_after: bool,
    pub filter: &'a Filter,
    pub ignored: &'a BTreeSet<OwnedUserId>,
    pub account_data: &'a [AccountDataEntry],
}

impl RoomSync<'_> {
    /// A state event as clients see it, serialised from the stored event
    /// (content copied through as stored).
    fn event_raw<T>(&self, short: u64, pdu: &Pdu) -> Result<Raw<T>> {
        Ok(Raw::from_json(
            self.s.rooms.client_event_raw(short, pdu, None, None)?,
        ))
    }

    /// Timeline events after `bound` up to `next`, newest `limit`; and whether
    /// older ones were left out.
    pub fn timeline(&self, reader: &RoomReader, bound: u64) -> Result<(Vec<TimelineEntry>, bool)> {
        let short_room = reader.short_room;
        let limit = self
            .filter
            .room
            .timeline
            .limit
            .unwrap_or(DEFAULT_LIMIT)
            .clamp(1, 500);
        let mut entries = Vec::new();
        let mut limited = false;
        let mut cursor = TimelinePos::live(self.next);
        let bound = TimelinePos::live(bound);
        // Filtered-out events don't count against the limit: pages grow
        // until the limit is filled, and one matching event more tells that
        // the timeline is limited. A scan that stops at its bound may have
        // left matching events out.
        let mut page_size = limit + 1;
        let mut scanned = 0;
        loop {
            let page = self.s.rooms.timeline(
                short_room,
                cursor,
                Direction::Backward,
                page_size,
                Some(bound),
            )?;
            let exhausted = page.len() < page_size;
            for entry in page {
                scanned += 1;
                cursor = entry.pos.before();
                if !self.filter.room.timeline.allows(&entry.pdu)
                    || self.ignored.contains(&entry.pdu.sender)
                    || !reader.can_see_entry(&entry)?
                {
                    continue;
                }
                if entries.len() == limit {
                    limited = true;
                    break;
                }
                entries.push(entry);
            }
            if limited || exhausted {
                break;
            }
            if scanned >= MAX_SCANNED {
                limited = true;
                break;
            }
            page_size = (page_size * 2).min(500);
        }
        entries.reverse();
        Ok((entries, limited))
    }

    /// State events to send: everything at the timeline's start for a full
    /// sync, or what changed between `since` and the timeline's start when
    /// events were left out. With lazy-loaded members, a full sync sends
    /// only the members of the timeline's senders (and the caller's own),
    /// and an incremental one adds the senders' members the device was not
    /// sent yet (Synapse's rules: a gapped sync sends every state change).
    /// With `end` (`use_state_after`), the same relative to the state at
    /// the timeline's end, `end`, and what changed is always sent.
    fn state(
        &self,
        short_room: u64,
        timeline: &[TimelineEntry],
        full: bool,
        limited: bool,
        end: Option<u64>,
        carried: &mut Vec<Carried>,
    ) -> Result<Vec<Raw<AnySyncStateEvent>>> {
        let start = match (end, timeline.first()) {
            (Some(end), _) => end,
            (None, Some(first)) => self.s.rooms.state_before(first.short)?,
            (None, None) => self.s.rooms.state_at(short_room, self.next)?,
        };
        let limited = limited || end.is_some();
        let now = self.s.rooms.state.load(start)?;
        let lazy = self.filter.room.state.lazy_load_members;
        let mut senders: Vec<&str> = Vec::new();
        for entry in timeline {
            if !senders.contains(&entry.pdu.sender.as_str()) {
                senders.push(entry.pdu.sender.as_str());
            }
        }
        let mut picked: Vec<(u64, u64)> = Vec::new();
        if full || limited {
            let before = match full {
                true => None,
                false => Some(
                    self.s
                        .rooms
                        .state
                        .load(self.s.rooms.state_at(short_room, self.since)?)?,
                ),
            };
            for (short_key, short_event) in now.iter() {
                if before
                    .as_ref()
                    .is_some_and(|b| b.get(short_key) == Some(short_event))
                {
                    continue;
                }
                if full && lazy {
                    let (kind, key) = self.s.rooms.state.key_of(*short_key)?;
                    let wanted = senders.contains(&key.as_str()) || key == self.caller.user_id;
                    if kind == "m.room.member" && !wanted {
                        continue;
                    }
                }
                picked.push((*short_key, *short_event));
            }
        }
        if lazy && !full {
            self.unsent_members(&now, timeline, &senders, &mut picked)?;
        }
        let mut out = Vec::new();
        for (_, short_event) in picked {
            let pdu = self.s.rooms.pdu_by_short(short_event)?;
            if !self.filter.room.state.allows(&pdu) {
                continue;
            }
            if lazy {
                note_member(self.room_id, &pdu, short_event, carried);
            }
            out.push(self.event_raw(short_event, &pdu)?);
        }
        Ok(out)
    }

    /// The member events of the timeline's senders, as of its first event
    /// (the state after it, as Synapse has it), that the device was not
    /// sent yet, added to `picked`.
    fn unsent_members(
        &self,
        at_start: &crate::rooms::state::StateMap,
        timeline: &[TimelineEntry],
        senders: &[&str],
        picked: &mut Vec<(u64, u64)>,
    ) -> Result<()> {
        let redundant = self.filter.room.state.include_redundant_members;
        let device = (self.caller.user_id.as_ref(), self.caller.device_id.as_ref());
        for sender in senders {
            let Some(short_key) = self.s.rooms.state.short_key("m.room.member", sender)? else {
                continue;
            };
            if picked.iter().any(|(k, _)| *k == short_key) {
                continue;
            }
            let first = timeline.first().filter(|e| {
                e.pdu.kind.to_string() == "m.room.member"
                    && e.pdu.state_key.as_deref() == Some(*sender)
            });
            let Some(event) = first.map(|e| e.short).or(at_start.get(&short_key).copied()) else {
                continue;
            };
            let Ok(member) = UserId::parse(*sender) else {
                continue;
            };
            let known = self
                .s
                .lazy_members
                .has(device, self.since, self.room_id, &member, event);
            if redundant || !known {
                picked.push((short_key, event));
            }
        }
        Ok(())
    }

    fn summary(&self, short_room: u64, state_hash: u64) -> Result<RoomSummary> {
        let members = self.s.rooms.members(short_room)?;
        let count =
            |m: &str| UInt::new_saturating(members.iter().filter(|(_, x)| x == m).count() as u64);
        let mut summary = RoomSummary::new();
        summary.joined_member_count = Some(count("join"));
        summary.invited_member_count = Some(count("invite"));
        let named = self
            .s
            .rooms
            .state_event(state_hash, "m.room.name", "")?
            .is_some()
            || self
                .s
                .rooms
                .state_event(state_hash, "m.room.canonical_alias", "")?
                .is_some();
        if !named {
            summary.heroes = members
                .iter()
                .filter(|(u, m)| *u != self.caller.user_id && (m == "join" || m == "invite"))
                .map(|(u, _)| u.clone())
                .take(5)
                .collect();
        }
        Ok(summary)
    }

    fn room_account_data(&self) -> Result<RoomAccountData> {
        let mut out = RoomAccountData::new();
        out.events = self
            .account_data
            .iter()
            .filter(|e| e.room_id.as_deref() == Some(self.room_id))
            .map(|e| super::raw::<AnyRoomAccountDataEvent>(&e.event()))
            .collect::<Result<_>>()?;
        Ok(out)
    }

    /// Notes who joined in the timeline.
    fn note_members(events: &[TimelineEntry], changes: &mut MemberChanges) {
        for e in events {
            if e.pdu.kind.to_string() != "m.room.member" {
                continue;
            }
            let content = e.pdu.content_value();
            if content.get("membership").and_then(Value::as_str) != Some("join") {
                continue;
            }
            if let Some(user) = e
                .pdu
                .state_key
                .as_deref()
                .and_then(|k| UserId::parse(k).ok())
            {
                changes.joined.insert(user);
            }
        }
    }

    fn ephemeral(&self) -> Result<Ephemeral> {
        let mut out = Ephemeral::new();
        let receipts = self.s.receipts.since(self.room_id, self.since)?;
        let receipts = receipts.iter().filter(|r| r.count <= self.next);
        if let Some(edu) = crate::services::receipts::Receipts::edu(receipts, &self.caller.user_id)
        {
            out.events.push(super::raw(&edu)?);
        }
        if let Some(edu) = self.s.receipts.typing_edu(self.room_id, self.since) {
            out.events.push(super::raw(&edu)?);
        }
        Ok(out)
    }

    /// `unread_notifications`, and per thread when the filter asks for it
    /// (then the first counts only the main timeline).
    fn unread(&self, short_room: u64, room: &mut JoinedRoom) -> Result<()> {
        let counts = self
            .s
            .push
            .counts(&self.caller.user_id, short_room, self.next)?;
        let count_of = |u: &Unread| {
            let mut count = UnreadNotificationsCount::new();
            count.notification_count = Some(UInt::new_saturating(u.notifications));
            count.highlight_count = Some(UInt::new_saturating(u.highlights));
            count
        };
        if self.filter.room.timeline.unread_thread_notifications {
            room.unread_notifications = count_of(&counts.main);
            for (thread, u) in &counts.threads {
                // Threads are keyed by their root's event id.
                if let Ok(root) = ruma::OwnedEventId::try_from(thread.as_str()) {
                    room.unread_thread_notifications.insert(root, count_of(u));
                }
            }
        } else {
            room.unread_notifications = count_of(&counts.total);
        }
        Ok(())
    }

    /// The `timeline` object: events, `limited`, and the token before them.
    pub fn timeline_of(
        &self,
        reader: &RoomReader,
        timeline: &[TimelineEntry],
        limited: bool,
    ) -> Result<Timeline> {
        let prev_batch = timeline
            .first()
            .map_or(TimelinePos::live(self.next), |e| e.pos.before());
        let mut out = Timeline::new();
        out.limited = limited;
        out.prev_batch = Some(prev_batch.token());
        out.events = timeline
            .iter()
            .map(|e| {
                let device = Some(self.caller.device_id.as_ref());
                let json = reader.client_event(e.short, &e.pdu, None, device)?;
                Ok(Raw::from_json(json))
            })
            .collect::<Result<_>>()?;
        Ok(out)
    }

    /// A joined room; `None` when nothing changed in it.
    pub fn joined(
        &self,
        newly_joined: bool,
        changes: &mut MemberChanges,
    ) -> Result<Option<JoinedRoom>> {
        let (short_room, record) = self.s.rooms.record_of(self.room_id)?;
        let reader = self.s.rooms.reader(&self.caller.user_id, self.room_id)?;
        let full = self.since == 0 || self.full_state || newly_joined;
        let bound = if full { 0 } else { self.since };
        let (timeline, limited) = self.timeline(&reader, bound)?;
        let lazy = self.filter.room.state.lazy_load_members;
        let mut carried = Vec::new();
        let end = match self.state_after {
            true => Some(self.s.rooms.state_at(short_room, self.next)?),
            false => None,
        };
        let state = if full || limited || lazy || end.is_some() {
            self.state(short_room, &timeline, full, limited, end, &mut carried)?
        } else {
            Vec::new()
        };
        let account_data = self.room_account_data()?;
        let ephemeral = self.ephemeral()?;
        if !full
            && timeline.is_empty()
            && state.is_empty()
            && account_data.is_empty()
            && ephemeral.is_empty()
        {
            return Ok(None);
        }
        Self::note_members(&timeline, changes);
        if lazy {
            for entry in &timeline {
                note_member(self.room_id, &entry.pdu, entry.short, &mut carried);
            }
            changes.carried.append(&mut carried);
        }
        let mut room = JoinedRoom::new();
        room.timeline = self.timeline_of(&reader, &timeline, limited)?;
        room.state = self.state_field(state);
        room.account_data = account_data;
        room.ephemeral = ephemeral;
        room.summary = self.summary(short_room, record.state)?;
        self.unread(short_room, &mut room)?;
        Ok(Some(room))
    }

    /// The room's `state` (before the timeline) or, with
    /// `use_state_after`, its `state_after`.
    fn state_field(&self, events: Vec<Raw<AnySyncStateEvent>>) -> State {
        match self.state_after {
            true => State::After(StateEvents::from(events)),
            false => State::Before(StateEvents::from(events)),
        }
    }

    /// Whether the caller's membership ended a join (not an invite or a
    /// knock that never became one).
    fn left_a_join(&self) -> Result<bool> {
        let user = &self.caller.user_id;
        let Some(record) = self.s.rooms.membership(user, self.room_id)? else {
            return Ok(false);
        };
        let before = self.s.rooms.state_before(record.event)?;
        self.is_join(before)
    }

    /// Whether the caller is joined in the state `state`.
    fn is_join(&self, state: u64) -> Result<bool> {
        let member =
            self.s
                .rooms
                .state_event(state, "m.room.member", self.caller.user_id.as_str())?;
        Ok(member.is_some_and(|m| {
            m.content_value().get("membership").and_then(Value::as_str) == Some("join")
        }))
    }

    /// Whether the caller was joined to the room at `since`.
    fn joined_at_since(&self, short_room: u64) -> Result<bool> {
        if self.since == 0 {
            return Ok(false);
        }
        self.is_join(self.s.rooms.state_at(short_room, self.since)?)
    }

    /// A room the user left or was removed from: its timeline up to then.
    pub fn left(&self) -> Result<LeftRoom> {
        let reader = self.s.rooms.reader(&self.caller.user_id, self.room_id)?;
        let short_room = reader.short_room;
        let (timeline, limited) = self.timeline(&reader, self.since)?;
        // A room joined and left since the last sync is new to the client:
        // it gets the room's state.
        let full = self.left_a_join()? && !self.joined_at_since(short_room)?;
        // Someone who was never joined (a rejected invite, a rescinded
        // knock, a ban before joining) sees no state of the room.
        let end = match (self.state_after, timeline.last()) {
            (false, _) => None,
            (true, Some(last)) => Some(self.s.rooms.state_after(last.short)?),
            (true, None) => Some(self.s.rooms.state_at(short_room, self.next)?),
        };
        let state = if (limited || full || end.is_some()) && reader.readable_state().is_ok() {
            self.state(short_room, &timeline, full, limited, end, &mut Vec::new())?
        } else {
            Vec::new()
        };
        let mut room = LeftRoom::new();
        room.timeline = self.timeline_of(&reader, &timeline, limited)?;
        room.state = self.state_field(state);
        room.account_data = self.room_account_data()?;
        Ok(room)
    }

    /// A room whose peek ended (MSC2753): its events from the token to
    /// the peek's end, when the caller may still read them.
    pub fn peek_ended(&self) -> Result<LeftRoom> {
        let mut room = LeftRoom::new();
        let Ok(reader) = self.s.rooms.reader(&self.caller.user_id, self.room_id) else {
            return Ok(room);
        };
        let (timeline, limited) = self.timeline(&reader, self.since)?;
        if !timeline.is_empty() {
            room.timeline = self.timeline_of(&reader, &timeline, limited)?;
        }
        Ok(room)
    }
}

/// The user's own leave event of a room, as clients see it (all there is
/// to show of a room they may not read).
pub fn leave_event(
    s: &Services,
    membership: &matrixos_storage::records::MembershipRecord,
) -> Result<Box<serde_json::value::RawValue>> {
    let pdu = s.rooms.pdu_by_short(membership.event)?;
    let event = pdu.to_client(pdu.room_id.as_deref(), serde_json::Map::new());
    Ok(serde_json::value::to_raw_value(&event)?)
}

/// A room this server is not in that the user left (an invite rejected
/// through another server): its timeline is the leave event.
pub fn left_unknown_room(
    s: &Services,
    membership: &matrixos_storage::records::MembershipRecord,
) -> Result<LeftRoom> {
    let mut room = LeftRoom::new();
    room.timeline.events = vec![Raw::from_json(leave_event(s, membership)?)];
    Ok(room)
}
