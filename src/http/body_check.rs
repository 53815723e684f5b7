//! Where ruma reads a request body otherwise than Synapse does: a check
//! that runs on the raw body before the typed extractor parses it.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::{from_fn, Next};
use axum::response::IntoResponse;
use axum::Router;

use super::body_guard::read_body_of;
use crate::error::Result;
use crate::services::Services;

/// What a check makes of a JSON body before ruma parses it: nothing to
/// say, the body ruma should parse instead, or Synapse's refusal of it.
pub type BodyCheck = fn(&[u8]) -> Result<Option<Vec<u8>>>;

/// Runs `check` on the bodies of `router`'s routes, where ruma answers a
/// body otherwise than Synapse does. A refusal replaces only ruma's own
/// refusal of the request (400), so a missing token or a malformed path
/// is still answered first, as before.
pub fn before_parsing(router: Router<Arc<Services>>, check: BodyCheck) -> Router<Arc<Services>> {
    router.route_layer(from_fn(move |request: Request, next: Next| async move {
        let (parts, body) = request.into_parts();
        let bytes = match read_body_of(&parts, body).await {
            Ok(bytes) => bytes,
            Err(e) => return e.into_response(),
        };
        let (bytes, refusal) = match check(&bytes) {
            Ok(new) => (new.map_or(bytes, Bytes::from), None),
            Err(e) => (bytes, Some(e)),
        };
        let response = next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
        match refusal {
            Some(e) if response.status() == http::StatusCode::BAD_REQUEST => e.into_response(),
            _ => response,
        }
    }))
}
