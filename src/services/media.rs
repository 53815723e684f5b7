//! The media repository: uploaded files live under `<data dir>/media/`,
//! one file per media id, and their records (type, name, size, uploader) in
//! the `media` table. A file is on disk and synced before its record is
//! written, so an acknowledged upload survives a crash, and a record never
//! names a missing file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use matrixos_storage::tables::MEDIA;
use matrixos_storage::Batch;
use ruma::UserId;

use super::remote_media::RemoteCache;
use super::thumbnail::{self, Thumbnail, ThumbnailSpec};
use super::thumbnailer::{Order, Thumbnailer};
use super::Store;
use crate::error::{Error, Result};
use crate::services::Wake;

pub use matrixos_storage::records::{MediaRecord, RemoteMediaRecord};

pub struct Media {
    pub(super) store: Store,
    pub(super) dir: PathBuf,
    thumbnailer: Arc<Thumbnailer>,
    pub(super) remote: RemoteCache,
    pub(super) pending: super::media_pending::PendingUploads,
    /// Whether files stored now are for the authenticated paths only.
    pub(super) authenticated: bool,
}

/// Media ids are 24 letters and digits; anything else names no file.
fn valid_id(id: &str) -> bool {
    id.len() == 24 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A file's type as given, or the generic one.
pub(super) fn type_or_default(content_type: Option<&str>) -> String {
    content_type
        .filter(|t| !t.is_empty())
        .unwrap_or("application/octet-stream")
        .to_owned()
}

/// Writes `bytes` to `path` durably: a temporary file, synced, renamed,
/// and the directory synced.
pub(super) fn write_durably(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let partial = path.with_extension("part");
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)?;
    std::fs::File::open(dir)?.sync_all()
}

impl Media {
    /// Opens the media directory; copies of other servers' files take at
    /// most `remote_max_bytes` (the oldest are evicted beyond). With
    /// `authenticated`, files stored from now on are marked as served at the
    /// authenticated paths only.
    pub fn new(
        store: Store,
        data_dir: &Path,
        remote_max_bytes: u64,
        authenticated: bool,
    ) -> Result<Self> {
        let dir = data_dir.join("media");
        std::fs::create_dir_all(dir.join("thumbnails"))
            .map_err(|e| Error::internal(format!("creating the media directory: {e}")))?;
        let thumbnailer = Thumbnailer::new(dir.join("thumbnails"));
        let remote = RemoteCache::open(&store, remote_max_bytes)?;
        Ok(Self {
            store,
            dir,
            thumbnailer,
            remote,
            pending: Default::default(),
            authenticated,
        })
    }

    /// Stores an upload; resolves to its media id once file and record are
    /// durable.
    pub async fn upload(
        &self,
        uploader: &UserId,
        content_type: Option<&str>,
        filename: Option<&str>,
        bytes: bytes::Bytes,
    ) -> Result<String> {
        let id = crate::random::random_string(24);
        let now = crate::services::accounts::now_ms();
        self.store_file(&id, (uploader, now), content_type, filename, bytes)
            .await?;
        Ok(id)
    }

    /// Writes the file of `id` and then its record, both durably.
    pub(super) async fn store_file(
        &self,
        id: &str,
        (uploader, created_ts): (&UserId, u64),
        content_type: Option<&str>,
        filename: Option<&str>,
        bytes: bytes::Bytes,
    ) -> Result<()> {
        let size = bytes.len() as u64;
        self.write_file(id, bytes).await?;
        let record = MediaRecord {
            content_type: type_or_default(content_type),
            filename: filename.filter(|f| !f.is_empty()).map(str::to_owned),
            size,
            uploader: uploader.to_owned(),
            created_ts,
            pending: false,
            authenticated: self.authenticated,
        };
        let mut batch = Batch::new();
        MEDIA.put(&mut batch, id, &record);
        self.store.commit(batch, vec![], Wake::none()).await?;
        tracing::info!(media = %id, size, uploader = %uploader, "media uploaded");
        Ok(())
    }

    /// Writes bytes to a new file under a fresh id, durably; answers the id.
    pub(super) async fn write_new_file(&self, bytes: bytes::Bytes) -> Result<String> {
        let id = crate::random::random_string(24);
        self.write_file(&id, bytes).await?;
        Ok(id)
    }

    /// Writes bytes to the file of `id`, durably.
    pub(super) async fn write_file(&self, id: &str, bytes: bytes::Bytes) -> Result<()> {
        let (dir, path) = (self.dir.clone(), self.dir.join(id));
        tokio::task::spawn_blocking(move || write_durably(&dir, &path, &bytes))
            .await
            .map_err(|e| Error::internal(format!("media writer: {e}")))?
            .map_err(|e| Error::internal(format!("writing media: {e}")))
    }

    /// The record of a local media id, if it exists.
    pub fn record(&self, id: &str) -> Result<Option<MediaRecord>> {
        if !valid_id(id) {
            return Ok(None);
        }
        Ok(MEDIA.get(&self.store.db, id)?)
    }

    pub(super) async fn read(&self, id: &str) -> Result<Vec<u8>> {
        tokio::fs::read(self.dir.join(id))
            .await
            .map_err(|e| match e.kind() {
                // A copy of a remote file evicted since its record was read.
                std::io::ErrorKind::NotFound => Error::not_found("Media not found"),
                _ => Error::internal(format!("reading media {id}: {e}")),
            })
    }

    /// The record and bytes of a local media id; `M_NOT_FOUND` if unknown.
    pub async fn content(&self, id: &str) -> Result<(MediaRecord, Vec<u8>)> {
        let record = self.uploaded(id).await?;
        Ok((record, self.read(id).await?))
    }

    /// A thumbnail of a local image, made once per size and kept on disk
    /// (the original is read only to make it).
    pub async fn thumbnail(&self, id: &str, wanted: ThumbnailSpec) -> Result<Thumbnail> {
        let record = self.uploaded(id).await?;
        self.thumbnail_of(id, record.content_type, wanted).await
    }

    /// A thumbnail of the file `file` (an id made here), made once per size.
    pub(super) async fn thumbnail_of(
        &self,
        file: &str,
        content_type: String,
        wanted: ThumbnailSpec,
    ) -> Result<Thumbnail> {
        let spec = thumbnail::nearest_size(wanted);
        let order = Order {
            name: spec.file_name(file),
            original: self.dir.join(file),
            content_type,
            spec,
        };
        self.thumbnailer.get(order).await
    }

    /// How many thumbnails were started since start-up (each is made once,
    /// however many ask for it at the same time).
    pub fn thumbnails_started(&self) -> u64 {
        self.thumbnailer.started()
    }
}
