//! Copies of other servers' files, kept under the media directory like
//! uploads (a file named by an id made here; the peer's server name and
//! media id are only a key in `remote_media`). The copies take at most a
//! configured number of bytes: past it, the oldest copies (and their
//! thumbnails) are evicted until a tenth of the room is free again, so
//! nobody can fill the disk by asking for other servers' files. An
//! evicted file is fetched again when someone next asks for it.

use std::collections::HashSet;

use matrixos_storage::tables::REMOTE_MEDIA;
use matrixos_storage::Batch;
use parking_lot::Mutex;
use ruma::ServerName;

use super::media::{type_or_default, Media, RemoteMediaRecord};
use super::thumbnail::{Thumbnail, ThumbnailSpec};
use super::Store;
use crate::error::{Error, Result};
use crate::services::Wake;

/// Media ids of other servers: what the spec allows (letters, digits, `_`
/// and `-`), at most 255 bytes. Such an id is a key, never a file name.
pub fn valid_remote_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

type Key = (String, String);

/// The size budget of the copies.
pub struct RemoteCache {
    max_bytes: u64,
    /// Bytes the copies take now.
    used: Mutex<u64>,
    /// One eviction at a time.
    evicting: tokio::sync::Mutex<()>,
}

impl RemoteCache {
    /// Reads how much the copies already take.
    pub fn open(store: &Store, max_bytes: u64) -> Result<Self> {
        let mut used = 0u64;
        for row in REMOTE_MEDIA.scan_prefix(&store.db, &[]) {
            used = used.saturating_add(row?.1.size);
        }
        Ok(Self {
            max_bytes,
            used: Mutex::new(used),
            evicting: tokio::sync::Mutex::new(()),
        })
    }

    fn used_bytes(&self) -> u64 {
        *self.used.lock()
    }
}

impl Media {
    /// Bytes the copies of other servers' files take now.
    pub fn remote_used_bytes(&self) -> u64 {
        self.remote.used_bytes()
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
    /// are durable (older copies may be evicted to make room).
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
            authenticated: self.authenticated,
        };
        let key = (server.to_string(), id.to_owned());
        let mut batch = Batch::new();
        REMOTE_MEDIA.put(&mut batch, &key, &record);
        self.store.commit(batch, vec![], Wake::none()).await?;
        tracing::info!(%server, media = %id, size, "remote media kept");
        let over = {
            let mut used = self.remote.used.lock();
            *used = used.saturating_add(size);
            *used > self.remote.max_bytes
        };
        if over {
            if let Err(e) = self.evict_remote(&key).await {
                tracing::error!(error = %e, "evicting remote media");
            }
        }
        Ok(record)
    }

    /// Evicts the oldest copies but `keep` until at most nine tenths of
    /// the budget is used.
    async fn evict_remote(&self, keep: &Key) -> Result<()> {
        let _one = self.remote.evicting.lock().await;
        let target = self.remote.max_bytes / 10 * 9;
        let mut used = self.remote.used_bytes();
        if used <= self.remote.max_bytes {
            return Ok(());
        }
        let db = self.store.db.clone();
        let mut copies = crate::blocking::off_async(move || {
            REMOTE_MEDIA
                .scan_prefix(&db, &[])
                .map(|row| row.map_err(Error::from))
                .collect::<Result<Vec<_>>>()
        })
        .await?;
        copies.sort_by_key(|(_, record)| record.fetched_ts);
        let mut batch = Batch::new();
        let mut evicted = Vec::new();
        for (key, record) in copies {
            if used <= target {
                break;
            }
            if key == *keep {
                continue;
            }
            REMOTE_MEDIA.delete(&mut batch, &key);
            used = used.saturating_sub(record.size);
            evicted.push(record);
        }
        self.store.commit(batch, vec![], Wake::none()).await?;
        let freed: u64 = evicted.iter().map(|r| r.size).sum();
        {
            let mut now = self.remote.used.lock();
            *now = now.saturating_sub(freed);
        }
        let (dir, count) = (self.dir.clone(), evicted.len());
        let files: HashSet<String> = evicted.into_iter().map(|r| r.file).collect();
        crate::blocking::off_async(move || {
            remove_files(&dir, &files);
            Ok(())
        })
        .await?;
        tracing::info!(count, freed, "remote media evicted");
        Ok(())
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
}

/// Removes files (ids made here, never a peer's names) and their
/// thumbnails (`<file>-<size>-<method>`).
fn remove_files(dir: &std::path::Path, files: &HashSet<String>) {
    for file in files {
        if let Err(e) = std::fs::remove_file(dir.join(file)) {
            tracing::warn!(%file, error = %e, "removing an evicted media file");
        }
    }
    let Ok(thumbnails) = std::fs::read_dir(dir.join("thumbnails")) else {
        return;
    };
    for entry in thumbnails.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let original = name.split('-').next().unwrap_or_default();
        if files.contains(original) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
