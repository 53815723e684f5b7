//! A cache bounded by two generations. When the young generation fills, it
//! becomes the old one and the previous old one is dropped, so every entry
//! outlives at least `cap` later insertions. Caches of records whose batch
//! is still on its way to the disk rely on this: emptying them at once
//! would lose what no read can find yet.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// `S` hashes the keys: the default resists keys chosen to collide; a
/// faster one suits keys this server hands out (short ids).
pub struct TwoGen<K, V, S = RandomState> {
    young: HashMap<K, V, S>,
    old: HashMap<K, V, S>,
    cap: usize,
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> TwoGen<K, V, S> {
    /// Holds at most `2 * cap` entries.
    pub fn new(cap: usize) -> Self {
        Self {
            young: HashMap::default(),
            old: HashMap::default(),
            cap: cap.max(1),
        }
    }

    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.young.get(key).or_else(|| self.old.get(key))
    }

    pub fn insert(&mut self, key: K, value: V) {
        if self.young.len() >= self.cap {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, value);
    }

    pub fn remove<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let young = self.young.remove(key);
        let old = self.old.remove(key);
        young.or(old)
    }

    pub fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::TwoGen;

    #[test]
    fn entries_outlive_cap_later_insertions() {
        let mut cache: TwoGen<u32, u32> = TwoGen::new(3);
        for i in 0u32..10 {
            cache.insert(i, i * 10);
            // The last `cap` insertions are always there.
            for recent in i.saturating_sub(2)..=i {
                assert_eq!(cache.get(&recent), Some(&(recent * 10)));
            }
        }
        assert_eq!(cache.get(&0), None, "old generations are dropped");
        assert_eq!(cache.remove(&9), Some(90));
        assert_eq!(cache.get(&9), None);
    }
}
