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
use crate::services::Services;

/// Default number of timeline events per room.
const DEFAULT_LIMIT: usize = 10;

/// Users seen joining or leaving the caller's rooms in this sync window.
#[derive(Default)]
pub struct MemberChanges {
    pub joined: BTreeSet<OwnedUserId>,
    pub left: BTreeSet<OwnedUserId>,
}

pub struct RoomSync<'a> {
    pub s: &'a Services,
    pub caller: &'a Caller,
    pub room_id: &'a RoomId,
    pub since: u64,
    pub next: u64,
    pub full_state: bool,
    pub filter: &'a Filter,
    pub account_data: &'a [AccountDataEntry],
}

impl RoomSync<'_> {
    /// An event as the caller sees it, serialised from the stored event
    /// (content copied through as stored).
    fn event_raw<T>(&self, short: u64, pdu: &Pdu, viewer: bool) -> Result<Raw<T>> {
        let viewer = if viewer { self.caller.viewer() } else { None };
        Ok(Raw::from_json(
            self.s.rooms.client_event_raw(short, pdu, None, viewer)?,
        ))
    }

    /// Timeline events after `bound` up to `next`, newest `limit`; and whether
    /// older ones were left out.
    fn timeline(&self, reader: &RoomReader, bound: u64) -> Result<(Vec<TimelineEntry>, bool)> {
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
        // Filtered-out events don't count against the limit; bounded rounds.
        for _ in 0..10 {
            let page = self.s.rooms.timeline(
                short_room,
                cursor,
                Direction::Backward,
                limit + 1,
                Some(bound),
            )?;
            let exhausted = page.len() <= limit;
            for entry in page {
                cursor = entry.pos.before();
                if !self.filter.room.timeline.allows(&entry.pdu) || !reader.can_see_entry(&entry)? {
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
        }
        if !limited && cursor > bound && entries.len() == limit {
            limited = true;
        }
        entries.reverse();
        Ok((entries, limited))
    }

    /// State events to send: everything at the timeline's start for a full
    /// sync, or what changed between `since` and the timeline's start.
    fn state(
        &self,
        short_room: u64,
        timeline: &[TimelineEntry],
        full: bool,
    ) -> Result<Vec<Raw<AnySyncStateEvent>>> {
        let start = match timeline.first() {
            Some(first) => self.s.rooms.state_before(first.short)?,
            None => self.s.rooms.state_at(short_room, self.next)?,
        };
        let now = self.s.rooms.state.load(start)?;
        let before = if full {
            None
        } else {
            Some(
                self.s
                    .rooms
                    .state
                    .load(self.s.rooms.state_at(short_room, self.since)?)?,
            )
        };
        let lazy = self.filter.room.state.lazy_load_members;
        let mut wanted: BTreeSet<&str> = timeline.iter().map(|e| e.pdu.sender.as_str()).collect();
        wanted.insert(self.caller.user_id.as_str());
        let mut out = Vec::new();
        for (short_key, short_event) in now.iter() {
            if before
                .as_ref()
                .is_some_and(|b| b.get(short_key) == Some(short_event))
            {
                continue;
            }
            let (kind, key) = self.s.rooms.state.key_of(*short_key)?;
            if lazy && kind == "m.room.member" && !wanted.contains(key.as_str()) {
                continue;
            }
            let pdu = self.s.rooms.pdu_by_short(*short_event)?;
            if !self.filter.room.state.allows(&pdu) {
                continue;
            }
            out.push(self.event_raw(*short_event, &pdu, false)?);
        }
        Ok(out)
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

    fn note_members(events: &[TimelineEntry], changes: &mut MemberChanges) {
        for e in events {
            if e.pdu.kind.to_string() != "m.room.member" {
                continue;
            }
            let Some(user) = e
                .pdu
                .state_key
                .as_deref()
                .and_then(|k| UserId::parse(k).ok())
            else {
                continue;
            };
            match e
                .pdu
                .content_value()
                .get("membership")
                .and_then(Value::as_str)
            {
                Some("join") => {
                    changes.joined.insert(user);
                }
                Some("leave") | Some("ban") => {
                    changes.left.insert(user);
                }
                _ => {}
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
    fn timeline_of(&self, timeline: &[TimelineEntry], limited: bool) -> Result<Timeline> {
        let prev_batch = timeline
            .first()
            .map_or(TimelinePos::live(self.next), |e| e.pos.before());
        let mut out = Timeline::new();
        out.limited = limited;
        out.prev_batch = Some(prev_batch.token());
        out.events = timeline
            .iter()
            .map(|e| self.event_raw(e.short, &e.pdu, true))
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
        let state = if full || limited {
            self.state(short_room, &timeline, full)?
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
        let mut room = JoinedRoom::new();
        room.timeline = self.timeline_of(&timeline, limited)?;
        room.state = State::Before(StateEvents::from(state));
        room.account_data = account_data;
        room.ephemeral = ephemeral;
        room.summary = self.summary(short_room, record.state)?;
        self.unread(short_room, &mut room)?;
        Ok(Some(room))
    }

    /// A room the user left or was removed from: its timeline up to then.
    pub fn left(&self) -> Result<LeftRoom> {
        let reader = self.s.rooms.reader(&self.caller.user_id, self.room_id)?;
        let short_room = reader.short_room;
        let (timeline, limited) = self.timeline(&reader, self.since)?;
        // Someone who was never joined (a rejected invite, a rescinded
        // knock, a ban before joining) sees no state of the room.
        let state = if limited && reader.readable_state().is_ok() {
            self.state(short_room, &timeline, false)?
        } else {
            Vec::new()
        };
        let mut room = LeftRoom::new();
        room.timeline = self.timeline_of(&timeline, limited)?;
        room.state = State::Before(StateEvents::from(state));
        room.account_data = self.room_account_data()?;
        Ok(room)
    }
}

/// A room this server is not in that the user left (an invite rejected
/// through another server): its timeline is the leave event.
pub fn left_unknown_room(
    s: &Services,
    membership: &matrixos_storage::records::MembershipRecord,
) -> Result<LeftRoom> {
    let pdu = s.rooms.pdu_by_short(membership.event)?;
    let mut room = LeftRoom::new();
    let event = pdu.to_client(pdu.room_id.as_deref(), serde_json::Map::new());
    room.timeline.events = vec![Raw::from_json(serde_json::value::to_raw_value(&event)?)];
    Ok(room)
}
