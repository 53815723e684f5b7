//! Appending an event to a room's DAG: the one path every event takes,
//! whoever built it (a local user, the AI, another server). It decides the
//! state before the event (from its prev events, resolved where they fork),
//! gives it a verdict, stores it, and moves the room's forward extremities
//! and current state on.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use matrixos_storage::{tables, Batch, CountGuard};
use ruma::events::TimelineEventType;
use ruma::room_version_rules::RoomVersionRules;
use ruma::{EventId, OwnedEventId, OwnedUserId, UserId};

use super::auth::{judge, Judged, Verdict};
use super::hooks::Appended;
use super::state::StateMap;
use super::state_view::{AuthEventsState, StoredState};
use super::timeline::TimelinePos;
use super::{EventMeta, Pdu, RoomRecord, Rooms};
use crate::error::{Error, Result};
use crate::store::Wake;

/// An event ready to be appended.
pub(crate) struct Incoming {
    pub pdu: Pdu,
    /// The JSON stored for it.
    pub stored: Vec<u8>,
    /// Built here on the room's current state and already authorised
    /// against it: the checks for events from elsewhere are skipped.
    pub local: bool,
    /// The state before the event, when the caller knows it better than
    /// its prev events do (the first event of a room joined from a
    /// snapshot).
    pub state_before: Option<u64>,
    /// The sending device and transaction id, and the key recording it.
    pub txn: Option<((String, String), [String; 5])>,
}

/// What appending an event did.
pub(crate) struct Staged {
    pub head: RoomRecord,
    pub verdict: Verdict,
    /// Why the event was rejected or soft-failed.
    pub reason: Option<String>,
    /// The stream position, for events that joined the timeline.
    pub position: Option<CountGuard>,
    /// Whose syncs the event concerns: the room's, and the user a member
    /// event is about.
    pub wake: Wake,
}

impl Staged {
    /// An event stored but kept out of the timeline: the head stays.
    fn kept_out(head: RoomRecord, verdict: Verdict, reason: Option<String>) -> Self {
        Self {
            head,
            verdict,
            reason,
            position: None,
            wake: Wake::none(),
        }
    }
}

impl Rooms {
    /// Adds an event on `head` to `batch` (caller holds the room lock and
    /// commits the batch) and moves the in-memory head on.
    pub(crate) fn stage(
        &self,
        short_room: u64,
        head: RoomRecord,
        incoming: Incoming,
        batch: &mut Batch,
    ) -> Result<Staged> {
        let rules = head
            .version
            .rules()
            .ok_or_else(|| Error::unsupported_room_version("Unsupported room version"))?;
        let Incoming {
            mut pdu,
            stored,
            local,
            state_before,
            txn,
        } = incoming;
        // A local event is built here on the room's current extremities, so
        // no stored event can share its id: only peers' events are looked up.
        let known = match local {
            true => None,
            false => self.short_event(&pdu.event_id)?,
        };
        let short_event = match known {
            Some(short) if self.is_outlier(short)? => {
                tables::OUTLIERS.delete(batch, &short);
                short
            }
            Some(_) => return Err(Error::invalid_param("Event already in the room")),
            None => self.store.db.allocate_short(batch),
        };
        let fresh = known.is_none();
        let before_id = match state_before {
            Some(id) => id,
            None => self.state_from_prevs(&head, &pdu.prev_events, &rules, batch)?,
        };
        let before = self.state.load(before_id)?;
        let (verdict, reason) = if local {
            (Verdict::Accepted, None)
        } else {
            self.judge(&rules, &pdu, &head, &before)?
        };
        self.put_event(batch, short_event, &pdu.event_id, &stored);
        if verdict == Verdict::Rejected {
            let why = reason.clone().unwrap_or_default();
            tracing::info!(event = %pdu.event_id, reason = %why, "event rejected");
            self.put_rejection(batch, short_event, &why);
            pdu.rejected = true;
            self.cache_pdu(short_event, Arc::new(pdu));
            return Ok(Staged::kept_out(head, verdict, reason));
        }
        let mut replaces = None;
        let mut after_id = before_id;
        if let Some(key) = &pdu.state_key {
            let short_key = self
                .state
                .short_key_or_create(batch, &pdu.kind.to_string(), key)?;
            replaces = before.get(&short_key).copied();
            after_id = self
                .state
                .store_set(batch, before_id, short_key, short_event, fresh)?;
        }
        let mut meta = EventMeta {
            room: short_room,
            count: 0,
            backfill: 0,
            state_before: before_id,
            state_after: after_id,
            verdict,
            replaces,
            txn: txn.as_ref().map(|(t, _)| t.clone()),
        };
        let pdu = Arc::new(pdu);
        self.cache_pdu(short_event, pdu.clone());
        if verdict == Verdict::SoftFailed {
            tracing::info!(event = %pdu.event_id, reason = ?reason, "event soft-failed");
            self.put_meta(batch, short_event, meta);
            return Ok(Staged::kept_out(head, verdict, reason));
        }

        let position = self.store.db.reserve_count(batch);
        let count = position.get();
        meta.count = count;
        self.put_meta(batch, short_event, meta);
        tables::TIMELINE.put(batch, &(short_room, TimelinePos::live(count)), &short_event);
        if let Some((_, key)) = txn {
            tables::EVENT_TXNS.put(batch, &key, &pdu.event_id.to_string());
        }
        if pdu.kind == TimelineEventType::RoomRedaction {
            self.apply_redaction(batch, short_room, &before, &rules, &pdu, short_event)?;
        }
        let new_head = self.advance_head(&head, &pdu, after_id, &rules, batch)?;
        let mut wake = Wake::room(&new_head.room_id);
        if new_head.state != head.state {
            tables::ROOM_STATES.put(batch, &(short_room, count), &new_head.state);
            for member in self.index_state_change(batch, short_room, &head, &new_head, count)? {
                wake = wake.and_user(&member);
            }
        }
        tables::ROOMS.put(batch, &short_room, &new_head);
        self.index_relation(batch, short_room, &pdu, short_event, count)?;
        self.hooks.run(
            self,
            batch,
            &Appended {
                short_room,
                count,
                short_event,
                head: &head,
                after: &new_head,
                pdu: &pdu,
                state_before: before_id,
                state_after: after_id,
                replaces,
            },
        )?;
        self.set_head(short_room, new_head.clone());
        Ok(Staged {
            head: new_head,
            verdict,
            reason: None,
            position: Some(position),
            wake,
        })
    }

    pub(super) fn put_meta(&self, batch: &mut Batch, short_event: u64, meta: EventMeta) {
        tables::EVENT_META.put(batch, &short_event, &meta);
        self.cache_meta(short_event, Arc::new(meta));
    }

    /// Records an event's id and its `stored_event` record.
    pub(super) fn put_event(&self, batch: &mut Batch, short: u64, id: &EventId, stored: &Vec<u8>) {
        tables::EVENTS.put(batch, &short, stored);
        tables::EVENT_IDS.put(batch, id.as_str(), &short);
        self.events.hold(batch, short, id, stored);
    }

    /// Records why an event was rejected.
    pub(super) fn put_rejection(&self, batch: &mut Batch, short: u64, reason: &str) {
        self.note_rejection();
        tables::REJECTIONS.put(batch, &short, &reason.to_owned());
    }

    pub(crate) fn is_outlier(&self, short_event: u64) -> Result<bool> {
        Ok(tables::OUTLIERS.contains(&self.store.db, &short_event)?)
    }

    /// The spec's three checks for an event from elsewhere.
    fn judge(
        &self,
        rules: &RoomVersionRules,
        pdu: &Pdu,
        head: &RoomRecord,
        before: &Arc<StateMap>,
    ) -> Result<(Verdict, Option<String>)> {
        let auth_events = AuthEventsState::of(
            self,
            pdu,
            rules.authorization.room_create_event_id_as_room_id,
        )?;
        let before = StoredState {
            rooms: self,
            state: before.clone(),
        };
        let current = StoredState {
            rooms: self,
            state: self.state.load(head.state)?,
        };
        judge(
            &rules.authorization,
            pdu,
            Judged {
                auth_events: &auth_events,
                before: &before,
                current: &current,
            },
        )
    }

    /// The state before an event with these prev events: the state after
    /// the one prev event, or the resolution of the states after each.
    /// Building on exactly the room's forward extremities is the room's
    /// current state, already resolved.
    fn state_from_prevs(
        &self,
        head: &RoomRecord,
        prevs: &[OwnedEventId],
        rules: &RoomVersionRules,
        batch: &mut Batch,
    ) -> Result<u64> {
        let prev_set: BTreeSet<&OwnedEventId> = prevs.iter().collect();
        let extremities: BTreeSet<&OwnedEventId> = head.extremities.iter().collect();
        if prev_set == extremities {
            return Ok(head.state);
        }
        let mut states = Vec::with_capacity(prev_set.len());
        for prev in prev_set {
            states.push(self.state_after_event(prev)?);
        }
        self.resolve_ids(&states, rules, batch)
    }

    /// The state after an event of the room's DAG (not an outlier).
    fn state_after_event(&self, event: &OwnedEventId) -> Result<u64> {
        let short = self
            .short_event(event)?
            .ok_or_else(|| Error::bad_json(format!("Unknown prev event {event}")))?;
        if self.is_outlier(short)? {
            return Err(Error::bad_json(format!(
                "Prev event {event} is not in the room's DAG"
            )));
        }
        let meta = self.meta(short)?;
        Ok(meta.state_after)
    }

    /// The resolution of several stored states, stored in turn.
    pub(super) fn resolve_ids(
        &self,
        ids: &[u64],
        rules: &RoomVersionRules,
        batch: &mut Batch,
    ) -> Result<u64> {
        let distinct: BTreeSet<u64> = ids.iter().copied().collect();
        if let [only] = distinct.iter().copied().collect::<Vec<_>>().as_slice() {
            return Ok(*only);
        }
        let states = distinct
            .iter()
            .map(|id| self.state.load(*id))
            .collect::<Result<Vec<_>>>()?;
        let resolved = self.resolve_states(rules, &states, batch)?;
        let parent = distinct.iter().next().copied().unwrap_or(0);
        self.state.store(batch, parent, resolved)
    }

    /// The room's head after an accepted event: forward extremities lose
    /// the event's prev events and gain the event; the current state is
    /// the state after the event when it builds on every extremity, or the
    /// resolution of the states after each remaining extremity.
    fn advance_head(
        &self,
        head: &RoomRecord,
        pdu: &Pdu,
        after_id: u64,
        rules: &RoomVersionRules,
        batch: &mut Batch,
    ) -> Result<RoomRecord> {
        let prevs: HashSet<&OwnedEventId> = pdu.prev_events.iter().collect();
        let others: Vec<OwnedEventId> = head
            .extremities
            .iter()
            .filter(|e| !prevs.contains(e))
            .cloned()
            .collect();
        let mut next = head.clone();
        next.depth = head.depth.max(u64::from(pdu.depth));
        next.state = if others.is_empty() {
            after_id
        } else {
            let mut states = vec![after_id];
            for other in &others {
                states.push(self.state_after_event(other)?);
            }
            self.resolve_ids(&states, rules, batch)?
        };
        next.extremities = others;
        next.extremities.push(pdu.event_id.clone());
        Ok(next)
    }

    /// Keeps the membership index in step with the current state: every
    /// member whose state event changed (a new member event, or a state
    /// resolution that chose another one) is indexed again. Returns them.
    pub(crate) fn index_state_change(
        &self,
        batch: &mut Batch,
        short_room: u64,
        head: &RoomRecord,
        after: &RoomRecord,
        count: u64,
    ) -> Result<Vec<OwnedUserId>> {
        let old = self.state.load(head.state)?;
        let mut changed = Vec::new();
        let new = self.state.load(after.state)?;
        for (key, event) in new.iter() {
            if old.get(key) == Some(event) {
                continue;
            }
            let (kind, _) = self.state.key_of(*key)?;
            if kind != "m.room.member" {
                continue;
            }
            let pdu = self.pdu_by_short(*event)?;
            self.index_membership(batch, short_room, after, &pdu, *event, count)?;
            if let Some(user) = pdu.state_key.as_deref().and_then(|k| UserId::parse(k).ok()) {
                changed.push(user);
            }
        }
        Ok(changed)
    }
}
