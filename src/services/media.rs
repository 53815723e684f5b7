//! The media repository: uploaded files live under `<data dir>/media/`,
//! one file per media id, and their records (type, name, size, uploader) in
//! the `media` table. A file is on disk and synced before its record is
//! written, so an acknowledged upload survives a crash, and a record never
//! names a missing file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use matrixos_storage::tables::{MEDIA, REMOTE_MEDIA};
use matrixos_storage::Batch;
use ruma::{ServerName, UserId};

use super::thumbnail::{self, Thumbnail, ThumbnailSpec};
use super::thumbnailer::{Order, Thumbnailer};
use super::Store;
use crate::error::{Error, Result};
use crate::services::Wake;

pub use matrixos_storage::records::{MediaRecord, RemoteMediaRecord};

pub struct Media {
    store: Store,
    dir: PathBuf,
    thumbnailer: Arc<Thumbnailer>,
}

/// Media ids are 24 letters and digits; anything else names no file.
fn valid_id(id: &str) -> bool {
    id.len() == 24 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Media ids of other servers: what the spec allows (letters, digits, `_`
/// and `-`), at most 255 bytes. Such an id is a key, never a file name.
pub fn valid_remote_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A file's type as given, or the generic one.
fn type_or_default(content_type: Option<&str>) -> String {
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
    pub fn new(store: Store, data_dir: &Path) -> Result<Self> {
        let dir = data_dir.join("media");
        std::fs::create_dir_all(dir.join("thumbnails"))
            .map_err(|e| Error::internal(format!("creating the media directory: {e}")))?;
        let thumbnailer = Thumbnailer::new(dir.join("thumbnails"));
        Ok(Self {
            store,
            dir,
            thumbnailer,
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
        let size = bytes.len() as u64;
        let id = self.write_new_file(bytes).await?;
        let record = MediaRecord {
            content_type: type_or_default(content_type),
            filename: filename.filter(|f| !f.is_empty()).map(str::to_owned),
            size,
            uploader: uploader.to_owned(),
            created_ts: crate::services::accounts::now_ms(),
        };
        let mut batch = Batch::new();
        MEDIA.put(&mut batch, &id, &record);
        self.store.commit(batch, vec![], Wake::none()).await?;
        tracing::info!(media = %id, size, uploader = %uploader, "media uploaded");
        Ok(id)
    }

    /// Writes bytes to a new file under a fresh id, durably; answers the id.
    async fn write_new_file(&self, bytes: bytes::Bytes) -> Result<String> {
        let id = crate::random::random_string(24);
        let (dir, path) = (self.dir.clone(), self.dir.join(&id));
        tokio::task::spawn_blocking(move || write_durably(&dir, &path, &bytes))
            .await
            .map_err(|e| Error::internal(format!("media writer: {e}")))?
            .map_err(|e| Error::internal(format!("writing media: {e}")))?;
        Ok(id)
    }

    /// This server's copy of another server's file, if it has one.
    pub fn remote_record(
        &self,
        server: &ServerName,
        id: &str,
    ) -> Result<Option<RemoteMediaRecord>> {
        if !valid_remote_id(id) {
            return Ok(None);
        }
        Ok(REMOTE_MEDIA.get(&self.store.db, &(server.to_string(), id.to_owned()))?)
    }

    /// Keeps a copy of another server's file; resolves once file and record
    /// are durable.
    pub async fn store_remote(
        &self,
        server: &ServerName,
        id: &str,
        content_type: Option<&str>,
        filename: Option<&str>,
        bytes: bytes::Bytes,
    ) -> Result<RemoteMediaRecord> {
        if !valid_remote_id(id) {
            return Err(Error::not_found("Media not found"));
        }
        let size = bytes.len() as u64;
        let record = RemoteMediaRecord {
            file: self.write_new_file(bytes).await?,
            content_type: type_or_default(content_type),
            filename: filename.filter(|f| !f.is_empty()).map(str::to_owned),
            size,
            fetched_ts: crate::services::accounts::now_ms(),
        };
        let mut batch = Batch::new();
        REMOTE_MEDIA.put(&mut batch, &(server.to_string(), id.to_owned()), &record);
        self.store.commit(batch, vec![], Wake::none()).await?;
        tracing::info!(%server, media = %id, size, "remote media kept");
        Ok(record)
    }

    /// The bytes of a copy of another server's file.
    pub async fn remote_content(&self, record: &RemoteMediaRecord) -> Result<Vec<u8>> {
        self.read(&record.file).await
    }

    /// A thumbnail of a copy of another server's image, made here.
    pub async fn remote_thumbnail(
        &self,
        record: &RemoteMediaRecord,
        wanted: ThumbnailSpec,
    ) -> Result<Thumbnail> {
        self.thumbnail_of(&record.file, record.content_type.clone(), wanted)
            .await
    }

    /// The record of a local media id, if it exists.
    pub fn record(&self, id: &str) -> Result<Option<MediaRecord>> {
        if !valid_id(id) {
            return Ok(None);
        }
        Ok(MEDIA.get(&self.store.db, id)?)
    }

    /// The record of a local media id; `M_NOT_FOUND` if unknown.
    fn existing(&self, id: &str) -> Result<MediaRecord> {
        self.record(id)?
            .ok_or_else(|| Error::not_found("Media not found"))
    }

    async fn read(&self, id: &str) -> Result<Vec<u8>> {
        tokio::fs::read(self.dir.join(id))
            .await
            .map_err(|e| Error::internal(format!("reading media {id}: {e}")))
    }

    /// The record and bytes of a local media id; `M_NOT_FOUND` if unknown.
    pub async fn content(&self, id: &str) -> Result<(MediaRecord, Vec<u8>)> {
        let record = self.existing(id)?;
        Ok((record, self.read(id).await?))
    }

    /// A thumbnail of a local image, made once per size and kept on disk
    /// (the original is read only to make it).
    pub async fn thumbnail(&self, id: &str, wanted: ThumbnailSpec) -> Result<Thumbnail> {
        let record = self.existing(id)?;
        self.thumbnail_of(id, record.content_type, wanted).await
    }

    /// A thumbnail of the file `file` (an id made here), made once per size.
    async fn thumbnail_of(
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
