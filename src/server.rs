//! The HTTP server: routes, fallbacks, limits and the listener.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::Router;
use tower_http::cors::CorsLayer;
use tower_http::trace::TraceLayer;

use crate::error::Error;
use crate::services::Services;

async fn unknown_endpoint() -> impl IntoResponse {
    Error::unrecognized("Unrecognized request")
}

async fn wrong_method() -> impl IntoResponse {
    Error::method_not_allowed()
}

pub fn app(services: Arc<Services>) -> Router {
    crate::client::routes()
        .fallback(unknown_endpoint)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(services.config.max_request_size))
        .layer(CorsLayer::permissive())
        .layer(TraceLayer::new_for_http())
        .with_state(services)
}

/// Serves the client API until the process is stopped.
pub async fn serve(services: Arc<Services>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(services.config.listen).await?;
    tracing::info!(address = %listener.local_addr()?, server_name = %services.server_name, "client API listening");
    serve_on(listener, services).await
}

/// Serves on an already bound listener (tests bind port 0 themselves).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    services: Arc<Services>,
) -> std::io::Result<()> {
    let app = app(services).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).await
}
