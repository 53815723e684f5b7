//! The content repository: upload, download, thumbnails and the upload
//! limit, under both the authenticated `/_matrix/client/v1/media/` paths
//! and the older `/_matrix/media/v3/` ones that clients still use.

#![allow(deprecated)] // The older media API is deprecated, and still served.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::Response;
use axum::Router;
use ruma::api::client::{authenticated_media as v1, media as legacy};
use ruma::http_headers::{ContentDisposition, ContentDispositionType};
use ruma::media::Method as ThumbnailMethod;
use ruma::{OwnedMxcUri, ServerName, UInt};

use crate::error::{Error, Result};
use crate::federation::media::remote_copy;
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::media::RemoteMediaRecord;
use crate::services::thumbnail::{Method, ThumbnailSpec};
use crate::services::Services;

/// The content repository, at its authenticated paths and the older ones.
pub fn routes() -> Router<Arc<Services>> {
    let files = Router::new()
        .endpoint(download)
        .endpoint(download_named)
        .endpoint(legacy_download)
        .endpoint(legacy_download_named)
        .endpoint(thumbnail)
        .endpoint(legacy_thumbnail)
        .layer(axum::middleware::map_response(file_headers));
    Router::new()
        .endpoint(config)
        .endpoint(legacy_config)
        .endpoint(upload)
        .merge(files)
}

/// Headers every served file carries besides its type and disposition,
/// which ruma's response types cannot: nothing in it may run as a page,
/// be sniffed as another type, or be cached by anyone but the client.
async fn file_headers(mut response: Response) -> Response {
    if !response.status().is_success() {
        return response;
    }
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; \
             style-src 'unsafe-inline'; media-src 'self'; object-src 'self';",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "cross-origin",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "private, max-age=86400, immutable"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Types a browser may show in place; anything else is a download.
const INLINE_TYPES: &[&str] = &[
    "text/plain",
    "text/csv",
    "application/json",
    "image/jpeg",
    "image/gif",
    "image/png",
    "image/apng",
    "image/webp",
    "image/avif",
    "video/mp4",
    "video/webm",
    "video/ogg",
    "video/quicktime",
    "audio/mp4",
    "audio/webm",
    "audio/aac",
    "audio/mpeg",
    "audio/ogg",
    "audio/wav",
    "audio/x-wav",
    "audio/flac",
];

fn upload_size(s: &Services) -> UInt {
    UInt::new_saturating(s.config.max_request_size as u64)
}

async fn config(
    s: Arc<Services>,
    _: Ruma<v1::get_media_config::v1::Request>,
) -> Result<v1::get_media_config::v1::Response> {
    Ok(v1::get_media_config::v1::Response::new(upload_size(&s)))
}

async fn legacy_config(
    s: Arc<Services>,
    _: Ruma<legacy::get_media_config::v3::Request>,
) -> Result<legacy::get_media_config::v3::Response> {
    Ok(legacy::get_media_config::v3::Response::new(upload_size(&s)))
}

async fn upload(
    s: Arc<Services>,
    req: Ruma<legacy::create_content::v3::Request>,
) -> Result<legacy::create_content::v3::Response> {
    let body = req.body;
    let id = s
        .media
        .upload(
            &req.caller.user_id,
            body.content_type.as_deref(),
            body.filename.as_deref(),
            body.file.into(),
        )
        .await?;
    let uri = OwnedMxcUri::from(format!("mxc://{}/{id}", s.server_name));
    Ok(legacy::create_content::v3::Response::new(uri))
}

/// A file as every download and thumbnail answers it.
pub struct File {
    pub bytes: Vec<u8>,
    pub content_type: String,
    pub disposition: ContentDisposition,
}

/// A file with its type (one that fits a header) and its disposition:
/// inline only for types a browser shows without running anything.
pub fn file(content_type: String, name: Option<String>, bytes: Vec<u8>) -> File {
    let content_type = if HeaderValue::from_str(&content_type).is_ok() {
        content_type
    } else {
        "application/octet-stream".to_owned()
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let kind = if INLINE_TYPES.contains(&essence.as_str()) {
        ContentDispositionType::Inline
    } else {
        ContentDispositionType::Attachment
    };
    File {
        bytes,
        content_type,
        disposition: ContentDisposition::new(kind).with_filename(name),
    }
}

/// How a file is asked for.
#[derive(Clone, Copy)]
enum Access {
    /// At the authenticated paths, by a signed-in client: another server's
    /// file is fetched if there is no copy yet.
    Authenticated(IpAddr),
    /// At the unauthenticated `/_matrix/media/v3/` paths: only files stored
    /// before authenticated media was turned on, fetched from their server
    /// only while it is off and the client allows it (as Synapse freezes
    /// them).
    Legacy { ip: IpAddr, allow_remote: bool },
}

impl Access {
    /// Who a fetch from another server is made for, if one may be made.
    fn fetch(self, s: &Services) -> Option<IpAddr> {
        match self {
            Access::Authenticated(ip) => Some(ip),
            Access::Legacy { ip, allow_remote } => {
                (allow_remote && !s.config.enable_authenticated_media).then_some(ip)
            }
        }
    }

    /// Refuses a file marked for the authenticated paths asked for at the
    /// others, as if it did not exist.
    fn check(self, authenticated: bool) -> Result<()> {
        match self {
            Access::Legacy { .. } if authenticated => Err(Error::not_found("Media not found")),
            _ => Ok(()),
        }
    }

    /// [`Self::check`] for a file of this server: its record is read only
    /// at the unauthenticated paths.
    fn check_local(self, s: &Services, id: &str) -> Result<()> {
        match self {
            Access::Legacy { .. } => {
                self.check(s.media.record(id)?.is_some_and(|r| r.authenticated))
            }
            Access::Authenticated(_) => Ok(()),
        }
    }
}

/// The record of another server's file as `access` may see it.
async fn remote_record(
    s: &Arc<Services>,
    server: &ServerName,
    id: &str,
    access: Access,
) -> Result<RemoteMediaRecord> {
    let record = remote_copy(s, server, id, access.fetch(s)).await?;
    access.check(record.authenticated)?;
    Ok(record)
}

/// A file of this server, or the copy here of another server's (fetched
/// first if `access` allows).
async fn serve_file(
    s: &Arc<Services>,
    server: &ServerName,
    id: &str,
    name: Option<String>,
    access: Access,
) -> Result<File> {
    if server == s.server_name {
        access.check_local(s, id)?;
        let (record, bytes) = s.media.content(id).await?;
        return Ok(file(record.content_type, name.or(record.filename), bytes));
    }
    let record = remote_record(s, server, id, access).await?;
    let bytes = s.media.remote_content(&record).await?;
    Ok(file(record.content_type, name.or(record.filename), bytes))
}

/// Builds the response of each download endpoint from a `File`.
macro_rules! file_response {
    ($response:ty) => {
        impl From<File> for $response {
            fn from(f: File) -> Self {
                <$response>::new(f.bytes, f.content_type, f.disposition)
            }
        }
    };
}

file_response!(v1::get_content::v1::Response);
file_response!(v1::get_content_as_filename::v1::Response);
file_response!(v1::get_content_thumbnail::v1::Response);
file_response!(legacy::get_content::v3::Response);
file_response!(legacy::get_content_as_filename::v3::Response);
file_response!(legacy::get_content_thumbnail::v3::Response);

async fn download(
    s: Arc<Services>,
    req: Ruma<v1::get_content::v1::Request>,
) -> Result<v1::get_content::v1::Response> {
    let (r, ip) = (req.body, req.ip);
    let access = Access::Authenticated(ip);
    Ok(serve_file(&s, &r.server_name, &r.media_id, None, access)
        .await?
        .into())
}

async fn download_named(
    s: Arc<Services>,
    req: Ruma<v1::get_content_as_filename::v1::Request>,
) -> Result<v1::get_content_as_filename::v1::Response> {
    let (r, ip) = (req.body, req.ip);
    let name = Some(r.filename);
    let access = Access::Authenticated(ip);
    Ok(serve_file(&s, &r.server_name, &r.media_id, name, access)
        .await?
        .into())
}

/// The unauthenticated download of the older media API.
async fn legacy_download(
    s: Arc<Services>,
    req: Ruma<legacy::get_content::v3::Request>,
) -> Result<legacy::get_content::v3::Response> {
    let (r, ip) = (req.body, req.ip);
    let access = Access::Legacy {
        ip,
        allow_remote: r.allow_remote,
    };
    Ok(serve_file(&s, &r.server_name, &r.media_id, None, access)
        .await?
        .into())
}

async fn legacy_download_named(
    s: Arc<Services>,
    req: Ruma<legacy::get_content_as_filename::v3::Request>,
) -> Result<legacy::get_content_as_filename::v3::Response> {
    let (r, ip) = (req.body, req.ip);
    let name = Some(r.filename);
    let access = Access::Legacy {
        ip,
        allow_remote: r.allow_remote,
    };
    Ok(serve_file(&s, &r.server_name, &r.media_id, name, access)
        .await?
        .into())
}

/// One side of a thumbnail: a positive number of pixels.
fn dimension(value: UInt, name: &str) -> Result<u32> {
    match u32::try_from(value) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::invalid_param(format!(
            "{name} must be a positive integer"
        ))),
    }
}

/// The thumbnail asked for by the query both thumbnail endpoints share.
pub fn thumbnail_spec(
    method: Option<&ThumbnailMethod>,
    width: UInt,
    height: UInt,
) -> Result<ThumbnailSpec> {
    let method = match method {
        None | Some(ThumbnailMethod::Scale) => Method::Scale,
        Some(ThumbnailMethod::Crop) => Method::Crop,
        Some(other) => {
            return Err(Error::invalid_param(format!(
                "Unknown thumbnail method {}",
                other.as_str()
            )))
        }
    };
    Ok(ThumbnailSpec {
        width: dimension(width, "width")?,
        height: dimension(height, "height")?,
        method,
    })
}

/// A thumbnail of a file of this server or of the copy here of another
/// server's (made here from the copy).
async fn serve_thumbnail(
    s: &Arc<Services>,
    server: &ServerName,
    id: &str,
    wanted: ThumbnailSpec,
    access: Access,
) -> Result<File> {
    let made = if server == s.server_name {
        access.check_local(s, id)?;
        s.media.thumbnail(id, wanted).await?
    } else {
        let record = remote_record(s, server, id, access).await?;
        s.media.remote_thumbnail(&record, wanted).await?
    };
    Ok(file(made.content_type, None, made.bytes))
}

async fn thumbnail(
    s: Arc<Services>,
    req: Ruma<v1::get_content_thumbnail::v1::Request>,
) -> Result<v1::get_content_thumbnail::v1::Response> {
    let (r, ip) = (req.body, req.ip);
    let wanted = thumbnail_spec(r.method.as_ref(), r.width, r.height)?;
    let access = Access::Authenticated(ip);
    Ok(
        serve_thumbnail(&s, &r.server_name, &r.media_id, wanted, access)
            .await?
            .into(),
    )
}

async fn legacy_thumbnail(
    s: Arc<Services>,
    req: Ruma<legacy::get_content_thumbnail::v3::Request>,
) -> Result<legacy::get_content_thumbnail::v3::Response> {
    let (r, ip) = (req.body, req.ip);
    let wanted = thumbnail_spec(r.method.as_ref(), r.width, r.height)?;
    let access = Access::Legacy {
        ip,
        allow_remote: r.allow_remote,
    };
    Ok(
        serve_thumbnail(&s, &r.server_name, &r.media_id, wanted, access)
            .await?
            .into(),
    )
}
