//! Media across servers: this server's files served to other servers
//! (`/_matrix/federation/v1/media/download` and `/thumbnail`, signed
//! requests), and other servers' files fetched for local clients, kept as a
//! copy here and served from it afterwards.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use parking_lot::Mutex;
use ruma::api::federation::authenticated_media::{
    get_content::v1 as download, get_content_thumbnail::v1 as thumbnail, Content, ContentMetadata,
    FileOrLocation,
};
use ruma::{OwnedServerName, ServerName};
use tokio::sync::Semaphore;

use super::client::Bounds;
use crate::bounded_map::BoundedMap;
use crate::client::media::{file, thumbnail_spec, File};
use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::media::RemoteMediaRecord;
use crate::services::remote_media::valid_remote_id;
use crate::services::Services;

/// Files fetched from other servers at once: each may be as large as the
/// upload limit, and is held in memory while it is received.
const MAX_DOWNLOADS: usize = 4;
/// How long a file another server did not give is not asked for again.
const FAILURE_TTL: Duration = Duration::from_secs(60);
/// Room for the multipart framing around a file.
const FRAMING: usize = 64 * 1024;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new().endpoint(serve).endpoint(serve_thumbnail)
}

type MediaKey = (OwnedServerName, String);

/// The fetching side: one fetch per file at a time, a few at once, and
/// recent failures remembered.
pub struct RemoteMedia {
    in_flight: Mutex<HashMap<MediaKey, Arc<tokio::sync::Mutex<()>>>>,
    /// Recent failures, with the error they gave.
    failed: Mutex<BoundedMap<MediaKey, Error>>,
    downloads: Semaphore,
}

impl Default for RemoteMedia {
    fn default() -> Self {
        Self {
            in_flight: Mutex::new(HashMap::new()),
            failed: Mutex::new(BoundedMap::new(10_000)),
            downloads: Semaphore::new(MAX_DOWNLOADS),
        }
    }
}

/// The copy here of another server's file, fetched if there is none yet
/// and `fetch` names who asks for it. A client address that had many
/// bytes fetched lately waits (`M_LIMIT_EXCEEDED`), as on Synapse.
pub async fn remote_copy(
    s: &Arc<Services>,
    server: &ServerName,
    id: &str,
    fetch: Option<IpAddr>,
) -> Result<RemoteMediaRecord> {
    if let Some(record) = s.media.remote_record(server, id)? {
        return Ok(record);
    }
    let Some(requester) = fetch.filter(|_| valid_remote_id(id)) else {
        return Err(Error::not_found("Media not found"));
    };
    s.remote_media_limiter.has_credit(&requester)?;
    let key: MediaKey = (server.to_owned(), id.to_owned());
    let fetches = &s.federation.media;
    {
        let mut failed = fetches.failed.lock();
        failed.expire(Instant::now(), FAILURE_TTL);
        if let Some(error) = failed.get(&key) {
            return Err(error.clone());
        }
    }
    let lock = fetches
        .in_flight
        .lock()
        .entry(key.clone())
        .or_default()
        .clone();
    let fetched = {
        let _one_at_a_time = lock.lock().await;
        match s.media.remote_record(server, id)? {
            Some(record) => Ok(record),
            None => fetch_copy(s, server, id).await,
        }
    };
    fetches.in_flight.lock().remove(&key);
    if let Ok(record) = &fetched {
        s.remote_media_limiter
            .charge(&requester, record.size as f64);
    }
    if let Err(error) = &fetched {
        fetches
            .failed
            .lock()
            .insert(key, error.clone(), Instant::now());
    }
    fetched
}

/// Asks `server` for its file `id` and keeps a copy.
async fn fetch_copy(s: &Arc<Services>, server: &ServerName, id: &str) -> Result<RemoteMediaRecord> {
    let fetches = &s.federation.media;
    let _permit = fetches
        .downloads
        .acquire()
        .await
        .map_err(|_| Error::internal("media downloads closed"))?;
    let bounds = Bounds {
        max_response: s.config.max_request_size + FRAMING,
        timeout: Duration::from_secs(120),
    };
    let request = download::Request::new(id.to_owned());
    let answer = s
        .federation
        .client
        .send_bounded(server, request, bounds)
        .await?;
    let content = match answer.content {
        FileOrLocation::File(content) => content,
        FileOrLocation::Location(_) => {
            // Following a redirect would fetch an address the peer chose.
            return Err(Error::unavailable(format!(
                "{server} answered media {id} with a redirect"
            )));
        }
        _ => {
            return Err(Error::unavailable(format!(
                "{server}: unknown media answer"
            )))
        }
    };
    let filename = content
        .content_disposition
        .as_ref()
        .and_then(|d| d.filename.clone());
    s.media
        .store_remote(
            server,
            id,
            content.content_type.as_deref(),
            filename.as_deref(),
            content.file.into(),
        )
        .await
}

/// A file for another server's answer.
fn content_of(f: File) -> download::Response {
    download::Response::new(
        ContentMetadata::new(),
        FileOrLocation::File(Content::new(f.bytes, f.content_type, f.disposition)),
    )
}

async fn serve(s: Arc<Services>, req: Ruma<download::Request>) -> Result<download::Response> {
    let (record, bytes) = s.media.content(&req.body.media_id).await?;
    Ok(content_of(file(
        record.content_type,
        record.filename,
        bytes,
    )))
}

async fn serve_thumbnail(
    s: Arc<Services>,
    req: Ruma<thumbnail::Request>,
) -> Result<thumbnail::Response> {
    let r = req.body;
    let wanted = thumbnail_spec(r.method.as_ref(), r.width, r.height)?;
    let made = s.media.thumbnail(&r.media_id, wanted).await?;
    let answer = content_of(file(made.content_type, None, made.bytes));
    Ok(thumbnail::Response::new(answer.metadata, answer.content))
}
