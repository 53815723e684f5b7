//! `/versions`, `/.well-known/matrix/*`, `/capabilities`.

use axum::routing::get;
use axum::Router;
use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::http::extract::Auth;
use crate::rooms::create::SUPPORTED_VERSIONS;
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route("/_matrix/client/versions", get(versions))
        .route("/.well-known/matrix/client", get(well_known_client))
        .route("/.well-known/matrix/server", get(well_known_server))
        .route(&super::v3("/capabilities"), get(capabilities))
}

type S = State<Arc<Services>>;

pub async fn versions() -> Json<Value> {
    Json(json!({
        "versions": ["r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6"],
        "unstable_features": {}
    }))
}

pub async fn well_known_client(State(s): S) -> Json<Value> {
    Json(json!({ "m.homeserver": { "base_url": s.config.base_url() } }))
}

pub async fn well_known_server(State(s): S) -> Json<Value> {
    let port = s.config.federation_listen.map(|a| a.port()).unwrap_or(8448);
    Json(json!({ "m.server": format!("{}:{}", s.server_name, port) }))
}

pub async fn capabilities(State(s): S, Auth(_): Auth) -> Json<Value> {
    let available: serde_json::Map<String, Value> = SUPPORTED_VERSIONS
        .iter()
        .map(|v| ((*v).to_owned(), json!("stable")))
        .collect();
    Json(json!({
        "capabilities": {
            "m.change_password": { "enabled": true },
            "m.room_versions": { "default": s.config.default_room_version, "available": available },
            "m.set_displayname": { "enabled": true },
            "m.set_avatar_url": { "enabled": true },
            "m.3pid_changes": { "enabled": false },
            "m.get_login_token": { "enabled": false }
        }
    }))
}
