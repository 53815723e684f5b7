//! The events the room core saw lately, by short id and by event id, with
//! their metadata. An event is published here as soon as it is staged (the
//! next event of its room may build on it at once), so a reader can learn
//! its short id before the `Events` table has its record: the record is
//! held here until its batch is written. A batch that never is written
//! takes its events out again.

use std::collections::HashMap;
use std::sync::Arc;

use matrixos_storage::records::EventMeta;
use matrixos_storage::Batch;
use parking_lot::Mutex;
use ruma::{EventId, OwnedEventId};
use rustc_hash::FxBuildHasher;

use super::Pdu;
use crate::two_gen::TwoGen;

pub(crate) struct EventCache {
    inner: Arc<Inner>,
}

/// Short ids are handed out here, never chosen by a client or a peer, so
/// they take a fast hash (every event served looks up both maps).
struct Inner {
    pdus: Mutex<TwoGen<u64, Arc<Pdu>, FxBuildHasher>>,
    shorts: Mutex<TwoGen<OwnedEventId, u64>>,
    metas: Mutex<TwoGen<u64, Arc<EventMeta>, FxBuildHasher>>,
    /// Records of staged events whose batch is not written yet.
    unwritten: Mutex<HashMap<u64, Arc<[u8]>>>,
}

impl Inner {
    fn forget(&self, event: &EventId) {
        let mut shorts = self.shorts.lock();
        if let Some(short) = shorts.remove(event) {
            self.pdus.lock().remove(&short);
            self.metas.lock().remove(&short);
        }
    }
}

impl EventCache {
    /// Keeps `capacity` entries of each kind per cache generation.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                pdus: Mutex::new(TwoGen::new(capacity)),
                shorts: Mutex::new(TwoGen::new(capacity)),
                metas: Mutex::new(TwoGen::new(capacity)),
                unwritten: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub(crate) fn short(&self, event: &EventId) -> Option<u64> {
        self.inner.shorts.lock().get(event).copied()
    }

    pub(crate) fn pdu(&self, short: u64) -> Option<Arc<Pdu>> {
        self.inner.pdus.lock().get(&short).cloned()
    }

    pub(crate) fn insert_pdu(&self, short: u64, pdu: Arc<Pdu>) {
        let mut pdus = self.inner.pdus.lock();
        self.inner.shorts.lock().insert(pdu.event_id.clone(), short);
        pdus.insert(short, pdu);
    }

    pub(crate) fn meta(&self, short: u64) -> Option<Arc<EventMeta>> {
        self.inner.metas.lock().get(&short).cloned()
    }

    pub(crate) fn insert_meta(&self, short: u64, meta: Arc<EventMeta>) {
        self.inner.metas.lock().insert(short, meta);
    }

    /// The record of a staged event whose batch is not written yet.
    pub(crate) fn unwritten(&self, short: u64) -> Option<Arc<[u8]>> {
        self.inner.unwritten.lock().get(&short).cloned()
    }

    /// Holds event `short`'s record until `batch` is written; when it never
    /// is, forgets the event.
    pub(crate) fn hold(&self, batch: &mut Batch, short: u64, event: &EventId, record: &[u8]) {
        self.inner.unwritten.lock().insert(short, Arc::from(record));
        let inner = self.inner.clone();
        let event = event.to_owned();
        batch.on_written(move |written| {
            inner.unwritten.lock().remove(&short);
            if !written {
                inner.forget(&event);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdu(id: &str) -> Arc<Pdu> {
        let json = format!(
            r#"{{"event_id":"{id}","type":"m.room.message","sender":"@a:x","room_id":"!r:x",
                "origin_server_ts":1,"content":{{}},"prev_events":[],"auth_events":[],"depth":1}}"#
        );
        Arc::new(Pdu::from_signed(None, json.as_bytes()).expect("pdu"))
    }

    #[test]
    fn a_staged_record_is_held_until_its_batch_goes_and_an_unwritten_event_is_forgotten() {
        let cache = EventCache::new(16);
        let id = OwnedEventId::try_from("$one:x").unwrap();
        let mut batch = Batch::new();
        cache.hold(&mut batch, 7, &id, b"record");
        cache.insert_pdu(7, pdu("$one:x"));
        assert_eq!(cache.unwritten(7).as_deref(), Some(&b"record"[..]));
        assert_eq!(cache.short(&id), Some(7));
        drop(batch);
        assert!(cache.unwritten(7).is_none());
        assert_eq!(cache.short(&id), None);
        assert!(cache.pdu(7).is_none());

        let dir = tempfile::tempdir().unwrap();
        let db = matrixos_storage::Db::open(&dir.path().join("db"), Default::default()).unwrap();
        let mut batch = Batch::new();
        cache.hold(&mut batch, 8, &id, b"record");
        cache.insert_pdu(8, pdu("$one:x"));
        db.write(batch).unwrap();
        assert!(cache.unwritten(8).is_none());
        assert_eq!(cache.short(&id), Some(8));
    }
}
