use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// The stream position: one global, monotonic counter that orders everything
/// a sync can return (events, account data, to-device messages, key changes).
///
/// Positions are handed out before their batch is written, and batches of
/// different rooms commit concurrently, so position 7 may be on disk before 6.
/// A sync must never report a position past one still being written, or it
/// would skip it for good: [`StreamCounter::visible`] is the highest position
/// below every write still in flight.
#[derive(Clone)]
pub struct StreamCounter {
    inner: Arc<Inner>,
}

struct Inner {
    next: AtomicU64,
    in_flight: Mutex<BTreeSet<u64>>,
}

/// A reserved stream position; the write it belongs to is in flight until the
/// guard is dropped (after the batch is written, or when it failed).
pub struct CountGuard {
    count: u64,
    inner: Arc<Inner>,
}

impl StreamCounter {
    pub(crate) fn starting_after(last: u64) -> Self {
        Self {
            inner: Arc::new(Inner {
                next: AtomicU64::new(last + 1),
                in_flight: Mutex::new(BTreeSet::new()),
            }),
        }
    }

    /// Reserves the next position.
    pub fn reserve(&self) -> CountGuard {
        let mut in_flight = self.inner.in_flight.lock();
        let count = self.inner.next.fetch_add(1, Ordering::SeqCst);
        in_flight.insert(count);
        CountGuard {
            count,
            inner: self.inner.clone(),
        }
    }

    /// The highest position such that it and everything before it is written.
    pub fn visible(&self) -> u64 {
        let in_flight = self.inner.in_flight.lock();
        match in_flight.first() {
            Some(lowest) => lowest - 1,
            None => self.inner.next.load(Ordering::SeqCst) - 1,
        }
    }
}

impl CountGuard {
    pub fn get(&self) -> u64 {
        self.count
    }
}

impl Drop for CountGuard {
    fn drop(&mut self) {
        self.inner.in_flight.lock().remove(&self.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_waits_for_the_lowest_write_in_flight() {
        let counter = StreamCounter::starting_after(10);
        assert_eq!(counter.visible(), 10);
        let a = counter.reserve();
        let b = counter.reserve();
        assert_eq!((a.get(), b.get()), (11, 12));
        drop(b);
        assert_eq!(counter.visible(), 10, "11 is still being written");
        drop(a);
        assert_eq!(counter.visible(), 12);
    }
}
