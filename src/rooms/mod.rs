//! The room core: events, auth rules, state, timeline and memberships.

pub mod auth;
pub mod build;
pub mod create;
pub mod directory;
pub mod limits;
pub mod membership;
pub mod pdu;
pub mod power;
pub mod redaction;
pub mod send;
pub mod state;
pub(crate) mod state_view;
pub mod timeline;
pub mod visibility;

use std::collections::HashMap;
use std::sync::Arc;

use matrixos_federation::ServerSigningKey;
use matrixos_storage::{keys, Table};
use parking_lot::Mutex;
use ruma::{EventId, OwnedEventId, OwnedRoomId, OwnedServerName, RoomId, RoomVersionId};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::services::Store;
pub use pdu::Pdu;
use state::StateStore;

/// What the server keeps about a room besides its events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomRecord {
    pub room_id: OwnedRoomId,
    pub version: RoomVersionId,
    /// The current state hash.
    pub state: u64,
    /// Forward extremities: the events a new event points at.
    pub extremities: Vec<OwnedEventId>,
    pub depth: u64,
}

/// Per-event bookkeeping that is not part of the PDU.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventMeta {
    pub room: u64,
    pub count: u64,
    pub state_before: u64,
    pub state_after: u64,
    /// The state event this one replaced (for `unsigned.prev_content`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<u64>,
    /// The sending device and its transaction id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<(String, String)>,
}

/// Cached PDUs; emptied when it grows past this.
const MAX_CACHED_PDUS: usize = 100_000;

pub struct Rooms {
    pub(crate) store: Store,
    pub(crate) server_name: OwnedServerName,
    pub(crate) signing_key: Arc<ServerSigningKey>,
    pub state: StateStore,
    /// Push rules and the notifications they decide, recorded per event.
    pub push: crate::push::Push,
    /// Rooms' heads as the next event must see them, including events queued
    /// for the disk but not yet durable. Only touched under the room lock.
    heads: Mutex<HashMap<u64, RoomRecord>>,
    locks: Mutex<HashMap<OwnedRoomId, Arc<tokio::sync::Mutex<()>>>>,
    pdus: Mutex<HashMap<u64, Arc<Pdu>>>,
    /// Event id → short id for cached PDUs (including ones not yet durable).
    event_shorts: Mutex<HashMap<OwnedEventId, u64>>,
    metas: Mutex<HashMap<u64, Arc<EventMeta>>>,
    short_rooms: Mutex<HashMap<OwnedRoomId, u64>>,
    observer: std::sync::OnceLock<Observer>,
}

/// Told of every event appended locally: short room id, room id, stream
/// position, event. Runs on the append path, so it must be quick.
pub type Observer = Box<dyn Fn(u64, &RoomId, u64, &Arc<Pdu>) + Send + Sync>;

impl Rooms {
    pub fn new(
        store: Store,
        server_name: OwnedServerName,
        signing_key: Arc<ServerSigningKey>,
    ) -> Result<Self> {
        Ok(Self {
            state: StateStore::new(store.db.clone()),
            push: crate::push::Push::new(store.clone())?,
            store,
            server_name,
            signing_key,
            heads: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
            pdus: Mutex::new(HashMap::new()),
            event_shorts: Mutex::new(HashMap::new()),
            metas: Mutex::new(HashMap::new()),
            short_rooms: Mutex::new(HashMap::new()),
            observer: std::sync::OnceLock::new(),
        })
    }

    /// Sets the one observer of appended events (the AI users').
    pub fn set_observer(&self, observer: Observer) {
        let _ = self.observer.set(observer);
    }

    pub(crate) fn notify_observer(
        &self,
        short_room: u64,
        room: &RoomId,
        count: u64,
        pdu: &Arc<Pdu>,
    ) {
        if let Some(observer) = self.observer.get() {
            observer(short_room, room, count, pdu);
        }
    }

    /// Whether the user belongs to this server.
    pub fn is_local(&self, user: &ruma::UserId) -> bool {
        user.server_name() == self.server_name
    }

    /// The lock that serialises building events in one room.
    pub(crate) fn lock(&self, room: &RoomId) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .entry(room.to_owned())
            .or_default()
            .clone()
    }

    pub fn short_room(&self, room: &RoomId) -> Result<Option<u64>> {
        if let Some(s) = self.short_rooms.lock().get(room) {
            return Ok(Some(*s));
        }
        let Some(v) = self.store.db.get(Table::RoomIds, room.as_bytes())? else {
            return Ok(None);
        };
        let short = keys::read_u64(&v).ok_or_else(|| Error::internal("corrupt room id"))?;
        self.short_rooms.lock().insert(room.to_owned(), short);
        Ok(Some(short))
    }

    pub(crate) fn remember_short_room(&self, room: &RoomId, short: u64) {
        self.short_rooms.lock().insert(room.to_owned(), short);
    }

    /// The durable room record (what readers see).
    pub fn record(&self, short_room: u64) -> Result<Option<RoomRecord>> {
        match self.store.db.get(Table::Rooms, &short_room.to_be_bytes())? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// The record by room id; `M_NOT_FOUND` for rooms this server never saw.
    pub fn record_of(&self, room: &RoomId) -> Result<(u64, RoomRecord)> {
        let short = self
            .short_room(room)?
            .ok_or_else(|| Error::not_found("Unknown room"))?;
        let record = self
            .record(short)?
            .ok_or_else(|| Error::not_found("Unknown room"))?;
        Ok((short, record))
    }

    /// The head a new event builds on (must hold the room lock).
    pub(crate) fn head(&self, short_room: u64) -> Result<Option<RoomRecord>> {
        if let Some(h) = self.heads.lock().get(&short_room) {
            return Ok(Some(h.clone()));
        }
        self.record(short_room)
    }

    pub(crate) fn set_head(&self, short_room: u64, record: RoomRecord) {
        self.heads.lock().insert(short_room, record);
    }

    pub(crate) fn forget_head(&self, short_room: u64) {
        self.heads.lock().remove(&short_room);
    }

    /// Forgets a room whose creation was not stored, so that its id does
    /// not resolve to a room that never reached the disk.
    pub(crate) fn forget_room(&self, room: &RoomId, short_room: u64) {
        self.forget_head(short_room);
        self.short_rooms.lock().remove(room);
    }

    pub fn short_event(&self, event: &EventId) -> Result<Option<u64>> {
        if let Some(short) = self.event_shorts.lock().get(event) {
            return Ok(Some(*short));
        }
        Ok(self
            .store
            .db
            .get(Table::EventIds, event.as_bytes())?
            .and_then(|v| keys::read_u64(&v)))
    }

    pub fn pdu_by_short(&self, short: u64) -> Result<Arc<Pdu>> {
        if let Some(p) = self.pdus.lock().get(&short) {
            return Ok(p.clone());
        }
        let raw = self
            .store
            .db
            .get(Table::Events, &short.to_be_bytes())?
            .ok_or_else(|| Error::internal(format!("event {short} missing")))?;
        let pdu: Arc<Pdu> = Arc::new(serde_json::from_slice(&raw)?);
        self.cache_pdu(short, pdu.clone());
        Ok(pdu)
    }

    pub(crate) fn cache_pdu(&self, short: u64, pdu: Arc<Pdu>) {
        let mut pdus = self.pdus.lock();
        let mut shorts = self.event_shorts.lock();
        if pdus.len() >= MAX_CACHED_PDUS {
            pdus.clear();
            shorts.clear();
        }
        shorts.insert(pdu.event_id.clone(), short);
        pdus.insert(short, pdu);
    }

    pub fn pdu(&self, event: &EventId) -> Result<Option<(u64, Arc<Pdu>)>> {
        match self.short_event(event)? {
            Some(short) => Ok(Some((short, self.pdu_by_short(short)?))),
            None => Ok(None),
        }
    }

    pub fn meta(&self, short: u64) -> Result<Arc<EventMeta>> {
        if let Some(meta) = self.metas.lock().get(&short) {
            return Ok(meta.clone());
        }
        let raw = self
            .store
            .db
            .get(Table::EventMeta, &short.to_be_bytes())?
            .ok_or_else(|| Error::internal(format!("event meta {short} missing")))?;
        let meta: Arc<EventMeta> = Arc::new(serde_json::from_slice(&raw)?);
        self.cache_meta(short, meta.clone());
        Ok(meta)
    }

    /// Event metadata never changes once written: cached like PDUs.
    pub(crate) fn cache_meta(&self, short: u64, meta: Arc<EventMeta>) {
        let mut metas = self.metas.lock();
        if metas.len() >= MAX_CACHED_PDUS {
            metas.clear();
        }
        metas.insert(short, meta);
    }

    /// The state event for (type, key) in a state, if any.
    pub fn state_event(
        &self,
        state_hash: u64,
        kind: &str,
        state_key: &str,
    ) -> Result<Option<Arc<Pdu>>> {
        let Some(short_key) = self.state.short_key(kind, state_key)? else {
            return Ok(None);
        };
        match self.state.load(state_hash)?.get(&short_key) {
            Some(short_event) => Ok(Some(self.pdu_by_short(*short_event)?)),
            None => Ok(None),
        }
    }

    /// Every event of a state.
    pub fn state_events(&self, state_hash: u64) -> Result<Vec<Arc<Pdu>>> {
        self.state
            .load(state_hash)?
            .values()
            .map(|short| self.pdu_by_short(*short))
            .collect()
    }
}
