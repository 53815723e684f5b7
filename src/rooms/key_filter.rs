//! A Bloom filter of the u64 keys a table holds, so that a reader skips
//! the lookups it knows would find nothing: most events have no redaction
//! and nothing relating to them, and serving a page of 100 events would
//! otherwise cost 100 reads and 100 iterators for those answers alone.
//!
//! A key is added before the batch that writes it reaches the disk, so the
//! filter never says "absent" for a key a reader could find. It never
//! forgets: a key that is deleted, or whose batch is never written, stays
//! a false positive, which costs one lookup. It grows by adding layers,
//! each twice the size of the last, so it needs no rebuild.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::RwLock;

/// About 1% false positives per layer.
const BITS_PER_KEY: usize = 10;
const HASHES: u64 = 7;
/// Keys the first layer holds: 20 KiB of bits.
const FIRST_CAPACITY: usize = 1 << 14;

pub(crate) struct KeyFilter {
    layers: RwLock<Vec<Layer>>,
}

struct Layer {
    bits: Box<[AtomicU64]>,
    capacity: usize,
    len: AtomicUsize,
}

impl Layer {
    fn new(capacity: usize) -> Self {
        let words = (capacity * BITS_PER_KEY).div_ceil(64);
        Self {
            bits: (0..words).map(|_| AtomicU64::new(0)).collect(),
            capacity,
            len: AtomicUsize::new(0),
        }
    }

    fn bit_indexes(&self, key: u64) -> impl Iterator<Item = usize> {
        let size = (self.bits.len() * 64) as u64;
        let first = mix(key);
        let step = mix(first) | 1;
        (0..HASHES).map(move |i| (first.wrapping_add(i.wrapping_mul(step)) % size) as usize)
    }

    fn insert(&self, key: u64) {
        for bit in self.bit_indexes(key) {
            self.bits[bit / 64].fetch_or(1 << (bit % 64), Ordering::Release);
        }
        self.len.fetch_add(1, Ordering::Relaxed);
    }

    fn may_contain(&self, key: u64) -> bool {
        self.bit_indexes(key)
            .all(|bit| self.bits[bit / 64].load(Ordering::Acquire) & (1 << (bit % 64)) != 0)
    }

    fn is_full(&self) -> bool {
        self.len.load(Ordering::Relaxed) >= self.capacity
    }
}

/// splitmix64's finaliser: spreads sequential short ids over the bits.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Default for KeyFilter {
    fn default() -> Self {
        Self {
            layers: RwLock::new(vec![Layer::new(FIRST_CAPACITY)]),
        }
    }
}

impl KeyFilter {
    pub(crate) fn insert(&self, key: u64) {
        {
            let layers = self.layers.read();
            let last = layers.last().expect("a filter has a layer");
            if !last.is_full() {
                last.insert(key);
                return;
            }
        }
        let mut layers = self.layers.write();
        let last = layers.last().expect("a filter has a layer");
        if last.is_full() {
            let capacity = last.capacity * 2;
            layers.push(Layer::new(capacity));
        }
        layers.last().expect("a filter has a layer").insert(key);
    }

    /// False only if the key was never inserted.
    pub(crate) fn may_contain(&self, key: u64) -> bool {
        self.layers.read().iter().any(|l| l.may_contain(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_misses_an_inserted_key_and_rarely_claims_others() {
        let filter = KeyFilter::default();
        for k in 0..(FIRST_CAPACITY as u64 * 3) {
            filter.insert(k * 3);
        }
        let inserted = FIRST_CAPACITY as u64 * 3;
        assert!(filter.layers.read().len() > 1, "the filter grew a layer");
        assert!((0..inserted).all(|k| filter.may_contain(k * 3)));
        let false_positives = (0..inserted)
            .filter(|k| filter.may_contain(k * 3 + 1))
            .count();
        // About 1% per layer; three layers here.
        assert!(
            false_positives < inserted as usize / 20,
            "{false_positives} false positives of {inserted}"
        );
    }
}
