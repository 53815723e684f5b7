//! Work that may wait on the disk never stalls the async threads serving
//! every other request. Long work (state resolution over a DAG from
//! elsewhere) moves to tokio's blocking pool, bounded at startup; a
//! request's reads (events and states that may miss the caches) first run
//! from memory only, and when one needed the disk, again where they are
//! after the thread hands its other tasks to another (`block_in_place`):
//! no hop to another thread on the request's path, and none of
//! `block_in_place`'s cost when memory had everything.

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

/// Runs a request's reads ([`in_place`]), first from memory only: when
/// every read found its records in memory, that answer stands, and the
/// thread never had to hand its tasks over. `work` must only read: it may
/// run twice.
pub fn reads<T>(work: impl Fn() -> T) -> T {
    match matrixos_storage::from_memory(&work) {
        Some(out) => out,
        None => in_place(work),
    }
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
