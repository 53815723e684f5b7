//! `GET /v1/media/preview_url` (and the older `/_matrix/media/v3/` path):
//! the preview of a link, when the operator turned previews on; otherwise
//! the endpoint is not there (404 `M_UNRECOGNIZED`), as on Synapse.

#![allow(deprecated)] // The older media API is deprecated, and still served.

use std::sync::Arc;

use axum::Router;
use ruma::api::client::authenticated_media::get_media_preview as v1;
use ruma::api::client::media::get_media_preview as legacy;
use ruma::UserId;
use serde_json::value::to_raw_value;

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;

pub fn routes() -> Router<Arc<Services>> {
    Router::new().endpoint(preview).endpoint(legacy_preview)
}

async fn preview_json(
    s: &Services,
    user: &UserId,
    url: &str,
) -> Result<Box<serde_json::value::RawValue>> {
    let Some(previews) = &s.url_previews else {
        return Err(Error::unrecognized(
            "URL previews are not enabled on this server",
        ));
    };
    let preview = previews.preview(&s.media, user, url).await?;
    Ok(to_raw_value(&*preview)?)
}

async fn preview(s: Arc<Services>, req: Ruma<v1::v1::Request>) -> Result<v1::v1::Response> {
    let data = preview_json(&s, &req.caller.user_id, &req.body.url).await?;
    Ok(v1::v1::Response::from_raw_value(data))
}

async fn legacy_preview(
    s: Arc<Services>,
    req: Ruma<legacy::v3::Request>,
) -> Result<legacy::v3::Response> {
    let data = preview_json(&s, &req.caller.user_id, &req.body.url).await?;
    Ok(legacy::v3::Response::from_raw_value(data))
}
