//! The room core: events, auth rules, state, timeline and memberships.

pub mod append;
pub mod auth;
pub mod auth_chain;
mod auth_shortcut;
pub mod backfill;
pub mod blocked;
pub mod build;
pub mod create;
pub mod directory;
mod event_cache;
mod event_refs;
pub mod hooks;
pub mod joined_servers;
mod key_filter;
pub mod limits;
pub mod membership;
pub mod pdu;
pub mod peer_reads;
pub mod power;
pub mod purge;
pub mod redaction;
pub mod relations;
pub mod remote;
pub mod resolve;
mod resolve_v1;
pub mod send;
pub mod server_visibility;
pub mod state;
mod state_keys;
pub(crate) mod state_view;
pub mod stored_event;
pub mod timeline;
pub mod visibility;

#[cfg(test)]
mod dag_tests;

use std::collections::HashMap;
use std::sync::Arc;

use matrixos_federation::ServerSigningKey;
use matrixos_storage::tables;
use parking_lot::Mutex;
use ruma::{EventId, OwnedEventId, OwnedRoomId, OwnedServerName, RoomId};

use crate::error::{Error, Result};
use crate::store::Store;
use crate::two_gen::TwoGen;
pub use auth::Verdict;
pub use hooks::{AppendHook, Appended};
pub use pdu::Pdu;
use state::StateStore;

pub use matrixos_storage::records::{EventMeta, RoomRecord};

/// Cached PDUs (and event ids, metadata), per cache generation.
const MAX_CACHED_PDUS: usize = 100_000;
const MAX_CACHED_REFERENCE_HASHES: usize = 10_000;

pub struct Rooms {
    pub(crate) store: Store,
    pub(crate) server_name: OwnedServerName,
    pub(crate) signing_key: Arc<ServerSigningKey>,
    pub state: StateStore,
    pub(crate) auth_chains: auth_chain::AuthChains,
    hooks: hooks::Hooks,
    /// Rooms' heads as the next event must see them, including events queued
    /// for the disk but not yet durable. Only touched under the room lock.
    heads: Mutex<HashMap<u64, RoomRecord>>,
    locks: Mutex<HashMap<OwnedRoomId, Arc<tokio::sync::Mutex<()>>>>,
    /// Recent events (including ones not yet durable) and their metadata.
    events: event_cache::EventCache,
    /// Reference hashes of events built here in room versions 1 and 2,
    /// which name prev and auth events with them: a room's first events
    /// reference each other before any is stored.
    reference_hashes: Mutex<TwoGen<OwnedEventId, String>>,
    short_rooms: Mutex<HashMap<OwnedRoomId, u64>>,
    /// Whether any event was ever rejected: while none was, loading an
    /// event skips looking for its rejection.
    any_rejected: std::sync::atomic::AtomicBool,
    /// Events that may have been redacted, and events that may have others
    /// relating to them: most have neither, and reading them skips both
    /// lookups.
    redacted: key_filter::KeyFilter,
    related: key_filter::KeyFilter,
    /// The timestamp of the last create event built here: each is later,
    /// so that two rooms one person creates within a millisecond never get
    /// the same create event (in room version 12, the same room id).
    last_create_ts: std::sync::atomic::AtomicU64,
}

impl Rooms {
    pub fn new(
        store: Store,
        server_name: OwnedServerName,
        signing_key: Arc<ServerSigningKey>,
    ) -> Result<Self> {
        let any_rejected =
            std::sync::atomic::AtomicBool::new(!tables::REJECTIONS.is_empty(&store.db));
        let redacted = key_filter::KeyFilter::default();
        for target in tables::REDACTIONS.keys(&store.db) {
            redacted.insert(target?);
        }
        let related = key_filter::KeyFilter::default();
        for key in tables::RELATIONS.keys(&store.db) {
            related.insert(key?.0);
        }
        Ok(Self {
            state: StateStore::new(store.db.clone()),
            auth_chains: auth_chain::AuthChains::default(),
            hooks: hooks::Hooks::default(),
            store,
            server_name,
            signing_key,
            heads: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
            events: event_cache::EventCache::new(MAX_CACHED_PDUS),
            reference_hashes: Mutex::new(TwoGen::new(MAX_CACHED_REFERENCE_HASHES)),
            short_rooms: Mutex::new(HashMap::new()),
            any_rejected,
            redacted,
            related,
            last_create_ts: std::sync::atomic::AtomicU64::new(0),
        })
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
        let Some(short) = tables::ROOM_IDS.get(&self.store.db, room.as_str())? else {
            return Ok(None);
        };
        self.short_rooms.lock().insert(room.to_owned(), short);
        Ok(Some(short))
    }

    /// Gives a new room its short id, recorded in `batch`.
    pub(crate) fn allocate_room(&self, batch: &mut matrixos_storage::Batch, room: &RoomId) -> u64 {
        let short_room = self.store.db.allocate_short(batch);
        tables::ROOM_IDS.put(batch, room.as_str(), &short_room);
        short_room
    }

    pub(crate) fn remember_short_room(&self, room: &RoomId, short: u64) {
        self.short_rooms.lock().insert(room.to_owned(), short);
    }

    /// The durable room record (what readers see).
    pub fn record(&self, short_room: u64) -> Result<Option<RoomRecord>> {
        Ok(tables::ROOMS.get(&self.store.db, &short_room)?)
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
        if let Some(short) = self.events.short(event) {
            return Ok(Some(short));
        }
        Ok(tables::EVENT_IDS.get(&self.store.db, event.as_str())?)
    }

    pub fn pdu_by_short(&self, short: u64) -> Result<Arc<Pdu>> {
        if let Some(pdu) = self.events.pdu(short) {
            return Ok(pdu);
        }
        let raw = self.stored_event(short)?;
        let mut pdu = stored_event::pdu_of(&raw)?;
        pdu.rejected = self.any_rejected.load(std::sync::atomic::Ordering::Acquire)
            && tables::REJECTIONS.contains(&self.store.db, &short)?;
        let pdu = Arc::new(pdu);
        self.cache_pdu(short, pdu.clone());
        Ok(pdu)
    }

    /// The PDU of a stored event exactly as it was signed: what other
    /// servers are served.
    pub fn signed_pdu(&self, short: u64) -> Result<Vec<u8>> {
        stored_event::signed_pdu(&self.stored_event(short)?)
    }

    /// An event's record in the `Events` table, or in a batch on its way
    /// there. (The batch is looked at first: once it is written, it lets
    /// the record go.)
    pub(crate) fn stored_event(&self, short: u64) -> Result<Vec<u8>> {
        if let Some(record) = self.events.unwritten(short) {
            return Ok(record.to_vec());
        }
        tables::EVENTS
            .get(&self.store.db, &short)?
            .ok_or_else(|| Error::internal(format!("event {short} missing")))
    }

    pub(crate) fn cache_pdu(&self, short: u64, pdu: Arc<Pdu>) {
        self.events.insert_pdu(short, pdu);
    }

    /// Notes that an event is being stored rejected.
    pub(crate) fn note_rejection(&self) {
        self.any_rejected
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn pdu(&self, event: &EventId) -> Result<Option<(u64, Arc<Pdu>)>> {
        match self.short_event(event)? {
            Some(short) => Ok(Some((short, self.pdu_by_short(short)?))),
            None => Ok(None),
        }
    }

    pub fn meta(&self, short: u64) -> Result<Arc<EventMeta>> {
        self.meta_opt(short)?
            .ok_or_else(|| Error::internal(format!("event meta {short} missing")))
    }

    /// An event's metadata; `None` for events in no timeline (outliers and
    /// rejected events).
    pub fn meta_opt(&self, short: u64) -> Result<Option<Arc<EventMeta>>> {
        if let Some(meta) = self.events.meta(short) {
            return Ok(Some(meta));
        }
        let Some(meta) = tables::EVENT_META.get(&self.store.db, &short)? else {
            return Ok(None);
        };
        let meta = Arc::new(meta);
        self.cache_meta(short, meta.clone());
        Ok(Some(meta))
    }

    /// The metadata of an event in the room's timeline (accepted); `None`
    /// for outliers, rejected and soft-failed events, which are never served.
    pub fn timeline_meta(&self, short: u64) -> Result<Option<Arc<EventMeta>>> {
        Ok(self.meta_opt(short)?.filter(|m| m.verdict.is_accepted()))
    }

    /// Event metadata never changes once written: cached like PDUs.
    pub(crate) fn cache_meta(&self, short: u64, meta: Arc<EventMeta>) {
        self.events.insert_meta(short, meta);
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
