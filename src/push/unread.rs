//! The unread rows of each (user, room), mirrored in memory so that sends
//! and syncs count and clear them without reading the database. Every row
//! written since the start is noted here; an entry becomes *complete* once
//! the rows already on disk were read and merged in (once, on first need),
//! and from then on it alone answers.

use std::collections::{BTreeMap, HashMap};

use matrixos_storage::{Batch, Db};
use parking_lot::Mutex;
use ruma::{OwnedUserId, UserId};

use super::record::{self, HIGHLIGHT, NOTIFY};
use crate::error::Result;

/// Rows kept per entry; past this the entry is dropped and later answers
/// come from the database (read once more, then cached again).
const MAX_ROWS: usize = 10_000;
/// Entries kept; past this all are dropped.
const MAX_ENTRIES: usize = 500_000;

/// Notification and highlight counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Unread {
    pub notifications: u64,
    pub highlights: u64,
}

impl Unread {
    fn add(&mut self, flags: u8) {
        self.notifications += u64::from(flags & NOTIFY != 0);
        self.highlights += u64::from(flags & HIGHLIGHT != 0);
    }
}

/// One room's unread counts: all of them, the main timeline's, and each
/// thread's.
#[derive(Debug, Default)]
pub struct RoomCounts {
    pub total: Unread,
    pub main: Unread,
    pub threads: BTreeMap<String, Unread>,
}

struct Row {
    count: u64,
    flags: u8,
    /// Thread root; empty for the main timeline.
    thread: Box<str>,
}

#[derive(Default)]
struct Entry {
    complete: bool,
    /// Sorted by position.
    rows: Vec<Row>,
}

impl Entry {
    fn insert(&mut self, row: Row) {
        match self.rows.binary_search_by_key(&row.count, |r| r.count) {
            Ok(_) => {}
            Err(at) => self.rows.insert(at, row),
        }
    }
}

type Key = (OwnedUserId, u64);

#[derive(Default)]
pub struct UnreadRows {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl UnreadRows {
    /// Notes a row written (with its event) for the user.
    pub fn note(
        &self,
        user: &UserId,
        short_room: u64,
        count: u64,
        flags: u8,
        thread: Option<&str>,
    ) {
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        let key = (user.to_owned(), short_room);
        let entry = entries.entry(key.clone()).or_default();
        entry.insert(Row {
            count,
            flags,
            thread: thread.unwrap_or("").into(),
        });
        if entry.rows.len() > MAX_ROWS {
            entries.remove(&key);
        }
    }

    /// Runs `f` on the complete entry, reading the stored rows first if
    /// this entry has not been completed yet.
    fn with_complete<R>(
        &self,
        db: &Db,
        user: &UserId,
        short_room: u64,
        f: impl FnOnce(&mut Entry) -> R,
    ) -> Result<R> {
        let key = (user.to_owned(), short_room);
        {
            let mut entries = self.entries.lock();
            if let Some(entry) = entries.get_mut(&key).filter(|e| e.complete) {
                return Ok(f(entry));
            }
        }
        // Read outside the lock; merged only if nobody completed the entry
        // meanwhile (whose clears this older reading may not reflect).
        let stored = record::scan_room(db, user, short_room)?;
        let mut entries = self.entries.lock();
        let entry = entries.entry(key).or_default();
        if !entry.complete {
            for (count, flags, thread) in stored {
                entry.insert(Row {
                    count,
                    flags,
                    thread: thread.into(),
                });
            }
            entry.complete = true;
        }
        Ok(f(entry))
    }

    /// Deletes (in `batch`) the rows up to `count`: all of them, or only
    /// the main timeline's (`main`) or one thread's.
    pub fn clear(
        &self,
        db: &Db,
        batch: &mut Batch,
        user: &UserId,
        short_room: u64,
        count: u64,
        thread: Option<&str>,
    ) -> Result<()> {
        let wanted = thread.map(|t| if t == "main" { "" } else { t });
        self.with_complete(db, user, short_room, |entry| {
            entry.rows.retain(|row| {
                let cleared = row.count <= count && wanted.is_none_or(|w| *w == *row.thread);
                if cleared {
                    record::delete(batch, user, short_room, row.count);
                }
                !cleared
            });
        })
    }

    /// The counts of rows up to stream position `at`.
    pub fn counts(&self, db: &Db, user: &UserId, short_room: u64, at: u64) -> Result<RoomCounts> {
        self.with_complete(db, user, short_room, |entry| {
            let mut out = RoomCounts::default();
            for row in entry.rows.iter().take_while(|r| r.count <= at) {
                out.total.add(row.flags);
                if row.thread.is_empty() {
                    out.main.add(row.flags);
                } else {
                    out.threads
                        .entry(row.thread.to_string())
                        .or_default()
                        .add(row.flags);
                }
            }
            out
        })
    }
}
