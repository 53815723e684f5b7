//! What the room core tells other servers: a membership event template for
//! a user of theirs (`make_join`, `make_leave`), the state before an event
//! and the auth chain of a set of events (`send_join`, `/state_ids`), and
//! walks of the DAG backwards (`/get_missing_events`, `/backfill`).

use std::collections::{BTreeSet, HashSet, VecDeque};

use ruma::events::StateEventType;
use ruma::{EventId, OwnedEventId, RoomId, RoomVersionId, UserId};
use serde_json::Value;

use super::build::rules_of;
use super::send::EventDraft;
use super::state_view::StoredState;
use super::{auth, Pdu, Rooms};
use crate::error::{Error, Result};

/// The most events one walk of the DAG returns.
pub const MAX_WALK: usize = 100;

impl Rooms {
    /// The unsigned member event `user` (of another server) would send to
    /// change their membership to `content`'s, built on the room's current
    /// state, and refused here when the auth rules would refuse it. Returns
    /// the room version with it.
    pub fn membership_template(
        &self,
        room: &RoomId,
        user: &UserId,
        content: Value,
    ) -> Result<(RoomVersionId, Value)> {
        let (_, head) = self.record_of(room)?;
        let rules = rules_of(&head)?;
        let state = StoredState {
            rooms: self,
            state: self.state.load(head.state)?,
        };
        let draft = EventDraft::state(StateEventType::RoomMember, user.as_str(), content);
        let template = self.template(&head, &state, user, draft, true, &rules)?;
        // The auth rules read no event id: a stand-in lets them run.
        let stand_in = OwnedEventId::try_from("$template:stand.in")
            .map_err(|e| Error::internal(e.to_string()))?;
        let pdu = Pdu::from_signed(Some(stand_in), &serde_json::to_vec(&template)?)?;
        auth::check(&rules.authorization, &pdu, &state)?;
        Ok((head.version, template))
    }

    /// The short id of an event of `room`'s timeline, or 404.
    pub fn timeline_event_in(&self, room: &RoomId, event: &EventId) -> Result<u64> {
        let short_room = self
            .short_room(room)?
            .ok_or_else(|| Error::not_found("Unknown room"))?;
        let short = self
            .short_event(event)?
            .ok_or_else(|| Error::not_found("Unknown event"))?;
        match self.timeline_meta(short)? {
            Some(meta) if meta.room == short_room => Ok(short),
            _ => Err(Error::not_found("Unknown event")),
        }
    }

    /// The room's state before one of its events, as short event ids.
    pub fn state_before_event(&self, room: &RoomId, event: &EventId) -> Result<Vec<u64>> {
        let short = self.timeline_event_in(room, event)?;
        let meta = self.meta(short)?;
        Ok(self
            .state
            .load(meta.state_before)?
            .values()
            .copied()
            .collect())
    }

    /// The union of the auth chains of `events`, sorted.
    pub fn auth_chain_union(&self, events: &[u64]) -> Result<Vec<u64>> {
        let mut all = BTreeSet::new();
        for short in events {
            all.extend(self.auth_chain(*short, None)?.iter().copied());
        }
        Ok(all.into_iter().collect())
    }

    /// Events of `room` reachable backwards from `latest` through prev
    /// events, not reaching into `earliest`, not below `min_depth`, nearest
    /// first, at most `limit` (and [`MAX_WALK`]); `latest` themselves are
    /// left out. What `/get_missing_events` answers.
    pub fn missing_events(
        &self,
        room: &RoomId,
        earliest: &[OwnedEventId],
        latest: &[OwnedEventId],
        limit: usize,
        min_depth: u64,
    ) -> Result<Vec<u64>> {
        let stop: HashSet<&OwnedEventId> = earliest.iter().collect();
        let mut starts = Vec::new();
        for id in latest {
            if let Ok(short) = self.timeline_event_in(room, id) {
                starts.push(short);
            }
        }
        let given: HashSet<u64> = starts.iter().copied().collect();
        let mut out = self.walk_back(
            room,
            starts,
            limit.saturating_add(given.len()),
            |id| stop.contains(id),
            min_depth,
        )?;
        out.retain(|short| !given.contains(short));
        out.truncate(limit);
        Ok(out)
    }

    /// `from` and the events before them, newest first, at most `limit`
    /// (and [`MAX_WALK`]): what `/backfill` answers.
    pub fn backfill_events(
        &self,
        room: &RoomId,
        from: &[OwnedEventId],
        limit: usize,
    ) -> Result<Vec<u64>> {
        let mut starts = Vec::new();
        for id in from {
            if let Ok(short) = self.timeline_event_in(room, id) {
                starts.push(short);
            }
        }
        self.walk_back(room, starts, limit, |_| false, 0)
    }

    /// A breadth-first walk over prev events from `starts` (included),
    /// deepest first, skipping events `stop` names and events outside the
    /// room's timeline.
    fn walk_back(
        &self,
        room: &RoomId,
        starts: Vec<u64>,
        limit: usize,
        stop: impl Fn(&OwnedEventId) -> bool,
        min_depth: u64,
    ) -> Result<Vec<u64>> {
        let limit = limit.min(MAX_WALK);
        let mut seen: HashSet<u64> = starts.iter().copied().collect();
        let mut queue: VecDeque<u64> = starts.into();
        let mut out = Vec::new();
        while let Some(short) = queue.pop_front() {
            if out.len() >= limit {
                break;
            }
            out.push(short);
            let pdu = self.pdu_by_short(short)?;
            for prev in &pdu.prev_events {
                if stop(prev) {
                    continue;
                }
                let Ok(prev_short) = self.timeline_event_in(room, prev) else {
                    continue;
                };
                if u64::from(self.pdu_by_short(prev_short)?.depth) < min_depth {
                    continue;
                }
                if seen.insert(prev_short) {
                    queue.push_back(prev_short);
                }
            }
        }
        Ok(out)
    }
}
