//! History from before what the server has seen of a room: events a peer
//! sends in answer to `/backfill`. They go into the timeline before every
//! event seen so far (the oldest lowest), never change the current state or
//! the forward extremities, and wake nobody: they are found by paginating
//! backwards. Each is checked against its auth events and against the state
//! before it: the state after its prev events when they are known, else
//! the state a peer gave for it (`/state_ids`); one that fails is kept
//! rejected, out of the timeline.

use std::collections::HashMap;
use std::sync::Arc;

use matrixos_storage::{tables, Batch};
use ruma::events::TimelineEventType;
use ruma::room_version_rules::RoomVersionRules;
use ruma::{OwnedEventId, RoomId};

use super::auth::{decide, Verdict};
use super::remote::{Appended, RemotePdu};
use super::state::StateMap;
use super::state_view::{AuthEventsState, StoredState};
use super::timeline::TimelinePos;
use super::{EventMeta, Pdu, Rooms};
use crate::error::{Error, Result};
use crate::store::Wake;

/// Most events one backfill stores (a `/backfill` answer is capped by the
/// asking server; this bounds what a peer can make one call write).
pub const MAX_BACKFILL: usize = 1000;

impl Rooms {
    /// Stores a peer's backfill answer for a room this server is in. Events
    /// already in the timeline are left as they were judged; outliers (state
    /// received for a join) move into the timeline. The caller has verified
    /// signatures and hashes.
    ///
    /// `states` names, for events whose prev events are not known here
    /// (the oldest of the answer), the state events before them as a peer
    /// gave them, all stored here; an event without prev events known and
    /// without a state given is judged by the state its auth events form.
    pub async fn backfill(
        self: &Arc<Self>,
        room: &RoomId,
        events: Vec<RemotePdu>,
        states: HashMap<OwnedEventId, Vec<OwnedEventId>>,
    ) -> Result<Vec<Appended>> {
        if events.len() > MAX_BACKFILL {
            return Err(Error::bad_json(format!(
                "A backfill holds at most {MAX_BACKFILL} events"
            )));
        }
        let lock = self.lock(room);
        let guard = lock.lock().await;
        let (short_room, record) = self.record_of(room)?;
        let rules = record
            .version
            .rules()
            .ok_or_else(|| Error::unsupported_room_version("Unsupported room version"))?;
        let mut fresh = Vec::with_capacity(events.len());
        let mut outcome = Vec::with_capacity(events.len());
        for event in events {
            match self.short_event(event.event_id())? {
                Some(short) if !self.is_outlier(short)? => {
                    outcome.push(self.judged(short, event.event_id().clone())?);
                }
                _ if fresh
                    .iter()
                    .any(|e: &RemotePdu| e.event_id() == event.event_id()) => {}
                _ => fresh.push(event),
            }
        }
        // Oldest first, so that an event's prev events are stored before it.
        fresh.sort_by(|a, b| (a.pdu.depth, a.event_id()).cmp(&(b.pdu.depth, b.event_id())));
        let rooms = self.clone();
        let (judged, batch, rules) = crate::blocking::off_async(move || {
            let mut batch = Batch::new();
            let newest = rooms
                .store
                .db
                .allocate_backfill(&mut batch, fresh.len() as u64);
            let count = fresh.len() as u64;
            let mut judged = Vec::with_capacity(fresh.len());
            for (i, event) in fresh.into_iter().enumerate() {
                let number = newest + (count - 1 - i as u64);
                let given = states.get(event.event_id()).map(Vec::as_slice);
                let staged =
                    rooms.stage_backfilled(short_room, &rules, event, given, number, &mut batch)?;
                judged.push(staged);
            }
            Ok((judged, batch, rules))
        })
        .await?;
        let mut redactions = Vec::new();
        for (appended, redaction) in judged {
            redactions.extend(redaction);
            outcome.push(appended);
        }
        self.store.commit(batch, Vec::new(), Wake::none()).await?;
        // Redactions apply once their targets are on disk.
        if !redactions.is_empty() {
            let mut batch = Batch::new();
            for short in redactions {
                let pdu = self.pdu_by_short(short)?;
                let before = self.state.load(self.meta(short)?.state_before)?;
                self.apply_redaction(&mut batch, short_room, &before, &rules, &pdu, short)?;
            }
            self.store.commit(batch, Vec::new(), Wake::none()).await?;
        }
        drop(guard);
        Ok(outcome)
    }

    /// Stages one backfilled event at backfill number `number`. Returns how
    /// it was judged and, for an accepted redaction, its short id.
    fn stage_backfilled(
        &self,
        short_room: u64,
        rules: &RoomVersionRules,
        event: RemotePdu,
        given_state: Option<&[OwnedEventId]>,
        number: u64,
        batch: &mut Batch,
    ) -> Result<(Appended, Option<u64>)> {
        let (mut pdu, stored) = event.into_parts();
        let short = match self.short_event(&pdu.event_id)? {
            Some(short) => {
                tables::OUTLIERS.delete(batch, &short);
                short
            }
            None => self.store.db.allocate_short(batch),
        };
        self.put_event(batch, short, &pdu.event_id, &stored);
        let (before_id, reason) = self.backfill_checks(rules, &pdu, given_state, batch)?;
        if let Some(reason) = reason {
            tracing::info!(event = %pdu.event_id, %reason, "backfilled event rejected");
            self.put_rejection(batch, short, &reason);
            let event_id = pdu.event_id.clone();
            pdu.rejected = true;
            self.cache_pdu(short, Arc::new(pdu));
            let appended = Appended {
                event_id,
                verdict: Verdict::Rejected,
                reason: Some(reason),
            };
            return Ok((appended, None));
        }
        let before = self.state.load(before_id)?;
        let (after_id, replaces) = match &pdu.state_key {
            Some(state_key) => {
                let short_key =
                    self.state
                        .short_key_or_create(batch, &pdu.kind.to_string(), state_key)?;
                let replaces = before.get(&short_key).copied();
                let after = self
                    .state
                    .store_set(batch, before_id, short_key, short, false)?;
                (after, replaces)
            }
            None => (before_id, None),
        };
        let position = TimelinePos::backfilled(number);
        tables::TIMELINE.put(batch, &(short_room, position), &short);
        self.put_meta(
            batch,
            short,
            EventMeta {
                room: short_room,
                count: 0,
                backfill: number,
                state_before: before_id,
                state_after: after_id,
                verdict: Verdict::Accepted,
                replaces,
                txn: None,
            },
        );
        self.index_relation(batch, short_room, &pdu, short, 0)?;
        self.hooks.run_backfilled(self, batch, short, &pdu)?;
        let redaction = (pdu.kind == TimelineEventType::RoomRedaction).then_some(short);
        let appended = Appended {
            event_id: pdu.event_id.clone(),
            verdict: Verdict::Accepted,
            reason: None,
        };
        self.cache_pdu(short, Arc::new(pdu));
        Ok((appended, redaction))
    }

    /// The state before a backfilled event and, if it fails the auth
    /// rules, why. With its prev events known, the state before it is the
    /// (resolved) state after them; otherwise, the oldest known, it is the
    /// state a peer gave for it or, failing that, the state its auth
    /// events form.
    fn backfill_checks(
        &self,
        rules: &RoomVersionRules,
        pdu: &Pdu,
        given_state: Option<&[OwnedEventId]>,
        batch: &mut Batch,
    ) -> Result<(u64, Option<String>)> {
        let create_implied = rules.authorization.room_create_event_id_as_room_id;
        let auth_events = AuthEventsState::of(self, pdu, create_implied)?;
        if let Err(reason) = decide(&rules.authorization, pdu, &auth_events)? {
            return Ok((0, Some(reason)));
        }
        let mut prev_states = Vec::with_capacity(pdu.prev_events.len());
        for prev in &pdu.prev_events {
            match self.short_event(prev)? {
                Some(short) => match self.timeline_meta(short)? {
                    Some(meta) => prev_states.push(meta.state_after),
                    None => break,
                },
                None => break,
            }
        }
        let before_id = if prev_states.len() < pdu.prev_events.len() || prev_states.is_empty() {
            let state = self.oldest_state(pdu, given_state, create_implied, batch)?;
            self.state.store(batch, 0, state)?
        } else {
            self.resolve_ids(&prev_states, rules, batch)?
        };
        let before = StoredState {
            rooms: self,
            state: self.state.load(before_id)?,
        };
        let refusal = decide(&rules.authorization, pdu, &before)?.err();
        Ok((before_id, refusal))
    }

    /// The state before an event whose prev events are not known here: the
    /// state a peer gave for it if every event of it is known and accepted,
    /// else the state its auth events form.
    fn oldest_state(
        &self,
        pdu: &Pdu,
        given_state: Option<&[OwnedEventId]>,
        create_implied: bool,
        batch: &mut Batch,
    ) -> Result<StateMap> {
        if let Some(ids) = given_state {
            match self.state_of_known(ids, |id| self.short_event(id), batch) {
                Ok(state) => return Ok(state),
                Err(e) => tracing::info!(
                    event = %pdu.event_id, error = %e,
                    "state given for a backfilled event not taken"
                ),
            }
        }
        self.auth_events_state(pdu, create_implied, batch)
    }

    /// An event's auth events (the ones this server has) as a state.
    fn auth_events_state(
        &self,
        pdu: &Pdu,
        create_implied: bool,
        batch: &mut Batch,
    ) -> Result<StateMap> {
        let mut state = StateMap::new();
        for (short, event) in AuthEventsState::events_of(self, pdu, create_implied)? {
            if let Some(key) = &event.state_key {
                let short_key =
                    self.state
                        .short_key_or_create(batch, &event.kind.to_string(), key)?;
                state.insert(short_key, short);
            }
        }
        Ok(state)
    }
}
