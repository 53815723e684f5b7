//! The plain-HTTP port the CA checks (`[acme] http_listen`, port 80): the
//! HTTP-01 answers at `/.well-known/acme-challenge/{token}`, and for every
//! other request a permanent redirect to the same path over HTTPS on the
//! server's own name (never on a host the request names).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::Challenges;
use crate::config::Config;

#[derive(Clone)]
struct Port80 {
    challenges: Arc<Challenges>,
    /// `https://<name>[:<port>]`, without a trailing slash.
    https_origin: Arc<str>,
}

/// The port-80 router.
pub fn router(config: &Config, challenges: Arc<Challenges>) -> Router {
    let host = super::domains(config)
        .into_iter()
        .next()
        .unwrap_or_default();
    let port = config
        .tls_listen
        .map(|address| address.port())
        .filter(|port| *port != 443);
    let https_origin = match port {
        Some(port) => format!("https://{host}:{port}"),
        None => format!("https://{host}"),
    };
    Router::new()
        .route("/.well-known/acme-challenge/{token}", get(answer))
        .fallback(to_https)
        .with_state(Port80 {
            challenges,
            https_origin: https_origin.into(),
        })
}

async fn answer(State(port80): State<Port80>, Path(token): Path<String>) -> Response {
    match port80.challenges.answer(&token) {
        Some(answer) => ([(header::CONTENT_TYPE, "text/plain")], answer).into_response(),
        None => (StatusCode::NOT_FOUND, "no such challenge").into_response(),
    }
}

async fn to_https(State(port80): State<Port80>, uri: Uri) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let location = format!("{}{path}", port80.https_origin);
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, location)],
    )
        .into_response()
}
