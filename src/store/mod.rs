//! The database handle services share, its group-commit writer
//! ([`GroupWriter`]), and the wake-up signal that tells long-polling syncs
//! something was written.

use std::sync::Arc;

use matrixos_storage::{Batch, CountGuard, Db, GroupWriter};
use tokio::sync::watch;

pub mod erasures;
pub mod notifier;

use crate::error::{Error, Result};
use notifier::Notifier;
pub use notifier::Wake;

#[derive(Clone)]
pub struct Store {
    pub db: Arc<Db>,
    /// Which long-polling syncs a write wakes.
    pub notifier: Arc<Notifier>,
    /// Which local users' content is erased.
    pub erasures: erasures::Erasures,
    changes: watch::Sender<u64>,
    writer: GroupWriter,
}

impl Store {
    pub fn new(db: Db) -> Self {
        let (changes, _) = watch::channel(db.visible_count());
        let db = Arc::new(db);
        let writer = GroupWriter::start(&db)
            .unwrap_or_else(|e| panic!("cannot start the database writer thread: {e}"));
        let notifier = Arc::new(Notifier::new(db.visible_count()));
        Self {
            db,
            notifier,
            erasures: Default::default(),
            changes,
            writer,
        }
    }

    /// Queues the batch for the writer; resolves once it is durable. Then
    /// releases its stream positions and wakes the syncs `wake` names.
    /// Batches queued in order reach the disk in order.
    pub fn commit(
        &self,
        batch: Batch,
        positions: Vec<CountGuard>,
        wake: Wake,
    ) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
        let written = self.writer.submit(batch);
        let changes = self.changes.clone();
        let notifier = self.notifier.clone();
        let db = self.db.clone();
        async move {
            let result = written.await;
            // A failed write shows nothing, but may hold back earlier ones.
            let wake = if result.is_ok() { wake } else { Wake::none() };
            let last = positions.iter().map(CountGuard::get).max();
            if let Some(last) = last {
                notifier.note_changes(&wake, last);
            }
            drop(positions);
            let visible = db.visible_count();
            changes.send_replace(visible);
            if last.is_none() {
                notifier.note_changes(&wake, visible);
            }
            notifier.wake(wake, last.unwrap_or(visible), visible);
            result.map_err(|e| Error::internal(format!("database write: {e}")))
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
