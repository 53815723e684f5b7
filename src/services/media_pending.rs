//! Asynchronous uploads (`/v1/media/create`, then `PUT /v3/upload/…`): a
//! media id reserved before its bytes come. Each user holds few
//! reservations at once, each expires unused after a day, and one upload
//! at a time may fill one.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use matrixos_storage::tables::MEDIA;
use matrixos_storage::Batch;
use parking_lot::Mutex;
use ruma::{OwnedUserId, UserId};

use super::media::{type_or_default, Media, MediaRecord};
use crate::error::{Error, Result};
use crate::services::accounts::now_ms;
use crate::services::Wake;

/// Most reservations one user holds unfilled (Synapse's default).
const MAX_PENDING: usize = 5;
/// How long a reservation waits for its bytes.
pub const UNUSED_EXPIRY_MS: u64 = 24 * 3600 * 1000;
/// How long a download of a reserved id waits for its bytes before
/// `M_NOT_YET_UPLOADED` (the spec's default `timeout_ms`).
const DOWNLOAD_WAIT: Duration = Duration::from_secs(20);

#[derive(Default)]
pub struct PendingUploads {
    /// user → their unfilled reservations (id, expiry), since start.
    reserved: Mutex<HashMap<OwnedUserId, Vec<(String, u64)>>>,
    /// Ids whose bytes are being written now.
    filling: Mutex<HashSet<String>>,
}

fn not_yet_uploaded() -> Error {
    Error::new(
        http::StatusCode::GATEWAY_TIMEOUT,
        "M_NOT_YET_UPLOADED",
        "The file has not been uploaded yet",
    )
}

impl Media {
    /// Reserves a media id for `user`; answers it with its expiry.
    pub async fn create_pending(&self, user: &UserId) -> Result<(String, u64)> {
        let now = now_ms();
        {
            let mut reserved = self.pending.reserved.lock();
            let mine = reserved.entry(user.to_owned()).or_default();
            mine.retain(|(_, expires)| *expires > now);
            if mine.len() >= MAX_PENDING {
                let wait = mine.iter().map(|(_, e)| e - now).min().unwrap_or(0);
                return Err(Error::limit_exceeded(wait));
            }
        }
        let id = crate::random::random_string(24);
        let record = MediaRecord {
            content_type: type_or_default(None),
            filename: None,
            size: 0,
            uploader: user.to_owned(),
            created_ts: now,
            pending: true,
            authenticated: self.authenticated,
        };
        let mut batch = Batch::new();
        MEDIA.put(&mut batch, &id, &record);
        self.store.commit(batch, vec![], Wake::none()).await?;
        let expires = now + UNUSED_EXPIRY_MS;
        let mut reserved = self.pending.reserved.lock();
        reserved
            .entry(user.to_owned())
            .or_default()
            .push((id.clone(), expires));
        Ok((id, expires))
    }

    /// Fills a reservation of `user`'s with the uploaded bytes.
    pub async fn fill_pending(
        &self,
        user: &UserId,
        id: &str,
        content_type: Option<&str>,
        filename: Option<&str>,
        bytes: bytes::Bytes,
    ) -> Result<()> {
        let record = self
            .record(id)?
            .filter(|r| !r.pending || r.created_ts + UNUSED_EXPIRY_MS > now_ms())
            .ok_or_else(|| Error::not_found("Unknown media id"))?;
        if record.uploader != user {
            return Err(Error::forbidden(
                "This media id was reserved by someone else",
            ));
        }
        let cannot_overwrite = || {
            Error::new(
                http::StatusCode::CONFLICT,
                "M_CANNOT_OVERWRITE_MEDIA",
                "Media has already been uploaded",
            )
        };
        if !record.pending || !self.pending.filling.lock().insert(id.to_owned()) {
            return Err(cannot_overwrite());
        }
        // Read again once claimed: an upload that finished in between
        // filled it.
        let still_pending = self.record(id).map(|r| r.is_some_and(|r| r.pending));
        let filled = match still_pending {
            Ok(true) => {
                let owner = (user, record.created_ts);
                self.store_file(id, owner, content_type, filename, bytes)
                    .await
            }
            Ok(false) => Err(cannot_overwrite()),
            Err(e) => Err(e),
        };
        self.pending.filling.lock().remove(id);
        filled?;
        if let Some(mine) = self.pending.reserved.lock().get_mut(user) {
            mine.retain(|(reserved, _)| reserved != id);
        }
        Ok(())
    }

    /// The record of a local file whose bytes are there, waiting a while
    /// for those of a reserved id; `M_NOT_FOUND` if unknown.
    pub(super) async fn uploaded(&self, id: &str) -> Result<MediaRecord> {
        let deadline = tokio::time::Instant::now() + DOWNLOAD_WAIT;
        loop {
            let record = self
                .record(id)?
                .ok_or_else(|| Error::not_found("Media not found"))?;
            if !record.pending {
                return Ok(record);
            }
            if record.created_ts + UNUSED_EXPIRY_MS <= now_ms() {
                return Err(Error::not_found("Media not found"));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(not_yet_uploaded());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
