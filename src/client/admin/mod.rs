//! Synapse's admin API, on Synapse's paths and in its shapes, so that
//! admins' tools (synadm, synapse-admin) work here: the server's version,
//! users (list, query, deactivate, reset a password, grant or revoke
//! admin) and rooms (list, details, members, block, delete). Every
//! endpoint but the version needs a server admin's access token: none is
//! 401 `M_MISSING_TOKEN`, a non-admin's 403 `M_FORBIDDEN`.

mod params;
mod room_delete;
mod room_deletions;
mod rooms;
mod users;

pub use room_delete::resume_interrupted as resume_interrupted_room_deletions;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use http::request::Parts;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::http::extract::Auth;
use crate::http::Caller;
use crate::services::Services;

const V1: &str = "/_synapse/admin/v1";
const V2: &str = "/_synapse/admin/v2";

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    let p = |version: &str, path: &str| format!("{version}{path}");
    Router::new()
        .route(&p(V1, "/server_version"), get(server_version))
        .route(&p(V2, "/users"), get(users::list))
        .route(&p(V2, "/users/{user_id}"), get(users::query))
        .route(&p(V1, "/deactivate/{user_id}"), post(users::deactivate))
        .route(
            &p(V1, "/reset_password/{user_id}"),
            post(users::reset_password),
        )
        .route(
            &p(V1, "/users/{user_id}/admin"),
            get(users::get_admin).put(users::set_admin),
        )
        .route(&p(V1, "/rooms"), get(rooms::list))
        .route(
            &p(V1, "/rooms/{room_id}"),
            get(rooms::details).delete(room_delete::delete_now),
        )
        .route(
            &p(V1, "/rooms/{room_id}/delete"),
            post(room_delete::delete_now),
        )
        .route(&p(V1, "/rooms/{room_id}/members"), get(rooms::members))
        .route(
            &p(V1, "/rooms/{room_id}/block"),
            get(rooms::get_block).put(rooms::set_block),
        )
        .route(
            &p(V2, "/rooms/{room_id}"),
            delete(room_delete::delete_in_background),
        )
        .route(
            &p(V2, "/rooms/{room_id}/delete_status"),
            get(room_delete::status_of_room),
        )
        .route(
            &p(V2, "/rooms/delete_status/{delete_id}"),
            get(room_delete::status_of_deletion),
        )
}

/// The caller, who must be a server admin (as Synapse checks it: a token
/// first, then the admin flag).
pub(super) struct Admin(pub Caller);

impl FromRequestParts<Arc<Services>> for Admin {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        services: &Arc<Services>,
    ) -> std::result::Result<Self, Error> {
        let Auth(caller) = Auth::from_request_parts(parts, services).await?;
        services.accounts.require_admin(&caller.user_id)?;
        Ok(Admin(caller))
    }
}

/// `GET /_synapse/admin/v1/server_version`: open to anyone, as in Synapse
/// (the federation API's `/version` tells the same).
async fn server_version() -> Result<Json<Value>> {
    Ok(Json(json!({ "server_version": env!("CARGO_PKG_VERSION") })))
}
