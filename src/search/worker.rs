//! The indexer's own thread, at a lower CPU priority than the threads
//! that answer requests: indexing is background work, and on a small
//! machine a burst of it (after a burst of messages) must not stretch the
//! delivery of new ones. tantivy's own threads, which the index writer
//! starts from this thread, inherit its priority.

use std::sync::mpsc;

type Job = Box<dyn FnOnce() + Send>;

/// How much lower than the server's other threads (Linux `nice`).
const NICENESS: i32 = 10;

pub struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    /// Starts the thread; it ends when the worker is dropped.
    pub fn start() -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("search-index".into())
            .spawn(move || {
                lower_priority();
                while let Ok(job) = queue.recv() {
                    job();
                }
            })?;
        Ok(Self { jobs })
    }

    /// Runs `work` on the thread; `None` if the thread is gone.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        self.jobs.send(job).ok()?;
        result.await.ok()
    }
}

/// Lowers the calling thread's priority (Linux keeps one per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions; setpriority with this
        // thread's id changes only this thread's nice value.
        let changed = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICENESS)
        };
        if changed != 0 {
            tracing::warn!("the search indexer runs at normal priority");
        }
    }
}
