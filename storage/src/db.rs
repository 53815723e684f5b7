use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, IteratorMode, MergeOperands,
    Options, WriteBatch, WriteOptions, DB,
};

use crate::batch::Op;
use crate::cache_tier::read_options;
use crate::counter::StreamCounter;
use crate::{keys, Batch, CountGuard, Error, Result, Table};

const SHORT_COUNTER: &str = "short";
const STREAM_COUNTER: &str = "stream";
const BACKFILL_COUNTER: &str = "backfill";

/// How the database is opened.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Sync the write-ahead log before a write returns (durable against power
    /// loss). Concurrent writers share one sync: RocksDB commits them as a
    /// group. Turning it off keeps writes safe against a process crash only.
    pub sync_writes: bool,
    /// Block cache shared by every table, in bytes.
    pub cache_bytes: usize,
    /// Memtable budget for all tables together, in bytes.
    pub write_buffer_bytes: usize,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            sync_writes: true,
            cache_bytes: 16 << 20,
            write_buffer_bytes: 32 << 20,
        }
    }
}

/// One record from a scan: key and value.
pub type Record = Result<(Box<[u8]>, Box<[u8]>)>;

/// Which way a range scan walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// The database: RocksDB with one column family per [`Table`].
pub struct Db {
    db: DB,
    sync_writes: bool,
    next_short: AtomicU64,
    next_backfill: AtomicU64,
    stream: StreamCounter,
}

/// Counters only grow: concurrent batches may write them in any order.
fn max_merge(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    let mut max = existing.and_then(keys::read_u64).unwrap_or(0);
    for op in operands {
        max = max.max(keys::read_u64(op).unwrap_or(0));
    }
    Some(max.to_be_bytes().to_vec())
}

fn table_options(table: Table, cache: &Cache, per_table_buffer: usize) -> Options {
    let mut opts = Options::default();
    let mut block = BlockBasedOptions::default();
    block.set_block_cache(cache);
    block.set_cache_index_and_filter_blocks(true);
    if table.point_lookups() {
        block.set_bloom_filter(10.0, false);
    }
    opts.set_block_based_table_factory(&block);
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    opts.set_write_buffer_size(per_table_buffer);
    if table == Table::Counters {
        opts.set_merge_operator_associative("max_u64", max_merge);
    }
    opts
}

impl Db {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path, options: DbOptions) -> Result<Self> {
        let cache = Cache::new_lru_cache(options.cache_bytes);
        let per_table = (options.write_buffer_bytes / 8).max(1 << 20);
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_db_write_buffer_size(options.write_buffer_bytes);
        db_opts.set_max_background_jobs(2);
        db_opts.set_keep_log_file_num(2);
        db_opts.set_max_open_files(256);
        // One writer thread does every write (group commit happens above
        // RocksDB), so pipelining WAL and memtable writes only adds overhead.
        db_opts.set_enable_pipelined_write(false);
        let descriptors = Table::ALL
            .iter()
            .map(|t| ColumnFamilyDescriptor::new(t.name(), table_options(*t, &cache, per_table)));
        let db = DB::open_cf_descriptors(&db_opts, path, descriptors)?;
        let mut this = Self {
            db,
            sync_writes: options.sync_writes,
            next_short: AtomicU64::new(1),
            next_backfill: AtomicU64::new(1),
            stream: StreamCounter::starting_after(0),
        };
        let last_short = this.counter(SHORT_COUNTER)?;
        this.next_short = AtomicU64::new(last_short + 1);
        this.next_backfill = AtomicU64::new(this.counter(BACKFILL_COUNTER)? + 1);
        this.stream = StreamCounter::starting_after(this.counter(STREAM_COUNTER)?);
        Ok(this)
    }

    fn cf(&self, table: Table) -> &ColumnFamily {
        // Every table is created at open; a missing one is a programming error.
        self.db
            .cf_handle(table.name())
            .unwrap_or_else(|| panic!("column family {} not opened", table.name()))
    }

    fn counter(&self, name: &str) -> Result<u64> {
        Ok(self
            .get(Table::Counters, name.as_bytes())?
            .and_then(|v| keys::read_u64(&v))
            .unwrap_or(0))
    }

    /// Allocates a short numeric id (for events, rooms, state keys, state
    /// hashes); the batch records it so it is never handed out again.
    pub fn allocate_short(&self, batch: &mut Batch) -> u64 {
        let id = self.next_short.fetch_add(1, Ordering::SeqCst);
        batch.raise_counter(SHORT_COUNTER, id);
        id
    }

    /// Records in `batch` that `id` (handed out by [`Self::allocate_short`]
    /// for another batch, which may land later) is taken: a batch that
    /// writes records of that id again keeps it from being handed out twice.
    pub fn keep_short(&self, batch: &mut Batch, id: u64) {
        batch.raise_counter(SHORT_COUNTER, id);
    }

    /// Reserves `n` backfill numbers (the first is returned): each batch of
    /// backfilled events numbers them after every earlier one, as they are
    /// older; the batch records the range so it is never handed out again.
    pub fn allocate_backfill(&self, batch: &mut Batch, n: u64) -> u64 {
        let first = self.next_backfill.fetch_add(n, Ordering::SeqCst);
        batch.raise_counter(BACKFILL_COUNTER, first + n.saturating_sub(1));
        first
    }

    /// Reserves the next stream position for a write in this batch.
    pub fn reserve_count(&self, batch: &mut Batch) -> CountGuard {
        let guard = self.stream.reserve();
        batch.raise_counter(STREAM_COUNTER, guard.get());
        guard
    }

    /// The stream position every reader may safely report.
    pub fn visible_count(&self) -> u64 {
        self.stream.visible()
    }

    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf_opt(self.cf(table), key, &read_options())?)
    }

    pub fn exists(&self, table: Table, key: &[u8]) -> Result<bool> {
        Ok(self
            .db
            .get_pinned_cf_opt(self.cf(table), key, &read_options())?
            .is_some())
    }

    /// Looks up many keys of one table at once.
    pub fn multi_get(&self, table: Table, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let cf = self.cf(table);
        self.db
            .multi_get_cf_opt(keys.iter().map(|k| (cf, k.as_slice())), &read_options())
            .into_iter()
            .map(|r| r.map_err(Error::from))
            .collect()
    }

    /// Every record whose key starts with `prefix`, in key order.
    pub fn scan_prefix<'a>(
        &'a self,
        table: Table,
        prefix: &'a [u8],
    ) -> impl Iterator<Item = Record> + 'a {
        self.db
            .iterator_cf_opt(
                self.cf(table),
                read_options(),
                IteratorMode::From(prefix, rocksdb::Direction::Forward),
            )
            .map(|r| r.map_err(Error::from))
            .take_while(move |r| match r {
                Ok((k, _)) => k.starts_with(prefix),
                Err(_) => true,
            })
    }

    /// Records from `start` on (inclusive; backward: the last key ≤ `start`)
    /// while their key starts with `prefix`.
    pub fn scan_from<'a>(
        &'a self,
        table: Table,
        prefix: &'a [u8],
        start: &[u8],
        direction: Direction,
    ) -> impl Iterator<Item = Record> + 'a {
        let dir = match direction {
            Direction::Forward => rocksdb::Direction::Forward,
            Direction::Backward => rocksdb::Direction::Reverse,
        };
        self.db
            .iterator_cf_opt(
                self.cf(table),
                read_options(),
                IteratorMode::From(start, dir),
            )
            .map(|r| r.map_err(Error::from))
            .take_while(move |r| match r {
                Ok((k, _)) => k.starts_with(prefix),
                Err(_) => true,
            })
    }

    /// A consistent copy of the whole database in `dir`, which must not
    /// exist yet: RocksDB flushes what is in memory, then hard-links its
    /// immutable files there (copies them on another filesystem).
    pub fn checkpoint(&self, dir: &Path) -> Result<()> {
        rocksdb::checkpoint::Checkpoint::new(&self.db)?.create_checkpoint(dir)?;
        Ok(())
    }

    /// Writes a batch atomically; when it returns Ok the batch is durable.
    /// Then tells its [`Batch::on_written`] callbacks how it went.
    pub fn write(&self, mut batch: Batch) -> Result<()> {
        let after_write = batch.take_after_write();
        let result = self.write_ops(batch);
        after_write.finish(result.is_ok());
        result
    }

    fn write_ops(&self, batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut wb = WriteBatch::default();
        for op in batch.ops {
            match op {
                Op::Put(t, k, v) => wb.put_cf(self.cf(t), k, v),
                Op::Delete(t, k) => wb.delete_cf(self.cf(t), k),
                Op::DeleteRange(t, from, to) => wb.delete_range_cf(self.cf(t), from, to),
                Op::RaiseCounter(name, v) => {
                    wb.merge_cf(self.cf(Table::Counters), name.as_bytes(), v.to_be_bytes())
                }
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(self.sync_writes);
        self.db.write_opt(wb, &opts)?;
        Ok(())
    }

    /// Approximate memory held by RocksDB (memtables, caches, readers).
    pub fn memory_usage(&self) -> String {
        let prop = |name: &str| self.db.property_int_value(name).ok().flatten().unwrap_or(0);
        format!(
            "memtables={} table_readers={}",
            prop("rocksdb.cur-size-all-mem-tables"),
            prop("rocksdb.estimate-table-readers-mem")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> Db {
        Db::open(dir, DbOptions::default()).unwrap()
    }

    #[test]
    fn batches_are_atomic_and_counters_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (short, count) = {
            let db = open(dir.path());
            let mut batch = Batch::new();
            let short = db.allocate_short(&mut batch);
            let count = db.reserve_count(&mut batch);
            batch.put(Table::Users, b"@a:x".to_vec(), b"{}".to_vec());
            batch.put(Table::Aliases, b"#r:x".to_vec(), b"!r".to_vec());
            db.write(batch).unwrap();
            (short, count.get())
        };
        let db = open(dir.path());
        assert_eq!(db.get(Table::Users, b"@a:x").unwrap().unwrap(), b"{}");
        assert!(db.exists(Table::Aliases, b"#r:x").unwrap());
        let mut batch = Batch::new();
        assert!(db.allocate_short(&mut batch) > short);
        assert_eq!(db.visible_count(), count);
        assert!(db.reserve_count(&mut batch).get() > count);
    }

    #[test]
    fn memory_only_reads_tell_when_they_needed_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = open(dir.path());
            let mut batch = Batch::new();
            batch.put(Table::Users, b"@a:x".to_vec(), b"{}".to_vec());
            batch.put(Table::Timeline, keys::short_and_u64(7, 1).to_vec(), vec![1]);
            db.write(batch).unwrap();
        }
        // Reopened, the records are in a table file and the cache is cold.
        let db = open(dir.path());
        let get = || db.get(Table::Users, b"@a:x");
        assert!(crate::from_memory(get).is_none());
        let scan = || {
            db.scan_prefix(Table::Timeline, &[0, 0, 0, 0, 0, 0, 0, 7])
                .count()
        };
        assert!(crate::from_memory(scan).is_none());
        // Read once from the disk, they are in memory.
        assert_eq!(get().unwrap().unwrap(), b"{}");
        assert_eq!(scan(), 1);
        let cached = crate::from_memory(get).expect("cached").unwrap();
        assert_eq!(cached.unwrap(), b"{}");
        assert_eq!(crate::from_memory(scan), Some(1));
        // Outside memory-only work, reads are as before.
        assert!(db.get(Table::Users, b"@b:x").unwrap().is_none());
    }

    #[test]
    fn counters_merge_with_max_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = open(dir.path());
            let mut late = Batch::new();
            let mut early = Batch::new();
            let a = db.allocate_short(&mut early);
            let b = db.allocate_short(&mut late);
            assert!(b > a);
            db.write(late).unwrap();
            db.write(early).unwrap();
        }
        let db = open(dir.path());
        let mut batch = Batch::new();
        assert_eq!(db.allocate_short(&mut batch), 3);
    }

    #[test]
    fn scans_respect_prefix_and_direction() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        let mut batch = Batch::new();
        for n in [1u64, 2, 3] {
            batch.put(
                Table::Timeline,
                keys::short_and_u64(7, n).to_vec(),
                n.to_be_bytes().to_vec(),
            );
        }
        batch.put(Table::Timeline, keys::short_and_u64(8, 1).to_vec(), vec![]);
        db.write(batch).unwrap();
        let prefix = 7u64.to_be_bytes();
        let forward: Vec<_> = db
            .scan_prefix(Table::Timeline, &prefix)
            .map(|r| r.unwrap().0)
            .collect();
        assert_eq!(forward.len(), 3);
        let start = keys::short_and_u64(7, u64::MAX);
        let backward: Vec<u64> = db
            .scan_from(Table::Timeline, &prefix, &start, Direction::Backward)
            .map(|r| keys::read_u64(&r.unwrap().0[8..]).unwrap())
            .collect();
        assert_eq!(backward, vec![3, 2, 1]);
    }
}
