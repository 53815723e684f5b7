use crate::Table;

/// One atomic write: every put and delete in it lands together or not at all.
#[derive(Default)]
pub struct Batch {
    pub(crate) ops: Vec<Op>,
    after_write: AfterWrite,
}

/// What runs once a batch's write is over: told `true` when it is on disk,
/// `false` when it failed or the batch was dropped without being written.
#[derive(Default)]
pub struct AfterWrite(Vec<Box<dyn FnOnce(bool) + Send>>);

impl AfterWrite {
    /// Runs every callback with the write's outcome.
    pub fn finish(mut self, written: bool) {
        for callback in std::mem::take(&mut self.0) {
            callback(written);
        }
    }
}

impl Drop for AfterWrite {
    fn drop(&mut self) {
        for callback in std::mem::take(&mut self.0) {
            callback(false);
        }
    }
}

pub(crate) enum Op {
    Put(Table, Vec<u8>, Vec<u8>),
    Delete(Table, Vec<u8>),
    /// Deletes every key in `[from, to)`.
    DeleteRange(Table, Vec<u8>, Vec<u8>),
    /// Raises a counter to at least this value (merged with "max").
    RaiseCounter(&'static str, u64),
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&mut self, table: Table, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put(table, key.into(), value.into()));
    }

    pub fn delete(&mut self, table: Table, key: impl Into<Vec<u8>>) {
        self.ops.push(Op::Delete(table, key.into()));
    }

    /// Deletes every key from `from` (inclusive) to `to` (exclusive).
    pub fn delete_range(&mut self, table: Table, from: impl Into<Vec<u8>>, to: impl Into<Vec<u8>>) {
        self.ops
            .push(Op::DeleteRange(table, from.into(), to.into()));
    }

    pub(crate) fn raise_counter(&mut self, name: &'static str, value: u64) {
        self.ops.push(Op::RaiseCounter(name, value));
    }

    /// Runs `callback` once the batch's write is over: with `true` when
    /// what it holds is on disk, with `false` when it never will be (the
    /// write failed, or the batch was dropped unwritten). Caches that
    /// learnt of what the batch holds before it was written forget it then.
    pub fn on_written(&mut self, callback: impl FnOnce(bool) + Send + 'static) {
        self.after_write.0.push(Box::new(callback));
    }

    /// Takes out what runs after the write.
    pub(crate) fn take_after_write(&mut self) -> AfterWrite {
        std::mem::take(&mut self.after_write)
    }

    /// Moves every operation of `other` to the end of this batch.
    pub fn append(&mut self, mut other: Batch) {
        self.ops.append(&mut other.ops);
        self.after_write.0.append(&mut other.after_write.0);
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::Arc;

    use super::*;

    fn recorder(batch: &mut Batch) -> Arc<AtomicU8> {
        let seen = Arc::new(AtomicU8::new(0));
        let out = seen.clone();
        batch.on_written(move |written| out.store(if written { 1 } else { 2 }, Ordering::SeqCst));
        seen
    }

    #[test]
    fn callbacks_learn_whether_the_batch_was_written() {
        let mut written = Batch::new();
        let told = recorder(&mut written);
        let mut merged = Batch::new();
        merged.append(written);
        merged.take_after_write().finish(true);
        assert_eq!(told.load(Ordering::SeqCst), 1);

        let mut dropped = Batch::new();
        let told = recorder(&mut dropped);
        drop(dropped);
        assert_eq!(told.load(Ordering::SeqCst), 2);
    }
}
