//! The indexer's own thread, at a lower CPU priority than the threads
//! that answer requests: indexing is background work, and on a small
//! machine a burst of it (after a burst of messages) must not stretch the
//! delivery of new ones. tantivy's own threads, which the index writer
//! starts from this thread, inherit its scheduling class.

use std::sync::mpsc;

type Job = Box<dyn FnOnce() + Send>;

/// How much lower than the server's other threads (Linux `nice`) where the
/// idle scheduling class is not allowed.
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

/// Moves the calling thread to Linux's idle scheduling class, where it
/// runs only on CPU time nothing else wants and any request thread that
/// wakes up takes the CPU from it at once. A lower `nice` value is not
/// enough: the scheduler lets a running thread finish its time slice
/// (about a millisecond or two) before a woken one may run, which was most
/// of the delivery latency's tail while a burst of messages was indexed.
/// Under constant full load indexing waits; a search waits for it only a
/// few seconds (`Search::caught_up`). Falls back to `nice` where the idle
/// class is refused.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; the parameter is valid for
        // SCHED_IDLE, whose only allowed priority is 0.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0 {
            return;
        }
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::Worker;

    /// The policy of the calling thread.
    fn policy() -> i32 {
        // SAFETY: pid 0 is the calling thread; no other precondition.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[tokio::test]
    async fn indexing_runs_in_the_idle_class_and_so_do_the_threads_it_starts() {
        let worker = Worker::start().expect("worker");
        let (own, started) = worker
            .run(|| {
                let child = std::thread::spawn(policy).join().expect("child");
                (policy(), child)
            })
            .await
            .expect("ran");
        assert_eq!((own, started), (libc::SCHED_IDLE, libc::SCHED_IDLE));
        assert_eq!(policy(), libc::SCHED_OTHER, "the caller is not moved");
    }
}
