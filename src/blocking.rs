//! Work that may wait on the disk (reads of events and states that miss the
//! caches, state resolution over a DAG from elsewhere) runs on tokio's
//! blocking pool, bounded at startup, so that it never stalls the async
//! threads serving every other request.

use crate::error::{Error, Result};

/// The most threads the blocking pool grows to; further work queues.
pub const MAX_THREADS: usize = 64;

/// Runs `work` on the blocking pool.
pub async fn off_async<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::internal(format!("blocking task failed: {e}")))?
}
