use crate::Table;

/// One atomic write: every put and delete in it lands together or not at all.
#[derive(Default)]
pub struct Batch {
    pub(crate) ops: Vec<Op>,
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

    /// Moves every operation of `other` to the end of this batch.
    pub fn append(&mut self, mut other: Batch) {
        self.ops.append(&mut other.ops);
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }
}
