//! Errors that do not come from a handler's [`Error`]: axum's extractor
//! rejections (a path segment that is not UTF-8, a query string or body
//! that does not deserialise, a body over the limit), refusals of other
//! layers, and panics. axum answers the first kinds in `text/plain` and a
//! panic drops the connection; clients expect the Matrix error JSON for
//! every failure, so this layer, around every route, rewrites them once
//! here rather than in each handler.

use std::any::Any;
use std::panic::AssertUnwindSafe;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use http::{header, StatusCode};

use crate::error::Error;

/// The most of a stray error's body kept as the Matrix error message.
const MAX_MESSAGE_BYTES: usize = 1024;

/// The middleware: runs the request, catching a panic, and gives any error
/// answer that is not JSON a Matrix error body with the same status.
pub async fn matrix_errors(request: Request, next: Next) -> Response {
    let response = match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            return Error::internal(format!("handler panicked: {}", panic_message(&*panic)))
                .into_response()
        }
    };
    if is_stray(&response) {
        rewrite(response).await
    } else {
        response
    }
}

/// An error status whose body is not JSON (handlers' errors always are).
fn is_stray(response: &Response) -> bool {
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // A page made for a person's browser (`crate::desktop`) is no stray.
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    (status.is_client_error() || status.is_server_error()) && !json && !html
}

async fn rewrite(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_MESSAGE_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("Request failed")
            .to_owned()
    } else {
        text
    };
    let errcode = errcode_for(parts.status, &message);
    if parts.status.is_server_error() {
        tracing::error!(status = parts.status.as_u16(), message = %message, "stray server error");
    }
    let mut rewritten = Error::new(parts.status, errcode, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().append(name, value.clone());
        }
    }
    rewritten
}

/// The errcode the spec gives a status. A 400 is a malformed parameter
/// (path segment, query string), unless the body failed to parse as JSON.
fn errcode_for(status: StatusCode, message: &str) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST if message.contains("JSON") => "M_NOT_JSON",
        StatusCode::BAD_REQUEST => "M_INVALID_PARAM",
        StatusCode::UNAUTHORIZED => "M_MISSING_TOKEN",
        StatusCode::FORBIDDEN => "M_FORBIDDEN",
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => "M_UNRECOGNIZED",
        StatusCode::PAYLOAD_TOO_LARGE => "M_TOO_LARGE",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "M_NOT_JSON",
        StatusCode::UNPROCESSABLE_ENTITY => "M_BAD_JSON",
        StatusCode::TOO_MANY_REQUESTS => "M_LIMIT_EXCEEDED",
        _ => "M_UNKNOWN",
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "unknown panic"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    async fn answer(router: Router, uri: &str) -> (StatusCode, serde_json::Value) {
        let router = router.layer(axum::middleware::from_fn(matrix_errors));
        let request = Request::builder()
            .uri(uri)
            .body(axum::body::Body::empty())
            .expect("request");
        let response = router.oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn rejections_and_panics_become_matrix_errors() {
        async fn by_number(axum::extract::Path(_): axum::extract::Path<u64>) -> &'static str {
            "ok"
        }
        async fn panics() -> &'static str {
            panic!("boom")
        }
        let router = || {
            Router::new()
                .route("/n/{n}", get(by_number))
                .route("/panic", get(panics))
        };
        for (uri, status, errcode) in [
            ("/n/%FF", 400, "M_INVALID_PARAM"),
            ("/n/x", 400, "M_INVALID_PARAM"),
            ("/panic", 500, "M_UNKNOWN"),
        ] {
            let (got, body) = answer(router(), uri).await;
            assert_eq!(
                (got.as_u16(), body["errcode"].as_str()),
                (status, Some(errcode)),
                "{uri}: {body}"
            );
        }
        let (got, body) = answer(router(), "/n/7").await;
        assert_eq!(got, StatusCode::OK, "{body}");
    }

    #[test]
    fn statuses_map_to_the_spec_errcodes() {
        for (status, message, errcode) in [
            (400, "Invalid URL", "M_INVALID_PARAM"),
            (
                400,
                "Failed to parse the request body as JSON",
                "M_NOT_JSON",
            ),
            (413, "length limit exceeded", "M_TOO_LARGE"),
            (
                415,
                "Expected request with `Content-Type: application/json`",
                "M_NOT_JSON",
            ),
            (422, "Failed to deserialize the JSON body", "M_BAD_JSON"),
            (408, "", "M_UNKNOWN"),
        ] {
            let status = StatusCode::from_u16(status).expect("status");
            assert_eq!(errcode_for(status, message), errcode, "{status} {message}");
        }
    }
}
