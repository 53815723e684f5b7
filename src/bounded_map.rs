//! A hash map with a hard cap on entries that forgets its oldest first.
//!
//! Maps that requests can grow (UIA sessions, registration nonces, rate-limit
//! buckets) must not grow without bound, and must not pay for their bound
//! with a sweep over every entry on every insert: under a flood that sweep
//! is what makes the server slow. Here every entry also sits in a queue in
//! the order it was last written, so expiry and eviction take entries from
//! the front, touching only the ones they drop.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

pub struct BoundedMap<K, V> {
    map: HashMap<K, Slot<V>>,
    /// Keys in the order they were last written, each with the write's
    /// sequence number; a key rewritten or removed since leaves a stale
    /// entry here, skipped when it reaches the front.
    order: VecDeque<(u64, K)>,
    next_seq: u64,
    cap: usize,
}

struct Slot<V> {
    value: V,
    seq: u64,
    written: Instant,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    /// A map that never holds more than `cap` entries (at least one).
    pub fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
            cap: cap.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.map.get(key).map(|s| &s.value)
    }

    /// The value, to change in place; its age is unchanged.
    pub fn get_mut<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.map.get_mut(key).map(|s| &mut s.value)
    }

    pub fn remove<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.map.remove(key).map(|s| s.value)
    }

    /// Stores `value` as written at `now` (the newest entry), evicting the
    /// oldest entries if the map is full.
    pub fn insert(&mut self, key: K, value: V, now: Instant) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = Slot {
            value,
            seq,
            written: now,
        };
        self.map.insert(key.clone(), slot);
        self.order.push_back((seq, key));
        while self.map.len() > self.cap {
            self.pop_oldest();
        }
        self.compact_if_stale();
    }

    /// Drops every entry last written `ttl` or longer before `now`.
    pub fn expire(&mut self, now: Instant, ttl: Duration) {
        while let Some((seq, key)) = self.order.front() {
            match self.map.get(key) {
                Some(slot) if slot.seq == *seq => {
                    if now.saturating_duration_since(slot.written) < ttl {
                        return;
                    }
                    self.map.remove(key);
                }
                _ => {}
            }
            self.order.pop_front();
        }
    }

    /// Removes the least recently written live entry.
    fn pop_oldest(&mut self) {
        while let Some((seq, key)) = self.order.pop_front() {
            if self.map.get(&key).is_some_and(|s| s.seq == seq) {
                self.map.remove(&key);
                return;
            }
        }
    }

    /// Rewrites and removals leave stale queue entries; once they outnumber
    /// the live ones, drop them. The pass costs the queue's length and comes
    /// at most once per that many writes, so each write pays O(1) on average.
    fn compact_if_stale(&mut self) {
        if self.order.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.order
                .retain(|(seq, key)| map.get(key).is_some_and(|s| s.seq == *seq));
        }
    }

    #[cfg(test)]
    fn queued(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_oldest_past_the_cap() {
        let now = Instant::now();
        let mut m = BoundedMap::new(3);
        for k in 0..5 {
            m.insert(k, k * 10, now);
        }
        assert_eq!(m.len(), 3);
        assert_eq!(m.get(&0), None);
        assert_eq!(m.get(&1), None);
        assert_eq!(m.get(&4), Some(&40));
    }

    #[test]
    fn rewriting_an_entry_makes_it_the_newest() {
        let now = Instant::now();
        let mut m = BoundedMap::new(2);
        m.insert("a", 1, now);
        m.insert("b", 2, now);
        m.insert("a", 3, now);
        m.insert("c", 4, now);
        assert_eq!(m.get(&"a"), Some(&3));
        assert_eq!(m.get(&"b"), None);
    }

    #[test]
    fn expires_from_the_front_only() {
        let start = Instant::now();
        let mut m = BoundedMap::new(100);
        m.insert(1, (), start);
        m.insert(2, (), start + Duration::from_secs(5));
        m.insert(3, (), start + Duration::from_secs(10));
        m.expire(start + Duration::from_secs(12), Duration::from_secs(6));
        assert_eq!(m.len(), 1);
        assert!(m.get(&3).is_some());
    }

    #[test]
    fn removed_and_rewritten_keys_do_not_pile_up() {
        let now = Instant::now();
        let mut m = BoundedMap::new(1_000);
        for i in 0..100_000u32 {
            m.insert(i % 10, i, now);
            m.remove(&((i + 5) % 10));
        }
        assert!(m.len() <= 10);
        assert!(m.queued() <= 2 * m.len() + 65, "queue: {}", m.queued());
    }
}
