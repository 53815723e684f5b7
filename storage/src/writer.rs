//! The group-commit writer: every write goes through one thread, which
//! takes all batches queued while the previous write was syncing and
//! writes them, in queue order, as one durable RocksDB write. Concurrent
//! writers therefore share one WAL sync, and a batch that builds on an
//! earlier one (the next event of a room) never reaches the disk without it.

use std::future::Future;
use std::sync::{mpsc, Arc, Weak};

use tokio::sync::oneshot;

use crate::{Batch, Db, Error, Result};

/// Most batches merged into one disk write.
const MAX_GROUP: usize = 512;

type Job = (Batch, oneshot::Sender<std::result::Result<(), String>>);

#[derive(Clone)]
pub struct GroupWriter {
    queue: mpsc::Sender<Job>,
}

impl GroupWriter {
    /// Starts the writer thread. It holds the database weakly: the database
    /// closes (on the thread that drops the last handle) as soon as its
    /// users are gone, never while the process is already exiting.
    pub fn start(db: &Arc<Db>) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::channel();
        let db = Arc::downgrade(db);
        std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || run(db, jobs))?;
        Ok(Self { queue })
    }

    /// Queues the batch and resolves once it is durable. The batch is
    /// queued before this returns, so batches queued in order by one task
    /// (or under one lock) reach the disk in order.
    pub fn submit(&self, batch: Batch) -> impl Future<Output = Result<()>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let queued = self.queue.send((batch, tx));
        async move {
            let stopped = || Error::Task("database writer stopped".into());
            queued.map_err(|_| stopped())?;
            rx.await.map_err(|_| stopped())?.map_err(Error::Task)
        }
    }
}

fn run(db: Weak<Db>, jobs: mpsc::Receiver<Job>) {
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
