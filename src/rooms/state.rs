//! Room state storage: state keys and events by short id, and each state as
//! a compressed diff against a parent state (a full snapshot every few steps,
//! so loading one never walks a long chain). States are content-addressed:
//! the same set of (state key, event) pairs always has the same id, so forks
//! and re-resolutions that arrive at one state share it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use matrixos_storage::{keys, Batch, Db, Table};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::two_gen::TwoGen;

/// shortstatekey → shorteventid.
pub type StateMap = BTreeMap<u64, u64>;

/// A diff chain longer than this is cut by a full snapshot.
const MAX_CHAIN: u32 = 24;
/// Cached full states (and content digests), per cache generation.
const MAX_CACHED_STATES: usize = 4096;

pub struct StateStore {
    db: Arc<Db>,
    key_to_short: Mutex<HashMap<(String, String), u64>>,
    short_to_key: Mutex<HashMap<u64, (String, String)>>,
    states: Mutex<TwoGen<u64, (Arc<StateMap>, u32)>>,
    /// Content digest → state id, for states stored in batches that may not
    /// be durable yet (the table answers for the durable ones).
    digests: Mutex<TwoGen<[u8; 32], u64>>,
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

fn encode_diff(parent: u64, chain: u32, changes: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + changes.len() * 16);
    out.extend_from_slice(&parent.to_be_bytes());
    out.extend_from_slice(&chain.to_be_bytes());
    for (k, v) in changes {
        out.extend_from_slice(&k.to_be_bytes());
        out.extend_from_slice(&v.to_be_bytes());
    }
    out
}

fn corrupt(detail: &str) -> Error {
    Error::internal(format!("corrupt state diff: {detail}"))
}

impl StateStore {
    pub fn new(db: Arc<Db>) -> Self {
        Self {
            db,
            key_to_short: Mutex::new(HashMap::new()),
            short_to_key: Mutex::new(HashMap::new()),
            states: Mutex::new(TwoGen::new(MAX_CACHED_STATES)),
            digests: Mutex::new(TwoGen::new(MAX_CACHED_STATES)),
        }
    }

    /// Forgets states staged in a batch that failed to commit.
    pub fn forget_pending(&self) {
        self.digests.lock().clear();
        self.states.lock().clear();
    }

    /// The id of a state with exactly this content, if one was stored.
    fn known(&self, digest: &[u8; 32]) -> Result<Option<u64>> {
        if let Some(id) = self.digests.lock().get(digest) {
            return Ok(Some(*id));
        }
        match self.db.get(Table::StateHashes, digest)? {
            Some(v) => Ok(Some(
                keys::read_u64(&v).ok_or_else(|| corrupt("state hash"))?,
            )),
            None => Ok(None),
        }
    }

    /// The short id of a (type, state key) pair, if it was ever used.
    pub fn short_key(&self, kind: &str, state_key: &str) -> Result<Option<u64>> {
        let pair = (kind.to_owned(), state_key.to_owned());
        if let Some(short) = self.key_to_short.lock().get(&pair) {
            return Ok(Some(*short));
        }
        let key = keys::join(&[kind.as_bytes(), state_key.as_bytes()]);
        let Some(v) = self.db.get(Table::StateKeys, &key)? else {
            return Ok(None);
        };
        let short = keys::read_u64(&v).ok_or_else(|| corrupt("state key id"))?;
        self.key_to_short.lock().insert(pair.clone(), short);
        self.short_to_key.lock().insert(short, pair);
        Ok(Some(short))
    }

    /// The short id of a pair, allocating one (recorded in `batch`) if new.
    /// Callers hold the room lock; the cache makes a second allocation of the
    /// same pair impossible across rooms too.
    pub fn short_key_or_create(
        &self,
        batch: &mut Batch,
        kind: &str,
        state_key: &str,
    ) -> Result<u64> {
        if let Some(short) = self.short_key(kind, state_key)? {
            return Ok(short);
        }
        let pair = (kind.to_owned(), state_key.to_owned());
        let mut forward = self.key_to_short.lock();
        if let Some(short) = forward.get(&pair) {
            return Ok(*short);
        }
        let short = self.db.allocate_short(batch);
        let key = keys::join(&[kind.as_bytes(), state_key.as_bytes()]);
        batch.put(Table::StateKeys, key.clone(), short.to_be_bytes().to_vec());
        batch.put(Table::StateKeyNames, short.to_be_bytes().to_vec(), key);
        forward.insert(pair.clone(), short);
        self.short_to_key.lock().insert(short, pair);
        Ok(short)
    }

    /// The (type, state key) pair behind a short id.
    pub fn key_of(&self, short: u64) -> Result<(String, String)> {
        if let Some(pair) = self.short_to_key.lock().get(&short) {
            return Ok(pair.clone());
        }
        let v = self
            .db
            .get(Table::StateKeyNames, &short.to_be_bytes())?
            .ok_or_else(|| corrupt("unknown state key id"))?;
        let parts = keys::split(&v);
        let pair = (
            String::from_utf8_lossy(parts.first().copied().unwrap_or_default()).into_owned(),
            String::from_utf8_lossy(parts.get(1).copied().unwrap_or_default()).into_owned(),
        );
        self.short_to_key.lock().insert(short, pair.clone());
        Ok(pair)
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
        let raw = self
            .db
            .get(Table::StateDiffs, &hash.to_be_bytes())?
            .ok_or_else(|| corrupt("missing state"))?;
        if raw.len() < 12 || (raw.len() - 12) % 16 != 0 {
            return Err(corrupt("bad length"));
        }
        let parent = keys::read_u64(&raw).ok_or_else(|| corrupt("parent"))?;
        let chain = u32::from_be_bytes([raw[8], raw[9], raw[10], raw[11]]);
        let mut map = if parent == 0 {
            StateMap::new()
        } else {
            (*self.load(parent)?).clone()
        };
        for pair in raw[12..].chunks_exact(16) {
            let k = keys::read_u64(&pair[..8]).ok_or_else(|| corrupt("key"))?;
            let v = keys::read_u64(&pair[8..]).ok_or_else(|| corrupt("value"))?;
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
        let (old, chain) = self.load_with_chain(parent)?;
        let mut changes: Vec<(u64, u64)> = new
            .iter()
            .filter(|(k, v)| old.get(k) != Some(v))
            .map(|(k, v)| (*k, *v))
            .collect();
        changes.extend(old.keys().filter(|k| !new.contains_key(k)).map(|k| (*k, 0)));
        let hash = self.db.allocate_short(batch);
        let encoded = if parent == 0 || chain >= MAX_CHAIN {
            let full: Vec<(u64, u64)> = new.iter().map(|(k, v)| (*k, *v)).collect();
            (encode_diff(0, 0, &full), 0)
        } else {
            (encode_diff(parent, chain + 1, &changes), chain + 1)
        };
        batch.put(Table::StateDiffs, hash.to_be_bytes().to_vec(), encoded.0);
        batch.put(
            Table::StateHashes,
            digest.to_vec(),
            hash.to_be_bytes().to_vec(),
        );
        self.cache(hash, (Arc::new(new), encoded.1));
        self.digests.lock().insert(digest, hash);
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
