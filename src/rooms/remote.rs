//! Events from elsewhere: PDUs other servers signed, whose signatures the
//! caller (the federation layer) has checked. They are identified by their
//! room version's rules, checked three ways and appended to the DAG; events
//! that are only known (auth events, state received for a join) are kept as
//! outliers; and a room can be born from a snapshot of its state, checked
//! and stored as one batch, so that a crash mid-join leaves nothing or the
//! whole room.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use matrixos_federation::event_id_for_pdu;
use matrixos_storage::{tables, Batch};
use ruma::canonical_json::CanonicalJsonObject;
use ruma::room_version_rules::RoomVersionRules;
use ruma::{OwnedEventId, OwnedRoomId, RoomId, RoomVersionId};

use super::append::Incoming;
use super::auth::{decide, Verdict};
use super::state::StateMap;
use super::state_view::AuthEventsState;
use super::{stored_event, Pdu, RoomRecord, Rooms};
use crate::error::{Error, Result};

/// A PDU from another server, identified and ready to store.
#[derive(Debug, Clone)]
pub struct RemotePdu {
    pub pdu: Pdu,
    /// Its record (`stored_event`): the id and the signed PDU.
    stored: Vec<u8>,
}

/// A write on its way to the disk.
pub type Durable = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>>;

/// The outcome of appending a PDU from elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub event_id: OwnedEventId,
    pub verdict: Verdict,
    pub reason: Option<String>,
}

/// A room as a resident server describes it for a join: the state before
/// the join event, the auth chain of that state and of the join, and the
/// join event itself.
pub struct Snapshot {
    pub room_id: OwnedRoomId,
    pub version: RoomVersionId,
    pub state: Vec<RemotePdu>,
    pub auth_chain: Vec<RemotePdu>,
    pub join: RemotePdu,
}

fn rules_of(version: &RoomVersionId) -> Result<RoomVersionRules> {
    version
        .rules()
        .ok_or_else(|| Error::unsupported_room_version(format!("Room version {version}")))
}

impl RemotePdu {
    /// Checks a PDU's format for its room version and identifies it. The
    /// caller has verified its signatures and hashes.
    pub fn parse(version: &RoomVersionId, mut object: CanonicalJsonObject) -> Result<Self> {
        let rules = rules_of(version)?;
        object.remove("unsigned");
        ruma::state_res::check_pdu_format(&object, &rules.event_format)
            .map_err(|e| Error::bad_json(format!("Malformed PDU: {e}")))?;
        let event_id = event_id_for_pdu(&object, &rules)
            .map_err(|e| Error::bad_json(format!("PDU has no valid event id: {e}")))?;
        Self::with_id(object, event_id)
    }

    /// A PDU whose event id the caller computed from this very object
    /// (after its format was checked, with `event_id_for_pdu`).
    pub fn parse_as(
        version: &RoomVersionId,
        mut object: CanonicalJsonObject,
        event_id: OwnedEventId,
    ) -> Result<Self> {
        let rules = rules_of(version)?;
        object.remove("unsigned");
        ruma::state_res::check_pdu_format(&object, &rules.event_format)
            .map_err(|e| Error::bad_json(format!("Malformed PDU: {e}")))?;
        Self::with_id(object, event_id)
    }

    fn with_id(object: CanonicalJsonObject, event_id: OwnedEventId) -> Result<Self> {
        let signed = serde_json::to_vec(&object)?;
        let pdu = Pdu::from_signed(Some(event_id.clone()), &signed)
            .map_err(|e| Error::bad_json(format!("Malformed PDU: {e}")))?;
        let stored = stored_event::encode(&event_id, &signed)?;
        Ok(Self { pdu, stored })
    }

    pub fn event_id(&self) -> &OwnedEventId {
        &self.pdu.event_id
    }

    /// The PDU exactly as signed.
    pub fn signed_json(&self) -> Result<Box<serde_json::value::RawValue>> {
        let bytes = stored_event::signed_pdu(&self.stored)?;
        let text = String::from_utf8(bytes).map_err(|_| Error::internal("PDU is not UTF-8"))?;
        serde_json::value::RawValue::from_string(text)
            .map_err(|e| Error::internal(format!("PDU: {e}")))
    }

    /// The event and its record.
    pub(crate) fn into_parts(self) -> (Pdu, Vec<u8>) {
        (self.pdu, self.stored)
    }
}

impl Rooms {
    /// Appends a PDU from elsewhere to a room this server is in. Its prev
    /// events must be known (fetching missing ones is the federation
    /// layer's work). A PDU already known answers as it was judged then.
    pub async fn append_remote(
        self: &Arc<Self>,
        room: &RoomId,
        remote: RemotePdu,
    ) -> Result<Appended> {
        let (appended, durable) = self.stage_remote(room, remote, None).await?;
        durable.await?;
        Ok(appended)
    }

    /// [`Self::append_remote`] without waiting for the write: the event is
    /// judged and the room's head moved on (later events may build on it at
    /// once); the future resolves when it is durable. A PDU already known
    /// is judged as it was, with nothing to wait for.
    ///
    /// `state_before`, for an event whose prev events could not all be
    /// fetched, names the (known) state events before it, as a peer's
    /// `/state_ids` gave them; without it the state before the event is
    /// the state after its prev events.
    pub async fn stage_remote(
        self: &Arc<Self>,
        room: &RoomId,
        remote: RemotePdu,
        state_before: Option<Vec<OwnedEventId>>,
    ) -> Result<(Appended, Durable)> {
        let lock = self.lock(room);
        let guard = lock.lock().await;
        let (short_room, _) = self.record_of(room)?;
        if let Some(short) = self.short_event(remote.event_id())? {
            if !self.is_outlier(short)? {
                let judged = self.judged(short, remote.event_id().clone())?;
                return Ok((judged, Box::pin(std::future::ready(Ok(())))));
            }
        }
        let head = self
            .head(short_room)?
            .ok_or_else(|| Error::not_found("Unknown room"))?;
        let rooms = self.clone();
        let incoming = Incoming {
            pdu: remote.pdu.clone(),
            stored: remote.stored,
            local: false,
            state_before: None,
            txn: None,
        };
        // A batch dropped unwritten (staging failed) takes back what
        // staging cached.
        let (staged, batch) = crate::blocking::off_async(move || {
            let mut batch = Batch::new();
            let mut incoming = incoming;
            if let Some(ids) = state_before {
                let state = rooms.state_of_known(&ids, |id| rooms.short_event(id), &mut batch)?;
                incoming.state_before = Some(rooms.state.store(&mut batch, 0, state)?);
            }
            let staged = rooms.stage(short_room, head, incoming, &mut batch)?;
            Ok((staged, batch))
        })
        .await?;
        let positions = staged.position.into_iter().collect();
        let commit = self.store.commit(batch, positions, staged.wake);
        drop(guard);
        let rooms = self.clone();
        let durable = async move {
            let result = commit.await;
            if result.is_err() {
                rooms.forget_head(short_room);
            }
            result
        };
        let appended = Appended {
            event_id: remote.pdu.event_id,
            verdict: staged.verdict,
            reason: staged.reason,
        };
        Ok((appended, Box::pin(durable)))
    }

    /// Stores events of a room this server is in as outliers (auth events
    /// fetched for an event from elsewhere), each checked against its own
    /// auth events, in one batch. Under the room lock until the batch is
    /// written: an event appended to the DAG meanwhile is not made an
    /// outlier too, and one made an outlier is seen as one when it then
    /// joins the DAG.
    pub async fn store_outliers(
        self: &Arc<Self>,
        room: &RoomId,
        events: Vec<RemotePdu>,
    ) -> Result<()> {
        let lock = self.lock(room);
        let _guard = lock.lock().await;
        let (_, record) = self.record_of(room)?;
        let rules = rules_of(&record.version)?;
        let rooms = self.clone();
        let batch = crate::blocking::off_async(move || {
            let mut batch = Batch::new();
            rooms.stage_outliers(events, &rules, &mut batch)?;
            Ok(batch)
        })
        .await;
        self.store
            .commit(batch?, Vec::new(), crate::store::Wake::none())
            .await
    }

    /// Whether an event is in a room's DAG (not only known as an outlier).
    pub fn in_dag(&self, event: &ruma::EventId) -> Result<bool> {
        match self.short_event(event)? {
            Some(short) => Ok(!self.is_outlier(short)?),
            None => Ok(false),
        }
    }

    /// How a stored (or staged) event was judged.
    pub(super) fn judged(&self, short: u64, event_id: OwnedEventId) -> Result<Appended> {
        // The PDU knows it was rejected, also while its batch is on its
        // way to the disk (the reason is there only once it is written).
        if self.pdu_by_short(short)?.rejected {
            return Ok(Appended {
                event_id,
                verdict: Verdict::Rejected,
                reason: tables::REJECTIONS.get(&self.store.db, &short)?,
            });
        }
        let verdict = self.meta(short)?.verdict;
        Ok(Appended {
            event_id,
            verdict,
            reason: None,
        })
    }

    /// Stores events as outliers, each checked against its own auth events
    /// (a failure stores it rejected). Auth events come before the events
    /// they authorise, whatever order they arrive in; events already known
    /// are left as they are. Returns the short id of every event given.
    pub(crate) fn stage_outliers(
        &self,
        events: Vec<RemotePdu>,
        rules: &RoomVersionRules,
        batch: &mut Batch,
    ) -> Result<HashMap<OwnedEventId, u64>> {
        let mut shorts = HashMap::with_capacity(events.len());
        for remote in auth_order(events) {
            if let Some(short) = self.short_event(remote.event_id())? {
                shorts.insert(remote.pdu.event_id, short);
                continue;
            }
            let RemotePdu { mut pdu, stored } = remote;
            let short = self.store.db.allocate_short(batch);
            let auth_events = AuthEventsState::of(
                self,
                &pdu,
                rules.authorization.room_create_event_id_as_room_id,
            )?;
            self.put_event(batch, short, &pdu.event_id, &stored);
            tables::OUTLIERS.put(batch, &short, &());
            if let Err(reason) = decide(&rules.authorization, &pdu, &auth_events)? {
                tracing::info!(event = %pdu.event_id, %reason, "outlier rejected");
                self.put_rejection(batch, short, &reason);
                pdu.rejected = true;
            }
            shorts.insert(pdu.event_id.clone(), short);
            self.cache_pdu(short, Arc::new(pdu));
        }
        Ok(shorts)
    }

    /// Joins a room from a snapshot: the auth chain and the state are
    /// stored as outliers, the state becomes the state before the join
    /// event, and the join event is the first event of the room's timeline;
    /// all of it in one batch. A state event the auth rules reject refuses
    /// the whole snapshot.
    pub async fn join_from_snapshot(self: &Arc<Self>, snapshot: Snapshot) -> Result<Appended> {
        let Snapshot {
            room_id,
            version,
            state,
            auth_chain,
            join,
        } = snapshot;
        let rules = rules_of(&version)?;
        let lock = self.lock(&room_id);
        let _guard = lock.lock().await;
        let mut batch = Batch::new();
        // A room this server left (no member of it joined) is joined again
        // the same way: the snapshot's state replaces what it knew.
        let (short_room, previous) = match self.short_room(&room_id)? {
            Some(_) if self.has_joined_member(&room_id)? => {
                return Err(Error::invalid_param("This server is already in the room"));
            }
            Some(short) => (short, self.head(short)?),
            None => (self.allocate_room(&mut batch, &room_id), None),
        };
        let state_ids: Vec<OwnedEventId> = state.iter().map(|e| e.event_id().clone()).collect();
        let mut known = auth_chain;
        known.extend(state);
        let event_id = join.pdu.event_id.clone();
        let rooms = self.clone();
        let room = room_id.clone();
        let result = crate::blocking::off_async(move || {
            let staged = rooms.join_staged(
                short_room, &room, version, &state_ids, known, join, previous, &rules, &mut batch,
            )?;
            Ok((staged, batch))
        })
        .await;
        let (staged, batch) = match result {
            Ok(staged) => staged,
            Err(e) => {
                self.forget_room(&room_id, short_room);
                return Err(e);
            }
        };
        if let Err(e) = self
            .store
            .commit(batch, staged.position.into_iter().collect(), staged.wake)
            .await
        {
            self.forget_room(&room_id, short_room);
            return Err(e);
        }
        Ok(Appended {
            event_id,
            verdict: Verdict::Accepted,
            reason: None,
        })
    }

    /// Stages a snapshot join in `batch`: the outliers, the state, the join.
    /// `previous` is what this server knew of the room before, if it had
    /// left it.
    #[allow(clippy::too_many_arguments)]
    fn join_staged(
        &self,
        short_room: u64,
        room_id: &RoomId,
        version: RoomVersionId,
        state_ids: &[OwnedEventId],
        known: Vec<RemotePdu>,
        join: RemotePdu,
        previous: Option<RoomRecord>,
        rules: &RoomVersionRules,
        batch: &mut Batch,
    ) -> Result<super::append::Staged> {
        let shorts = self.snapshot_state(state_ids, known, rules, batch)?;
        let state_id = self.state.store(batch, 0, shorts)?;
        self.remember_short_room(room_id, short_room);
        let head = RoomRecord {
            room_id: room_id.to_owned(),
            version,
            state: state_id,
            extremities: join.pdu.prev_events.clone(),
            depth: u64::from(join.pdu.depth).saturating_sub(1),
        };
        let empty = previous.unwrap_or_else(|| RoomRecord {
            state: 0,
            ..head.clone()
        });
        let staged = self.stage(
            short_room,
            head,
            Incoming {
                pdu: join.pdu,
                stored: join.stored,
                local: false,
                state_before: Some(state_id),
                txn: None,
            },
            batch,
        )?;
        if !staged.verdict.is_accepted() {
            return Err(Error::forbidden(format!(
                "The join event was refused: {}",
                staged.reason.unwrap_or_default()
            )));
        }
        let count = staged.position.as_ref().map_or(0, |p| p.get());
        let mut staged = staged;
        for member in self.index_state_change(batch, short_room, &empty, &staged.head, count)? {
            staged.wake = staged.wake.and_user(&member);
        }
        Ok(staged)
    }

    /// Stores a snapshot's events as outliers and returns its state.
    fn snapshot_state(
        &self,
        state_ids: &[OwnedEventId],
        events: Vec<RemotePdu>,
        rules: &RoomVersionRules,
        batch: &mut Batch,
    ) -> Result<StateMap> {
        let shorts = self.stage_outliers(events, rules, batch)?;
        self.state_of_known(state_ids, |id| Ok(shorts.get(id).copied()), batch)
    }

    /// The state the events `ids` form; `short_of` finds each (all must be
    /// known, accepted state events).
    pub(super) fn state_of_known(
        &self,
        ids: &[OwnedEventId],
        short_of: impl Fn(&OwnedEventId) -> Result<Option<u64>>,
        batch: &mut Batch,
    ) -> Result<StateMap> {
        let mut state = StateMap::new();
        for id in ids {
            let short = short_of(id)?
                .ok_or_else(|| Error::bad_json(format!("State event {id} is not known")))?;
            let pdu = self.pdu_by_short(short)?;
            if pdu.rejected {
                return Err(Error::forbidden(format!(
                    "The room's state holds an event the auth rules reject: {id}"
                )));
            }
            let Some(key) = &pdu.state_key else {
                return Err(Error::bad_json(format!(
                    "{id} in the room state is not a state event"
                )));
            };
            let short_key = self
                .state
                .short_key_or_create(batch, &pdu.kind.to_string(), key)?;
            state.insert(short_key, short);
        }
        Ok(state)
    }
}

/// Orders events so that each comes after those of its auth events that
/// are in the set, and every event after the create event (from room
/// version 12 no auth event names it). Kahn's algorithm; events caught in
/// a cycle go last, in their order, and fail their checks.
fn auth_order(mut events: Vec<RemotePdu>) -> Vec<RemotePdu> {
    events.sort_by_key(|e| e.pdu.kind != ruma::events::TimelineEventType::RoomCreate);
    let index: HashMap<OwnedEventId, usize> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.event_id().clone(), i))
        .collect();
    let mut waiting_on = vec![0usize; events.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); events.len()];
    for (i, event) in events.iter().enumerate() {
        let parents: HashSet<usize> = event
            .pdu
            .auth_events
            .iter()
            .filter_map(|a| index.get(a).copied())
            .filter(|p| *p != i)
            .collect();
        waiting_on[i] = parents.len();
        for p in parents {
            dependents[p].push(i);
        }
    }
    let mut ready: VecDeque<usize> = (0..events.len()).filter(|i| waiting_on[*i] == 0).collect();
    let mut order = Vec::with_capacity(events.len());
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for d in std::mem::take(&mut dependents[i]) {
            waiting_on[d] -= 1;
            if waiting_on[d] == 0 {
                ready.push_back(d);
            }
        }
    }
    let placed: HashSet<usize> = order.iter().copied().collect();
    order.extend((0..events.len()).filter(|i| !placed.contains(i)));
    let mut slots: Vec<Option<RemotePdu>> = events.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}
