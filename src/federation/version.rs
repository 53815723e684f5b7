//! `GET /_matrix/federation/v1/version`: which server software this is.

use std::sync::Arc;

use axum::Router;
use ruma::api::federation::discovery::get_server_version::v1 as version;

use crate::error::Result;
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;

pub fn routes() -> Router<Arc<Services>> {
    Router::new().reading(server_version)
}

fn server_version(_: Arc<Services>, _: Ruma<version::Request>) -> Result<version::Response> {
    let mut server = version::Server::new();
    server.name = Some("Matrix OS".to_owned());
    server.version = Some(env!("CARGO_PKG_VERSION").to_owned());
    let mut response = version::Response::new();
    response.server = Some(server);
    Ok(response)
}
