//! Reads that may only use memory. A request's reads usually find what they
//! need in the memtables and the block cache; [`from_memory`] runs them on
//! the calling thread with RocksDB told not to touch the disk, and reports
//! whether any read would have had to. The caller then runs the same reads
//! again where waiting on the disk is allowed.

use std::cell::Cell;

use rocksdb::{ReadOptions, ReadTier};

thread_local! {
    /// Set while this thread's reads are limited to memory.
    static MEMORY_ONLY: Cell<bool> = const { Cell::new(false) };
    /// Set when a read under [`MEMORY_ONLY`] needed the disk.
    static MISSED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `work` with every read limited to the memtables and the block
/// cache. `None` when some read needed the disk: the reads that failed made
/// `work`'s answer unusable, so it is dropped (`work` must only read).
pub fn from_memory<T>(work: impl FnOnce() -> T) -> Option<T> {
    if MEMORY_ONLY.get() {
        // Nested: the outer call decides.
        return Some(work());
    }
    MEMORY_ONLY.set(true);
    MISSED.set(false);
    let _reset = Reset;
    let out = work();
    (!MISSED.get()).then_some(out)
}

/// Clears the flags when the work ends, also by unwinding.
struct Reset;

impl Drop for Reset {
    fn drop(&mut self) {
        MEMORY_ONLY.set(false);
        MISSED.set(false);
    }
}

/// The read options of a read on this thread.
pub(crate) fn read_options() -> ReadOptions {
    let mut opts = ReadOptions::default();
    if MEMORY_ONLY.get() {
        opts.set_read_tier(ReadTier::BlockCache);
    }
    opts
}

/// Notes a failed read: one that needed the disk while limited to memory
/// makes the work's answer unusable.
pub(crate) fn note_error(error: &rocksdb::Error) {
    if error.kind() == rocksdb::ErrorKind::Incomplete && MEMORY_ONLY.get() {
        MISSED.set(true);
    }
}
