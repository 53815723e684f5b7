//! The content repository: upload, download, thumbnails and the upload
//! limit, under both the authenticated `/_matrix/client/v1/media/` paths
//! and the older `/_matrix/media/v3/` ones that clients still use.

use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::http::body_guard::RawBody;
use crate::http::extract::{query_param, Auth};
use crate::services::thumbnail::{Method, ThumbnailSpec};
use crate::services::Services;

/// The content repository, at its authenticated paths and the older ones.
pub fn routes() -> Router<Arc<Services>> {
    const V1: &str = "/_matrix/client/v1/media";
    const LEGACY: &str = "/_matrix/media/v3";
    Router::new()
        .route(&format!("{V1}/config"), get(config))
        .route(&format!("{LEGACY}/config"), get(config))
        .route(&format!("{LEGACY}/upload"), post(upload))
        .route(
            &format!("{V1}/download/{{server_name}}/{{media_id}}"),
            get(download),
        )
        .route(
            &format!("{V1}/download/{{server_name}}/{{media_id}}/{{filename}}"),
            get(download_named),
        )
        .route(
            &format!("{LEGACY}/download/{{server_name}}/{{media_id}}"),
            get(legacy_download),
        )
        .route(
            &format!("{LEGACY}/download/{{server_name}}/{{media_id}}/{{filename}}"),
            get(legacy_download_named),
        )
        .route(
            &format!("{V1}/thumbnail/{{server_name}}/{{media_id}}"),
            get(thumbnail),
        )
        .route(
            &format!("{LEGACY}/thumbnail/{{server_name}}/{{media_id}}"),
            get(legacy_thumbnail),
        )
}

type QueryList = Query<Vec<(String, String)>>;

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

pub async fn config(State(s): State<Arc<Services>>, _auth: Auth) -> Json<Value> {
    Json(json!({ "m.upload.size": s.config.max_request_size }))
}

pub async fn upload(
    State(s): State<Arc<Services>>,
    Auth(caller): Auth,
    Query(query): QueryList,
    headers: HeaderMap,
    RawBody(bytes): RawBody,
) -> Result<Json<Value>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let filename = query_param(&query, "filename");
    let id = s
        .media
        .upload(&caller.user_id, content_type, filename, bytes)
        .await?;
    Ok(Json(
        json!({ "content_uri": format!("mxc://{}/{id}", s.server_name) }),
    ))
}

/// The media id, if `server` is this one: remote media needs federation.
fn local_id<'a>(s: &Services, server: &str, id: &'a str) -> Result<&'a str> {
    if server != s.server_name.as_str() {
        return Err(Error::not_found("Remote media is not available"));
    }
    Ok(id)
}

pub async fn download(
    State(s): State<Arc<Services>>,
    _auth: Auth,
    Path((server, id)): Path<(String, String)>,
) -> Result<Response> {
    serve_file(&s, &server, &id, None).await
}

pub async fn download_named(
    State(s): State<Arc<Services>>,
    _auth: Auth,
    Path((server, id, name)): Path<(String, String, String)>,
) -> Result<Response> {
    serve_file(&s, &server, &id, Some(&name)).await
}

/// The unauthenticated download of the older media API.
pub async fn legacy_download(
    State(s): State<Arc<Services>>,
    Path((server, id)): Path<(String, String)>,
) -> Result<Response> {
    serve_file(&s, &server, &id, None).await
}

pub async fn legacy_download_named(
    State(s): State<Arc<Services>>,
    Path((server, id, name)): Path<(String, String, String)>,
) -> Result<Response> {
    serve_file(&s, &server, &id, Some(&name)).await
}

async fn serve_file(s: &Services, server: &str, id: &str, name: Option<&str>) -> Result<Response> {
    let (record, bytes) = s.media.content(local_id(s, server, id)?).await?;
    let name = name.or(record.filename.as_deref());
    Ok(media_response(&record.content_type, name, bytes))
}

pub async fn thumbnail(
    State(s): State<Arc<Services>>,
    _auth: Auth,
    Path((server, id)): Path<(String, String)>,
    Query(query): QueryList,
) -> Result<Response> {
    serve_thumbnail(&s, &server, &id, &query).await
}

pub async fn legacy_thumbnail(
    State(s): State<Arc<Services>>,
    Path((server, id)): Path<(String, String)>,
    Query(query): QueryList,
) -> Result<Response> {
    serve_thumbnail(&s, &server, &id, &query).await
}

fn dimension(query: &[(String, String)], name: &str) -> Result<u32> {
    let raw =
        query_param(query, name).ok_or_else(|| Error::missing_param(format!("Missing {name}")))?;
    match raw.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::invalid_param(format!(
            "{name} must be a positive integer"
        ))),
    }
}

async fn serve_thumbnail(
    s: &Services,
    server: &str,
    id: &str,
    query: &[(String, String)],
) -> Result<Response> {
    let method = match query_param(query, "method").unwrap_or("scale") {
        "crop" => Method::Crop,
        "scale" => Method::Scale,
        other => {
            return Err(Error::invalid_param(format!(
                "Unknown thumbnail method {other}"
            )))
        }
    };
    let wanted = ThumbnailSpec {
        width: dimension(query, "width")?,
        height: dimension(query, "height")?,
        method,
    };
    let made = s.media.thumbnail(local_id(s, server, id)?, wanted).await?;
    Ok(media_response(&made.content_type, None, made.bytes))
}

/// `Content-Disposition` for a file: inline only for types a browser
/// shows without running anything, with the name encoded per RFC 6266.
fn disposition(content_type: &str, name: Option<&str>) -> String {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let kind = if INLINE_TYPES.contains(&essence.as_str()) {
        "inline"
    } else {
        "attachment"
    };
    match name {
        None => kind.to_owned(),
        Some(name)
            if name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._- ".contains(&b)) =>
        {
            format!("{kind}; filename=\"{name}\"")
        }
        Some(name) => format!(
            "{kind}; filename*=utf-8''{}",
            url::form_urlencoded::byte_serialize(name.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        ),
    }
}

fn media_response(content_type: &str, name: Option<&str>, bytes: Vec<u8>) -> Response {
    let header_value = |v: &str| {
        HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
    };
    let content_type = HeaderValue::from_str(content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let disposition = header_value(&disposition(
        content_type.to_str().unwrap_or("application/octet-stream"),
        name,
    ));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; \
                     style-src 'unsafe-inline'; media-src 'self'; object-src 'self';",
                ),
            ),
            (
                header::HeaderName::from_static("cross-origin-resource-policy"),
                HeaderValue::from_static("cross-origin"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=86400, immutable"),
            ),
        ],
        Body::from(bytes),
    )
        .into_response()
}
