//! History visibility: which of a room's events a user may read, as the
//! spec's algorithm decides it ("History visibility", client-server API),
//! with Synapse's two boundary rules (a history-visibility change is judged
//! by the more permissive of its old and new value; a user's own membership
//! change by the more permissive of their membership before and after it,
//! and they always see their own leave after a join or an invite).
//!
//! Every read of room events goes through a [`RoomReader`]: `/messages`,
//! `/event`, `/context`, `/timestamp_to_event`, `/state`, `/members`,
//! `/sync` and `/notifications`. Having once had a membership gives no
//! access by itself: each event is judged by the visibility and the user's
//! membership in the state before it.

use rustc_hash::FxHashMap;

use parking_lot::Mutex;
use ruma::events::TimelineEventType;
use ruma::room_version_rules::RedactionRules;
use ruma::{OwnedUserId, RoomId, UserId};
use serde_json::Value;

use super::timeline::{TimelineEntry, TimelinePos};
use super::{Pdu, Rooms};
use crate::error::{Error, Result};

/// `m.room.history_visibility`, from most to least permissive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Visibility {
    WorldReadable,
    Shared,
    Invited,
    Joined,
}

impl Visibility {
    /// Unknown or missing values count as `shared`, the spec's default.
    pub(super) fn parse(value: Option<&str>) -> Self {
        match value {
            Some("world_readable") => Self::WorldReadable,
            Some("invited") => Self::Invited,
            Some("joined") => Self::Joined,
            _ => Self::Shared,
        }
    }

    /// The visibility an `m.room.history_visibility` event sets, if `pdu`
    /// is one (a change is judged by the more permissive of old and new).
    pub(super) fn set_by(pdu: &Pdu) -> Option<Self> {
        let sets = pdu.kind == TimelineEventType::RoomHistoryVisibility
            && pdu.state_key.as_deref() == Some("");
        sets.then(|| {
            Self::parse(
                pdu.content_value()
                    .get("history_visibility")
                    .and_then(Value::as_str),
            )
        })
    }
}

/// A membership, from most to least permissive for reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Membership {
    Join,
    Invite,
    Knock,
    Leave,
    Ban,
}

impl Membership {
    fn parse(value: Option<&str>) -> Self {
        match value {
            Some("join") => Self::Join,
            Some("invite") => Self::Invite,
            Some("knock") => Self::Knock,
            Some("ban") => Self::Ban,
            _ => Self::Leave,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Join => "join",
            Self::Invite => "invite",
            Self::Knock => "knock",
            Self::Leave => "leave",
            Self::Ban => "ban",
        }
    }

    pub(super) fn of_event(pdu: &Pdu) -> Self {
        Self::parse(pdu.membership().as_deref())
    }
}

/// Most of a user's membership changes looked at to answer "did they ever
/// join after this event".
const MAX_HISTORY: usize = 1024;

/// What one user may read of one room. Built once per request; answers per
/// event from the state before it, remembered per state.
pub struct RoomReader<'a> {
    rooms: &'a Rooms,
    user: &'a UserId,
    pub short_room: u64,
    /// The newest stream position the user may read up to.
    pub until: u64,
    /// Joined now, or peeking into a room that is world-readable now.
    reads_current_state: bool,
    joined_now: bool,
    /// A past member's membership changes in this room, oldest first.
    history: Vec<(u64, Membership)>,
    /// Looked up for every event read: a fast hash, as a reader lives for
    /// one request and holds a state per event, a sender per event at most.
    at_state: Mutex<FxHashMap<u64, (Visibility, Membership)>>,
    /// Senders of this server looked up: whether their events are served
    /// pruned to this reader.
    pruned_senders: Mutex<FxHashMap<OwnedUserId, bool>>,
}

impl Rooms {
    /// How `user` may read `room`: `M_FORBIDDEN` when they have no
    /// membership in it (not even a past one) and it is not world-readable.
    pub fn reader<'a>(&'a self, user: &'a UserId, room: &RoomId) -> Result<RoomReader<'a>> {
        let membership = self.membership(user, room)?;
        let known = self.short_room(room)?;
        let (Some(short_room), Some(record)) =
            (known, known.map(|s| self.record(s)).transpose()?.flatten())
        else {
            return Err(Error::forbidden("You are not a member of this room"));
        };
        let joined_now = membership.as_ref().is_some_and(|m| m.membership == "join");
        let world_readable =
            !joined_now && self.visibility_in(record.state)? == Visibility::WorldReadable;
        let (until, reads_current_state, last_event) = match &membership {
            Some(m) if joined_now => (u64::MAX, true, Some(m.event)),
            _ if world_readable => (u64::MAX, true, membership.as_ref().map(|m| m.event)),
            Some(m) => (m.count, false, Some(m.event)),
            None => return Err(Error::forbidden("You are not a member of this room")),
        };
        // Someone joined now has joined after every event there is; only a
        // past member's changes are needed.
        let history = match last_event {
            Some(short) if !joined_now => self.membership_history(short)?,
            _ => Vec::new(),
        };
        Ok(RoomReader {
            rooms: self,
            user,
            short_room,
            until,
            reads_current_state,
            joined_now,
            history,
            at_state: Mutex::default(),
            pruned_senders: Mutex::default(),
        })
    }

    /// The room's history visibility in a state.
    /// Whether anyone may read the room's history now.
    pub fn is_world_readable(&self, room: &RoomId) -> Result<bool> {
        let (_, record) = self.record_of(room)?;
        Ok(self.visibility_in(record.state)? == Visibility::WorldReadable)
    }

    pub(super) fn visibility_in(&self, state_hash: u64) -> Result<Visibility> {
        let event = self.state_event(state_hash, "m.room.history_visibility", "")?;
        Ok(Visibility::parse(
            event
                .map(|e| e.content_value())
                .as_ref()
                .and_then(|c| c.get("history_visibility"))
                .and_then(Value::as_str),
        ))
    }

    /// A user's membership changes up to the member event `latest`, oldest
    /// first, following each member event to the one it replaced.
    fn membership_history(&self, latest: u64) -> Result<Vec<(u64, Membership)>> {
        let mut out = Vec::new();
        let mut next = Some(latest);
        while let Some(short) = next {
            if out.len() >= MAX_HISTORY {
                break;
            }
            let pdu = self.pdu_by_short(short)?;
            // A member event received with a room's state (an outlier) has
            // no position: it is older than anything in the timeline.
            let meta = self.timeline_meta(short)?;
            out.push((
                meta.as_ref().map_or(0, |m| m.count),
                Membership::of_event(&pdu),
            ));
            next = meta.and_then(|m| m.replaces);
        }
        out.reverse();
        Ok(out)
    }
}

impl RoomReader<'_> {
    /// The visibility and the user's membership in a state, remembered.
    fn at(&self, state_hash: u64) -> Result<(Visibility, Membership)> {
        if let Some(known) = self.at_state.lock().get(&state_hash) {
            return Ok(*known);
        }
        let visibility = self.rooms.visibility_in(state_hash)?;
        let membership = self
            .rooms
            .state_event(state_hash, "m.room.member", self.user.as_str())?
            .map(|e| Membership::of_event(&e))
            .unwrap_or(Membership::Leave);
        self.at_state
            .lock()
            .insert(state_hash, (visibility, membership));
        Ok((visibility, membership))
    }

    /// Whether the user joined at or after stream position `count`.
    fn joined_since(&self, count: u64) -> bool {
        self.joined_now
            || self
                .history
                .iter()
                .any(|(at, m)| *at >= count && *m == Membership::Join)
    }

    /// Whether the user may see this event of the room.
    /// Whose reader this is.
    pub fn user(&self) -> &UserId {
        self.user
    }

    pub(super) fn rooms(&self) -> &Rooms {
        self.rooms
    }

    pub fn can_see(&self, short: u64, pdu: &Pdu) -> Result<bool> {
        let Some(meta) = self.rooms.timeline_meta(short)? else {
            return Ok(false);
        };
        if meta.room != self.short_room || meta.count > self.until {
            return Ok(false);
        }
        let (mut visibility, mut membership) = self.at(meta.state_before)?;
        if let Some(after) = Visibility::set_by(pdu) {
            visibility = visibility.min(after);
        }
        if self.is_own_member_event(pdu) {
            let after = Membership::of_event(pdu);
            if after == Membership::Leave && membership <= Membership::Invite {
                return Ok(true);
            }
            membership = membership.min(after);
        }
        Ok(match (visibility, membership) {
            (Visibility::WorldReadable, _) | (_, Membership::Join) => true,
            (Visibility::Shared, _) => self.joined_since(meta.count),
            (Visibility::Invited, Membership::Invite) => true,
            _ => false,
        })
    }

    fn is_own_member_event(&self, pdu: &Pdu) -> bool {
        pdu.kind == TimelineEventType::RoomMember
            && pdu.state_key.as_deref() == Some(self.user.as_str())
    }

    /// The user's membership at an event, the event's own change included
    /// (`unsigned.membership`, v1.11): `leave` when they had none; `None`
    /// for an event outside the timeline.
    pub fn membership_at(&self, short: u64, pdu: &Pdu) -> Result<Option<Membership>> {
        let Some(meta) = self.rooms.timeline_meta(short)? else {
            return Ok(None);
        };
        if self.is_own_member_event(pdu) {
            return Ok(Some(Membership::of_event(pdu)));
        }
        Ok(Some(self.at(meta.state_before)?.1))
    }

    /// Whether `pdu` is served to the reader pruned, as a redaction prunes
    /// it: its sender, a user of this server, had their content erased
    /// (deactivating with `erase`) when the reader was not joined to the
    /// room; those who could read it then still can.
    pub fn served_pruned(&self, pdu: &Pdu) -> Result<bool> {
        let sender = &pdu.sender;
        if sender.server_name() != self.rooms.server_name || sender == self.user {
            return Ok(false);
        }
        if let Some(known) = self.pruned_senders.lock().get(sender) {
            return Ok(*known);
        }
        let store = &self.rooms.store;
        let erased_at = store.erasures.erased_at(&store.db, sender)?;
        let pruned = match erased_at {
            Some(at) => {
                let state = self.rooms.state_at(self.short_room, at)?;
                self.at(state)?.1 != Membership::Join
            }
            None => false,
        };
        self.pruned_senders.lock().insert(sender.clone(), pruned);
        Ok(pruned)
    }

    /// How the room's version prunes an event.
    pub fn redaction_rules(&self) -> Result<RedactionRules> {
        let record = self
            .rooms
            .record(self.short_room)?
            .ok_or_else(|| Error::not_found("Unknown room"))?;
        Ok(super::build::rules_of(&record)?.redaction)
    }

    pub fn can_see_entry(&self, entry: &TimelineEntry) -> Result<bool> {
        self.can_see(entry.short, &entry.pdu)
    }

    /// The state the user may read: the current one when joined or peeking
    /// into a world-readable room; as it was when they last left after being
    /// joined; `M_FORBIDDEN` if they never were.
    pub fn readable_state(&self) -> Result<u64> {
        if self.reads_current_state {
            return Ok(self
                .rooms
                .record(self.short_room)?
                .map(|r| r.state)
                .unwrap_or(0));
        }
        let left_after_join = self
            .history
            .windows(2)
            .rev()
            .find(|pair| pair[0].1 == Membership::Join && pair[1].1 != Membership::Join)
            .map(|pair| pair[1].0);
        match left_after_join {
            Some(position) => self.rooms.state_at(self.short_room, position),
            None => Err(Error::forbidden("You have never been in this room")),
        }
    }

    /// The state at a place in the timeline when the user could read it then
    /// (joined, or the room world-readable); otherwise [`Self::readable_state`].
    pub fn readable_state_at(&self, place: TimelinePos) -> Result<u64> {
        let place = place.min(TimelinePos::live(self.until));
        let hash = self.rooms.state_at_place(self.short_room, place)?;
        match self.at(hash)? {
            (Visibility::WorldReadable, _) | (_, Membership::Join) => Ok(hash),
            _ => self.readable_state(),
        }
    }
}
