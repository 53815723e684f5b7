//! Room state storage: state keys and events by short id, and each state as
//! a compressed diff against a parent state (a full snapshot every few steps,
//! so loading one never walks a long chain). States are content-addressed:
//! the same set of (state key, event) pairs always has the same id, so forks
//! and re-resolutions that arrive at one state share it.
//!
//! A state's address is a sum over its pairs ([`Digest`]), so a state made
//! from its parent by one change gets its address from the parent's in two
//! steps, however large the room.

use std::collections::BTreeMap;
use std::sync::Arc;

use matrixos_storage::records::StateDiff;
use matrixos_storage::{tables, Batch, Db};
use parking_lot::Mutex;

use super::state_keys::StateKeys;
use crate::error::{Error, Result};
use crate::two_gen::TwoGen;

/// shortstatekey → shorteventid.
pub type StateMap = BTreeMap<u64, u64>;

/// A loaded state, the length of its diff chain and its digest.
type LoadedState = (Arc<StateMap>, u32, Digest);

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
    digests: Arc<Mutex<TwoGen<Digest, u64>>>,
}

/// The content address of a state: the sum, modulo 2^128, of a mix of each
/// of its (state key, event) pairs. Order does not matter, and a change
/// moves it by taking the old pair's term out and putting the new one's
/// in. It is not a cryptographic hash: two states with one digest are
/// compared in full before one is taken for the other, so a collision
/// costs a little sharing and never mixes two states up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
struct Digest(u128);

impl Digest {
    #[cfg(test)]
    fn of(state: &StateMap) -> Self {
        state
            .iter()
            .fold(Self::default(), |digest, (k, v)| digest.with(*k, *v))
    }

    fn with(self, key: u64, event: u64) -> Self {
        Self(self.0.wrapping_add(term(key, event)))
    }

    fn without(self, key: u64, event: u64) -> Self {
        Self(self.0.wrapping_sub(term(key, event)))
    }

    /// `self`, the digest of `old`, moved on by `changes` (an event of 0
    /// takes the key out).
    fn changed(mut self, old: &StateMap, changes: &[(u64, u64)]) -> Self {
        for (key, event) in changes {
            if let Some(was) = old.get(key) {
                self = self.without(*key, *was);
            }
            if *event != 0 {
                self = self.with(*key, *event);
            }
        }
        self
    }

    fn bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }
}

/// One pair's term of a digest: each half a 64-bit finaliser (splitmix64's)
/// over both ids, seeded differently.
fn term(key: u64, event: u64) -> u128 {
    fn mix(mut x: u64) -> u64 {
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }
    let high = mix(key ^ mix(event ^ 0x9e37_79b9_7f4a_7c15));
    let low = mix(event ^ mix(key ^ 0xd1b5_4a32_d192_ed03));
    (u128::from(high) << 64) | u128::from(low)
}

/// What turns `old` into `new`: each pair of `new` not in `old`, and each
/// key of `old` not in `new` with event 0. Both are walked once, in order.
fn changes_between(old: &StateMap, new: &StateMap) -> Vec<(u64, u64)> {
    let mut changes = Vec::new();
    let (mut old, mut new) = (old.iter().peekable(), new.iter().peekable());
    loop {
        match (old.peek(), new.peek()) {
            (None, None) => return changes,
            (Some((k, _)), None) => {
                changes.push((**k, 0));
                old.next();
            }
            (None, Some((k, v))) => {
                changes.push((**k, **v));
                new.next();
            }
            (Some((ko, vo)), Some((kn, vn))) => match ko.cmp(kn) {
                std::cmp::Ordering::Less => {
                    changes.push((**ko, 0));
                    old.next();
                }
                std::cmp::Ordering::Greater => {
                    changes.push((**kn, **vn));
                    new.next();
                }
                std::cmp::Ordering::Equal => {
                    if vo != vn {
                        changes.push((**kn, **vn));
                    }
                    old.next();
                    new.next();
                }
            },
        }
    }
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

    /// The id of a stored state with exactly this content, if any.
    fn known(&self, digest: Digest, state: &StateMap) -> Result<Option<u64>> {
        let cached = self.digests.lock().get(&digest).copied();
        let candidate = match cached {
            Some(id) => Some(id),
            None => tables::STATE_HASHES.get(&self.db, &digest.bytes())?,
        };
        match candidate {
            Some(id) if *self.load(id)? == *state => Ok(Some(id)),
            _ => Ok(None),
        }
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

    fn load_with_chain(&self, hash: u64) -> Result<LoadedState> {
        if hash == 0 {
            return Ok((Arc::new(StateMap::new()), 0, Digest::default()));
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
        let (parent_map, _, parent_digest) = self.load_with_chain(parent)?;
        let digest = parent_digest.changed(&parent_map, &changes);
        let mut map = (*parent_map).clone();
        for (k, v) in changes {
            if v == 0 {
                map.remove(&k);
            } else {
                map.insert(k, v);
            }
        }
        let entry = (Arc::new(map), chain, digest);
        self.cache(hash, entry.clone());
        Ok(entry)
    }

    fn cache(&self, hash: u64, entry: LoadedState) {
        self.states.lock().insert(hash, entry);
    }

    /// Stores `new` as a diff against `parent` (or as a snapshot) and returns
    /// its state id; a state stored before keeps its id and is not stored
    /// again.
    pub fn store(&self, batch: &mut Batch, parent: u64, new: StateMap) -> Result<u64> {
        if new.is_empty() {
            return Ok(0);
        }
        let loaded = self.load_with_chain(parent)?;
        let changes = changes_between(&loaded.0, &new);
        self.store_changed(batch, parent, loaded, new, changes, true)
    }

    /// [`store`](Self::store) for the state `parent` with `key` set to
    /// `event`. `fresh`: `event`'s short id was allocated in `batch`, so no
    /// stored state can hold it and the lookup of a stored twin is skipped.
    pub fn store_set(
        &self,
        batch: &mut Batch,
        parent: u64,
        key: u64,
        event: u64,
        fresh: bool,
    ) -> Result<u64> {
        let loaded = self.load_with_chain(parent)?;
        let mut new = (*loaded.0).clone();
        new.insert(key, event);
        self.store_changed(batch, parent, loaded, new, vec![(key, event)], !fresh)
    }

    /// Stores `new`, which `changes` make of `parent` (`loaded`), unless
    /// `look_up` finds a stored state with its content, whose id it then is.
    fn store_changed(
        &self,
        batch: &mut Batch,
        parent: u64,
        (old, chain, old_digest): LoadedState,
        new: StateMap,
        changes: Vec<(u64, u64)>,
        look_up: bool,
    ) -> Result<u64> {
        let digest = old_digest.changed(&old, &changes);
        if look_up {
            if let Some(id) = self.known(digest, &new)? {
                return Ok(id);
            }
        }
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
        tables::STATE_HASHES.put(batch, &digest.bytes(), &hash);
        self.cache(hash, (Arc::new(new), diff.chain, digest));
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

    /// A store on a new database (the directory lives as long as it).
    fn new_store() -> (tempfile::TempDir, Arc<Db>, StateStore) {
        let dir = tempfile::tempdir().unwrap();
        let options = DbOptions {
            sync_writes: false,
            ..DbOptions::default()
        };
        let db = Arc::new(Db::open(dir.path(), options).unwrap());
        let store = StateStore::new(db.clone());
        (dir, db, store)
    }

    #[test]
    fn diffs_and_snapshots_rebuild_every_state() {
        let (_dir, db, store) = new_store();
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

    #[test]
    fn digests_moved_on_match_digests_summed_afresh() {
        let (_dir, db, store) = new_store();
        let mut ids = Vec::new();
        let mut parent = 0;
        for i in 0..(MAX_CHAIN as u64 * 2) {
            let mut batch = Batch::new();
            parent = match i % 3 {
                // One key set, as appending a state event does.
                0 | 1 => store
                    .store_set(&mut batch, parent, i % 5, 100 + i, true)
                    .unwrap(),
                // A whole new state, as resolving a fork does: a key goes.
                _ => {
                    let mut map = (*store.load(parent).unwrap()).clone();
                    map.remove(&(i % 5));
                    map.insert(50 + i, 7);
                    store.store(&mut batch, parent, map).unwrap()
                }
            };
            db.write(batch).unwrap();
            ids.push(parent);
        }
        let fresh = StateStore::new(db);
        for id in ids {
            let (map, _, moved) = store.load_with_chain(id).unwrap();
            assert_eq!(moved, Digest::of(&map), "state {id} as stored");
            let (map, _, read) = fresh.load_with_chain(id).unwrap();
            assert_eq!(read, Digest::of(&map), "state {id} read back");
        }
    }

    #[test]
    fn one_content_one_id_and_a_digest_alone_decides_nothing() {
        let (_dir, db, store) = new_store();
        let mut batch = Batch::new();
        let a = store.store_set(&mut batch, 0, 1, 10, true).unwrap();
        let ab = store.store_set(&mut batch, a, 2, 20, true).unwrap();
        let b = store.store_set(&mut batch, 0, 2, 20, true).unwrap();
        // The same two pairs reached the other way round: the same state.
        assert_eq!(store.store_set(&mut batch, b, 1, 10, false).unwrap(), ab);
        let whole = StateMap::from([(1, 10), (2, 20)]);
        assert_eq!(store.store(&mut batch, 0, whole).unwrap(), ab);
        db.write(batch).unwrap();

        // A digest that names another state (as a collision would) is not
        // taken for this one.
        let other = StateMap::from([(3, 30)]);
        let mut batch = Batch::new();
        tables::STATE_HASHES.put(&mut batch, &Digest::of(&other).bytes(), &ab);
        db.write(batch).unwrap();
        let fresh = StateStore::new(db.clone());
        let mut batch = Batch::new();
        let stored = fresh.store(&mut batch, 0, other.clone()).unwrap();
        db.write(batch).unwrap();
        assert_ne!(stored, ab);
        assert_eq!(*fresh.load(stored).unwrap(), other);
        assert_eq!(*fresh.load(ab).unwrap(), StateMap::from([(1, 10), (2, 20)]));
    }
}
