//! The web desktop at `/`: a client of the public client-server API (and
//! of `/_matrixos/v1/…` with the person's own token) whose files live in
//! `web/desktop/` and are built into the binary, so serving it needs no
//! Node and no files beside the executable.
//!
//! Also the pages a person's browser gets instead of JSON when it follows
//! a link the server or the AI handed out: the sign-in page (which keeps
//! the access token in the desktop's own storage and opens the link with an
//! app capability, never with the token in an address) and a friendly
//! refusal when the link is someone else's.

use std::sync::Arc;

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::{header, HeaderMap, HeaderValue, StatusCode};

use crate::error::Error;
use crate::services::Services;

/// One file of the desktop, as built into the binary.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/desktop/", $name)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Everything under `/_matrixos/desktop/`.
const ASSETS: &[Asset] = &[
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("session.js", "text/javascript; charset=utf-8"),
    asset!("desktop.js", "text/javascript; charset=utf-8"),
    asset!("notifications.js", "text/javascript; charset=utf-8"),
    asset!("link.js", "text/javascript; charset=utf-8"),
    asset!("manifest.webmanifest", "application/manifest+json"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("icon-192.png", "image/png"),
    asset!("icon-512.png", "image/png"),
];

const INDEX: &str = include_str!("../../web/desktop/index.html");
const LINK: &str = include_str!("../../web/desktop/link.html");
const NOTICE: &str = include_str!("../../web/desktop/notice.html");
const SERVICE_WORKER: &str = include_str!("../../web/desktop/sw.js");

/// The desktop's pages load only their own scripts and styles, talk only
/// to this server, frame only this server's (sandboxed) app pages, and
/// cannot be framed themselves.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-src 'self'; manifest-src 'self'; \
     worker-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route("/", get(index))
        .route("/sw.js", get(service_worker))
        .route("/favicon.ico", get(favicon))
        .route("/_matrixos/desktop/{file}", get(asset))
}

/// Security headers every desktop response carries. `cache` is the
/// `Cache-Control` value: the shell may be revalidated, pages that depend
/// on the request are never stored.
fn respond(status: StatusCode, content_type: &str, cache: &'static str, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    crate::http::page_headers::fence(headers, CSP, cache);
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

const REVALIDATE: &str = "no-cache";
const NO_STORE: &str = "no-store";

async fn index() -> Response {
    respond(StatusCode::OK, HTML, REVALIDATE, INDEX.as_bytes().to_vec())
}

/// At the root, so that its scope is the whole desktop.
async fn service_worker() -> Response {
    respond(
        StatusCode::OK,
        JS,
        REVALIDATE,
        SERVICE_WORKER.as_bytes().to_vec(),
    )
}

async fn favicon() -> Response {
    let mut response = respond(StatusCode::MOVED_PERMANENTLY, HTML, REVALIDATE, Vec::new());
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_static("/_matrixos/desktop/icon.svg"),
    );
    response
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(a) => respond(StatusCode::OK, a.content_type, REVALIDATE, a.body.to_vec()),
        None => Error::not_found("No such file").into_response(),
    }
}

/// Whether the request is a person's browser following a link (it asks
/// for HTML and sends no `Authorization` header), rather than an API
/// client, which keeps getting Matrix errors as JSON.
pub fn wants_page(headers: &HeaderMap) -> bool {
    let accepts_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    accepts_html && !headers.contains_key(header::AUTHORIZATION)
}

/// The page a browser gets for a link it may not open as it is: the
/// sign-in page when it brought no (valid) token, which then opens the
/// link for its owner; a refusal when the token is someone else's; a
/// plain "not found" otherwise.
pub fn page_for(error: &Error) -> Response {
    match error.errcode {
        "M_MISSING_TOKEN" | "M_UNKNOWN_TOKEN" => respond(
            StatusCode::UNAUTHORIZED,
            HTML,
            NO_STORE,
            LINK.as_bytes().to_vec(),
        ),
        "M_FORBIDDEN" => notice(
            StatusCode::FORBIDDEN,
            "This link is not yours",
            "It opens an app that belongs to another person. Sign in as its owner to open it, \
             or ask them to share what you need in a room.",
        ),
        "M_NOT_FOUND" => notice(
            StatusCode::NOT_FOUND,
            "Nothing here",
            "There is no such app. It may have been renamed or deleted.",
        ),
        _ => notice(
            error.status,
            "This page cannot be shown",
            &format!("The server said: {}", error.message),
        ),
    }
}

/// A friendly page with a title and a sentence.
pub fn notice(status: StatusCode, title: &str, message: &str) -> Response {
    let body = NOTICE
        .replace("{{title}}", &escape(title))
        .replace("{{message}}", &escape(message));
    respond(status, HTML, NO_STORE, body.into_bytes())
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_get_pages_and_api_clients_json() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        );
        assert!(wants_page(&headers));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert!(!wants_page(&headers));
        let mut json = HeaderMap::new();
        json.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!wants_page(&json));
    }

    #[test]
    fn notices_escape_their_text() {
        assert_eq!(
            escape("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn every_page_names_only_assets_that_exist() {
        for page in [INDEX, LINK, NOTICE, SERVICE_WORKER] {
            for (i, _) in page.match_indices("/_matrixos/desktop/") {
                let rest = &page[i + "/_matrixos/desktop/".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                    .collect();
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "{name} is referenced but not served"
                );
            }
        }
    }
}
