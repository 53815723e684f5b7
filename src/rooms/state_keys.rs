//! Short ids of (event type, state key) pairs. A pair first seen is given
//! an id in the batch of the event that uses it; until that batch is
//! written the id is pending, and every other batch that uses it writes
//! its records again (the same bytes). So no batch that reaches the disk
//! names a key the disk lacks, whatever order batches of different rooms
//! land in, and a batch dropped unwritten takes its new keys back.

use std::collections::HashMap;
use std::sync::Arc;

use matrixos_storage::{tables, Batch, Db};
use parking_lot::Mutex;

use crate::error::{Error, Result};

type Pair = (String, String);

pub struct StateKeys {
    db: Arc<Db>,
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    to_short: Mutex<HashMap<Pair, u64>>,
    to_pair: Mutex<HashMap<u64, Pair>>,
    /// Keys whose records no written batch has carried yet.
    pending: Mutex<HashMap<u64, Pair>>,
}

impl StateKeys {
    pub fn new(db: Arc<Db>) -> Self {
        Self {
            db,
            inner: Arc::default(),
        }
    }

    /// The short id of a pair, if it was ever used.
    pub fn short(&self, kind: &str, state_key: &str) -> Result<Option<u64>> {
        let pair = (kind.to_owned(), state_key.to_owned());
        if let Some(short) = self.inner.to_short.lock().get(&pair) {
            return Ok(Some(*short));
        }
        let Some(short) = tables::STATE_KEYS.get(&self.db, &pair)? else {
            return Ok(None);
        };
        self.inner.to_short.lock().insert(pair.clone(), short);
        self.inner.to_pair.lock().insert(short, pair);
        Ok(Some(short))
    }

    /// The short id of a pair for an event staged in `batch`, allocating one
    /// if the pair is new. Callers hold the room lock; the cache makes a
    /// second allocation of the same pair impossible across rooms too.
    pub fn short_or_create(&self, batch: &mut Batch, kind: &str, state_key: &str) -> Result<u64> {
        if let Some(short) = self.short(kind, state_key)? {
            self.carry_if_pending(batch, short);
            return Ok(short);
        }
        let pair = (kind.to_owned(), state_key.to_owned());
        let mut forward = self.inner.to_short.lock();
        if let Some(short) = forward.get(&pair).copied() {
            drop(forward);
            self.carry_if_pending(batch, short);
            return Ok(short);
        }
        let short = self.db.allocate_short(batch);
        forward.insert(pair.clone(), short);
        self.inner.to_pair.lock().insert(short, pair.clone());
        self.inner.pending.lock().insert(short, pair.clone());
        put(batch, short, &pair);
        let inner = self.inner.clone();
        batch.on_written(move |written| {
            let unwritten = inner.pending.lock().remove(&short);
            if let (false, Some(pair)) = (written, unwritten) {
                inner.to_short.lock().remove(&pair);
                inner.to_pair.lock().remove(&short);
            }
        });
        Ok(short)
    }

    /// Writes a pending key's records in `batch` too.
    fn carry_if_pending(&self, batch: &mut Batch, short: u64) {
        let Some(pair) = self.inner.pending.lock().get(&short).cloned() else {
            return;
        };
        put(batch, short, &pair);
        self.db.keep_short(batch, short);
        let inner = self.inner.clone();
        batch.on_written(move |written| {
            if written {
                inner.pending.lock().remove(&short);
            }
        });
    }

    /// The pair behind a short id.
    pub fn pair(&self, short: u64) -> Result<Pair> {
        if let Some(pair) = self.inner.to_pair.lock().get(&short) {
            return Ok(pair.clone());
        }
        let pair = tables::STATE_KEY_NAMES
            .get(&self.db, &short)?
            .ok_or_else(|| Error::internal("corrupt state diff: unknown state key id"))?;
        self.inner.to_pair.lock().insert(short, pair.clone());
        Ok(pair)
    }
}

fn put(batch: &mut Batch, short: u64, pair: &Pair) {
    tables::STATE_KEYS.put(batch, pair, &short);
    tables::STATE_KEY_NAMES.put(batch, &short, pair);
}

#[cfg(test)]
mod tests {
    use super::*;
    use matrixos_storage::DbOptions;

    #[test]
    fn a_pending_key_travels_with_every_batch_and_a_dropped_one_is_taken_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&dir.path().join("db"), DbOptions::default()).unwrap());
        let keys = StateKeys::new(db.clone());

        // A key made in a batch that is dropped is forgotten.
        let mut dropped = Batch::new();
        let first = keys
            .short_or_create(&mut dropped, "m.room.topic", "")
            .unwrap();
        drop(dropped);
        assert_eq!(keys.short("m.room.topic", "").unwrap(), None);

        // A key made in one batch and used by a second that lands first
        // is on disk with the second.
        let mut making = Batch::new();
        let short = keys
            .short_or_create(&mut making, "m.room.topic", "")
            .unwrap();
        assert_ne!(short, first);
        let mut using = Batch::new();
        assert_eq!(
            keys.short_or_create(&mut using, "m.room.topic", "")
                .unwrap(),
            short
        );
        db.write(using).unwrap();
        let fresh = StateKeys::new(db.clone());
        assert_eq!(
            fresh.pair(short).unwrap(),
            ("m.room.topic".into(), String::new())
        );
        assert_eq!(fresh.short("m.room.topic", "").unwrap(), Some(short));

        // Once written it is no longer pending: later batches carry nothing.
        db.write(making).unwrap();
        let mut later = Batch::new();
        keys.short_or_create(&mut later, "m.room.topic", "")
            .unwrap();
        assert!(later.is_empty());
    }
}
