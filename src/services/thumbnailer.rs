//! Making thumbnails without letting requests multiply the cost.
//!
//! Decoding an image takes memory in proportion to its pixels, and anyone
//! may ask for a thumbnail (the older media API needs no access token), so:
//! concurrent requests for one thumbnail share one job (the first starts
//! it, the others wait for its result), and only a few decodes run at once
//! however many different thumbnails are asked for. A job runs as its own
//! task: a client hanging up does not cancel work others are waiting for.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::future::{BoxFuture, FutureExt, Shared};
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use super::media::write_durably;
use super::thumbnail::{self, Thumbnail, ThumbnailSpec};
use crate::error::{Error, Result};

/// Decodes running at once; the rest wait their turn.
const MAX_CONCURRENT_DECODES: usize = 2;

type Job = Shared<BoxFuture<'static, Result<Thumbnail>>>;

pub struct Thumbnailer {
    /// Where thumbnails are kept, one file per image and size.
    dir: PathBuf,
    /// Jobs under way, by thumbnail file name; a job removes itself when
    /// done, so this holds no more entries than requests in flight.
    jobs: Mutex<HashMap<String, Job>>,
    decodes: Semaphore,
    started: AtomicU64,
}

/// One thumbnail to make: of the original at `original` (of
/// `content_type`), at `spec`, kept as `name`.
pub struct Order {
    pub name: String,
    pub original: PathBuf,
    pub content_type: String,
    pub spec: ThumbnailSpec,
}

impl Thumbnailer {
    pub fn new(dir: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            dir,
            jobs: Mutex::new(HashMap::new()),
            decodes: Semaphore::new(MAX_CONCURRENT_DECODES),
            started: AtomicU64::new(0),
        })
    }

    /// The kept thumbnail, if it was made before.
    pub async fn kept(&self, name: &str, content_type: &str) -> Option<Thumbnail> {
        let bytes = tokio::fs::read(self.dir.join(name)).await.ok()?;
        Some(Thumbnail {
            content_type: thumbnail::output_type(content_type),
            bytes,
        })
    }

    /// The thumbnail `order` asks for: kept, or made once however many
    /// ask for it at the same time.
    pub async fn get(self: &Arc<Self>, order: Order) -> Result<Thumbnail> {
        if let Some(kept) = self.kept(&order.name, &order.content_type).await {
            return Ok(kept);
        }
        self.job(order).await
    }

    /// How many thumbnails were started (decodes begun) since start-up.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// The job making `order`'s thumbnail, started if none is under way.
    fn job(self: &Arc<Self>, order: Order) -> Job {
        let mut jobs = self.jobs.lock();
        if let Some(job) = jobs.get(&order.name) {
            return job.clone();
        }
        let name = order.name.clone();
        let this = self.clone();
        // The task cannot remove its entry before it is inserted: that
        // needs the lock held here.
        let task = tokio::spawn(async move {
            let name = order.name.clone();
            let made = this.make(order).await;
            this.jobs.lock().remove(&name);
            made
        });
        let job = async move {
            task.await
                .unwrap_or_else(|e| Err(Error::internal(format!("thumbnailer: {e}"))))
        }
        .boxed()
        .shared();
        jobs.insert(name, job.clone());
        job
    }

    async fn make(&self, order: Order) -> Result<Thumbnail> {
        // A job for this thumbnail may have finished between the caller's
        // look and this job's start.
        if let Some(kept) = self.kept(&order.name, &order.content_type).await {
            return Ok(kept);
        }
        let _turn = self
            .decodes
            .acquire()
            .await
            .map_err(|_| Error::internal("thumbnailer stopped"))?;
        self.started.fetch_add(1, Ordering::Relaxed);
        let original = tokio::fs::read(&order.original)
            .await
            .map_err(|e| Error::internal(format!("reading media for a thumbnail: {e}")))?;
        let (dir, path) = (self.dir.clone(), self.dir.join(&order.name));
        tokio::task::spawn_blocking(move || {
            let made = thumbnail::make(&order.content_type, &original, order.spec)?;
            if let Err(e) = write_durably(&dir, &path, &made.bytes) {
                tracing::warn!(error = %e, "keeping a thumbnail");
            }
            Ok(made)
        })
        .await
        .map_err(|e| Error::internal(format!("thumbnailer: {e}")))?
    }
}
