//! Asynchronous uploads (v1.7): `POST /_matrix/media/v1/create` reserves an
//! `mxc://` URI, `PUT /_matrix/media/v3/upload/{serverName}/{mediaId}`
//! fills it; downloads of a reserved id wait for its bytes.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, Request, State};
use axum::routing::put;
use axum::{Json, Router};
use ruma::api::client::media::create_mxc_uri;
use ruma::{MilliSecondsSinceUnixEpoch, OwnedMxcUri, UInt};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::http::body_guard::read_body;
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::http::extract::Auth;
use crate::services::Services;

pub fn routes() -> Router<Arc<Services>> {
    // ruma cannot build the upload's (empty) answer: it is served by hand.
    Router::new()
        .endpoint(create)
        .route(
            "/_matrix/media/v3/upload/{server_name}/{media_id}",
            put(upload_to),
        )
        .route(
            "/_matrix/media/unstable/fi.mau.msc2246/upload/{server_name}/{media_id}",
            put(upload_to),
        )
}

async fn create(
    s: Arc<Services>,
    req: Ruma<create_mxc_uri::v1::Request>,
) -> Result<create_mxc_uri::v1::Response> {
    let (id, expires) = s.media.create_pending(&req.caller.user_id).await?;
    let uri = OwnedMxcUri::from(format!("mxc://{}/{id}", s.server_name));
    let mut response = create_mxc_uri::v1::Response::new(uri);
    response.unused_expires_at = Some(MilliSecondsSinceUnixEpoch(UInt::new_saturating(expires)));
    Ok(response)
}

/// Fills a reservation. The id names a file only once the media service
/// has found its record (ids of 24 letters and digits, made here).
async fn upload_to(
    State(s): State<Arc<Services>>,
    Auth(caller): Auth,
    Path((server_name, media_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Json<Value>> {
    let (parts, body) = request.into_parts();
    if server_name != s.server_name.as_str() {
        return Err(Error::not_found("Not a media id of this server"));
    }
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let filename = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "filename")
        .map(|(_, v)| v.into_owned());
    let bytes = read_body(Request::from_parts(parts, body)).await?;
    s.media
        .fill_pending(
            &caller.user_id,
            &media_id,
            content_type.as_deref(),
            filename.as_deref(),
            bytes,
        )
        .await?;
    Ok(Json(json!({})))
}
