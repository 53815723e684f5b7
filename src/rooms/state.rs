//! Room state storage: state keys and events by short id, and each state as
//! a compressed diff against a parent state (a full snapshot every few steps,
//! so loading one never walks a long chain). States are content-addressed:
//! the same set of (state key, event) pairs always has the same id, so forks
//! and re-resolutions that arrive at one state share it.

use std::collections::BTreeMap;
use std::sync::Arc;

use matrixos_storage::records::StateDiff;
use matrixos_storage::{tables, Batch, Db};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use super::state_keys::StateKeys;
use crate::error::{Error, Result};
use crate::two_gen::TwoGen;

/// shortstatekey → shorteventid.
pub type StateMap = BTreeMap<u64, u64>;

/// A loaded state and the length of its diff chain.
type LoadedState = (Arc<StateMap>, u32);

/// A diff chain longer than this is cut by a full snapshot.
const MAX_CHAIN: u32 = 24;
/// Cached full states (and content digests), per cache generation.
const MAX_CACHED_STATES: usize = 4096;

pub struct StateStore {
    db: Arc<Db>,
    keys: StateKeys,
    states: Arc<Mutex<TwoGen<u64, LoadedState>>>,
    /// Content digest → state id, for states stored in batches that may not
    /// be durable yet (the table answers for the durable ones). A batch
    /// dropped unwritten takes its states out again.
    digests: Arc<Mutex<TwoGen<[u8; 32], u64>>>,
}

/// The content address of a state: sha256 of its pairs in key order.
fn digest(state: &StateMap) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for (k, v) in state {
        hasher.update(k.to_be_bytes());
        hasher.update(v.to_be_bytes());
    }
    hasher.finalize().into()
}

fn corrupt(detail: &str) -> Error {
    Error::internal(format!("corrupt state diff: {detail}"))
}

impl StateStore {
    pub fn new(db: Arc<Db>) -> Self {
        Self {
            keys: StateKeys::new(db.clone()),
            db,
            states: Arc::new(Mutex::new(TwoGen::new(MAX_CACHED_STATES))),
            digests: Arc::new(Mutex::new(TwoGen::new(MAX_CACHED_STATES))),
        }
    }

    /// The id of a state with exactly this content, if one was stored.
    fn known(&self, digest: &[u8; 32]) -> Result<Option<u64>> {
        if let Some(id) = self.digests.lock().get(digest) {
            return Ok(Some(*id));
        }
        Ok(tables::STATE_HASHES.get(&self.db, digest)?)
    }

    /// The short id of a (type, state key) pair, if it was ever used.
    pub fn short_key(&self, kind: &str, state_key: &str) -> Result<Option<u64>> {
        self.keys.short(kind, state_key)
    }

    /// The short id of a pair, allocating one (recorded in `batch`) if new.
    pub fn short_key_or_create(
        &self,
        batch: &mut Batch,
        kind: &str,
        state_key: &str,
    ) -> Result<u64> {
        self.keys.short_or_create(batch, kind, state_key)
    }

    /// The (type, state key) pair behind a short id.
    pub fn key_of(&self, short: u64) -> Result<(String, String)> {
        self.keys.pair(short)
    }

    /// The full state behind a state hash (0 is the empty state).
    pub fn load(&self, hash: u64) -> Result<Arc<StateMap>> {
        Ok(self.load_with_chain(hash)?.0)
    }

    fn load_with_chain(&self, hash: u64) -> Result<(Arc<StateMap>, u32)> {
        if hash == 0 {
            return Ok((Arc::new(StateMap::new()), 0));
        }
        if let Some(hit) = self.states.lock().get(&hash) {
            return Ok(hit.clone());
        }
        let StateDiff {
            parent,
            chain,
            changes,
        } = tables::STATE_DIFFS
            .get(&self.db, &hash)?
            .ok_or_else(|| corrupt("missing state"))?;
        let mut map = if parent == 0 {
            StateMap::new()
        } else {
            (*self.load(parent)?).clone()
        };
        for (k, v) in changes {
            if v == 0 {
                map.remove(&k);
            } else {
                map.insert(k, v);
            }
        }
        let entry = (Arc::new(map), chain);
        self.cache(hash, entry.clone());
        Ok(entry)
    }

    fn cache(&self, hash: u64, entry: (Arc<StateMap>, u32)) {
        self.states.lock().insert(hash, entry);
    }

    /// Stores `new` as a diff against `parent` (or as a snapshot) and returns
    /// its state id; a state stored before keeps its id and is not stored
    /// again.
    pub fn store(&self, batch: &mut Batch, parent: u64, new: StateMap) -> Result<u64> {
        if new.is_empty() {
            return Ok(0);
        }
        let digest = digest(&new);
        if let Some(id) = self.known(&digest)? {
            return Ok(id);
        }
        self.store_unseen(batch, parent, new, digest)
    }

    /// [`store`](Self::store) for a state that holds `fresh`, an event
    /// whose short id was allocated in `batch`: no stored state can hold
    /// it, so the state is new and the content lookup is skipped.
    pub fn store_with_fresh(
        &self,
        batch: &mut Batch,
        parent: u64,
        new: StateMap,
        fresh: u64,
    ) -> Result<u64> {
        debug_assert!(new.values().any(|v| *v == fresh));
        let digest = digest(&new);
        self.store_unseen(batch, parent, new, digest)
    }

    fn store_unseen(
        &self,
        batch: &mut Batch,
        parent: u64,
        new: StateMap,
        digest: [u8; 32],
    ) -> Result<u64> {
        let (old, chain) = self.load_with_chain(parent)?;
        let mut changes: Vec<(u64, u64)> = new
            .iter()
            .filter(|(k, v)| old.get(k) != Some(v))
            .map(|(k, v)| (*k, *v))
            .collect();
        changes.extend(old.keys().filter(|k| !new.contains_key(k)).map(|k| (*k, 0)));
        let hash = self.db.allocate_short(batch);
        let diff = if parent == 0 || chain >= MAX_CHAIN {
            StateDiff {
                parent: 0,
                chain: 0,
                changes: new.iter().map(|(k, v)| (*k, *v)).collect(),
            }
        } else {
            StateDiff {
                parent,
                chain: chain + 1,
                changes,
            }
        };
        tables::STATE_DIFFS.put(batch, &hash, &diff);
        tables::STATE_HASHES.put(batch, &digest, &hash);
        self.cache(hash, (Arc::new(new), diff.chain));
        self.digests.lock().insert(digest, hash);
        let (digests, states) = (self.digests.clone(), self.states.clone());
        batch.on_written(move |written| {
            if !written {
                digests.lock().remove(&digest);
                states.lock().remove(&hash);
            }
        });
        Ok(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use matrixos_storage::DbOptions;

    #[test]
    fn diffs_and_snapshots_rebuild_every_state() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(
            Db::open(
                dir.path(),
                DbOptions {
                    sync_writes: false,
                    ..DbOptions::default()
                },
            )
            .unwrap(),
        );
        let store = StateStore::new(db.clone());
        let mut expected = Vec::new();
        let mut map = StateMap::new();
        let mut parent = 0;
        // Long enough to cross several snapshot boundaries.
        for i in 0..(MAX_CHAIN as u64 * 3) {
            let mut batch = Batch::new();
            let key = store
                .short_key_or_create(&mut batch, "m.room.member", &format!("@u{}:x", i % 7))
                .unwrap();
            map.insert(key, 1000 + i);
            if i % 11 == 10 {
                map.remove(&key);
            }
            parent = store.store(&mut batch, parent, map.clone()).unwrap();
            db.write(batch).unwrap();
            expected.push((parent, map.clone()));
        }
        // A fresh store has nothing cached: every state comes from disk.
        let fresh = StateStore::new(db);
        for (hash, map) in expected {
            assert_eq!(*fresh.load(hash).unwrap(), map, "state {hash}");
        }
        assert_eq!(
            fresh
                .key_of(fresh.short_key("m.room.member", "@u3:x").unwrap().unwrap())
                .unwrap()
                .1,
            "@u3:x"
        );
    }
}
