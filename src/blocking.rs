//! Work that may wait on the disk never stalls the async threads serving
//! every other request. Long work (state resolution over a DAG from
//! elsewhere) moves to tokio's blocking pool, bounded at startup; a
//! request's reads (events and states that may miss the caches) run where
//! they are, after the thread hands its other tasks to another
//! (`block_in_place`): no hop to another thread on the request's path.

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

/// Runs a request's reads on this thread, which first hands its other
/// tasks to another worker. On a single-threaded runtime (tests), runs
/// them as they are.
pub fn in_place<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
