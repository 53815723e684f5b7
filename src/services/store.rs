//! The database handle services share, the ordered group-commit writer, and
//! the wake-up signal that tells long-polling syncs something was written.
//!
//! Every write goes through one writer thread: it takes all batches queued
//! while the previous sync was running and writes them, in queue order, as
//! one durable RocksDB write. Concurrent senders therefore share one WAL
//! sync, and a batch that builds on an earlier one (the next event of a room)
//! can never reach the disk without it.

use std::sync::{Arc, Weak};

use matrixos_storage::{Batch, CountGuard, Db};
use tokio::sync::{oneshot, watch};

use super::notifier::{Notifier, Wake};
use crate::error::{Error, Result};

/// Most batches merged into one disk write.
const MAX_GROUP: usize = 512;

type Job = (Batch, oneshot::Sender<std::result::Result<(), String>>);

#[derive(Clone)]
pub struct Store {
    pub db: Arc<Db>,
    /// Which long-polling syncs a write wakes.
    pub notifier: Arc<Notifier>,
    changes: watch::Sender<u64>,
    queue: std::sync::mpsc::Sender<Job>,
}

/// The writer holds the database weakly: it closes (synchronously, on the
/// thread that drops the last `Store`) as soon as the services are gone,
/// never while the process is already exiting.
fn run_writer(db: Weak<Db>, jobs: std::sync::mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut merged = Batch::new();
        let mut waiters = Vec::with_capacity(group.len());
        for (batch, waiter) in group {
            merged.append(batch);
            waiters.push(waiter);
        }
        let result = match db.upgrade() {
            Some(db) => db.write(merged).map_err(|e| e.to_string()),
            None => Err("database closed".to_owned()),
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, "database write failed");
        }
        for waiter in waiters {
            let _ = waiter.send(result.clone());
        }
    }
}

impl Store {
    pub fn new(db: Db) -> Self {
        let (changes, _) = watch::channel(db.visible_count());
        let db = Arc::new(db);
        let (queue, jobs) = std::sync::mpsc::channel();
        let writer_db = Arc::downgrade(&db);
        std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || run_writer(writer_db, jobs))
            .unwrap_or_else(|e| panic!("cannot start the database writer thread: {e}"));
        let notifier = Arc::new(Notifier::new(db.visible_count()));
        Self {
            db,
            notifier,
            changes,
            queue,
        }
    }

    /// Queues the batch for the writer; resolves once it is durable. Then
    /// releases its stream positions and wakes the syncs `wake` names.
    ///
    /// The batch is queued before this returns its future, so batches queued
    /// in order by one task (or under one lock) reach the disk in order.
    pub fn commit(
        &self,
        batch: Batch,
        positions: Vec<CountGuard>,
        wake: Wake,
    ) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let queued = self.queue.send((batch, tx));
        let changes = self.changes.clone();
        let notifier = self.notifier.clone();
        let db = self.db.clone();
        async move {
            queued.map_err(|_| Error::internal("database writer stopped"))?;
            let result = rx
                .await
                .map_err(|_| Error::internal("database writer stopped"))?;
            drop(positions);
            let visible = db.visible_count();
            changes.send_replace(visible);
            result.map_err(|e| Error::internal(format!("database write: {e}")))?;
            notifier.wake(&wake, visible);
            Ok(())
        }
    }

    /// A receiver that changes whenever the visible stream position moves.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn position(&self) -> u64 {
        self.db.visible_count()
    }
}
