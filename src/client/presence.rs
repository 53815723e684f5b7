//! `/presence/{userId}/status`.

use axum::routing;
use axum::Router;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use ruma::UserId;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::http::extract::{opt_str, req_str, Auth, JsonBody};
use crate::services::presence::Update;
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new().route(&super::v3("/presence/{user_id}/status"), routing::get(get).put(set))
}

type S = State<Arc<Services>>;

pub async fn set(
    State(s): S,
    Auth(caller): Auth,
    Path(user): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let user = UserId::parse(&user).map_err(|_| Error::invalid_param("Invalid user id"))?;
    if user != caller.user_id {
        return Err(Error::forbidden("Cannot set another user's presence"));
    }
    let presence = req_str(&body, "presence")?;
    if !matches!(presence, "online" | "offline" | "unavailable") {
        return Err(Error::invalid_param(
            "presence must be online, offline or unavailable",
        ));
    }
    let status_msg = opt_str(&body, "status_msg")?.map(str::to_owned);
    s.presence
        .update(&user, Update::Explicit(presence, status_msg))
        .await?;
    Ok(Json(json!({})))
}

/// Presence is visible to the user and to those who share a room with them
/// (as in Synapse, which answers 403 to anyone else): it tells when someone
/// is online.
pub async fn get(State(s): S, Auth(caller): Auth, Path(user): Path<String>) -> Result<Json<Value>> {
    let user = UserId::parse(&user).map_err(|_| Error::invalid_param("Invalid user id"))?;
    if s.accounts.is_local(&user) && !s.accounts.exists(&user)? {
        return Err(Error::not_found("Unknown user"));
    }
    if user != caller.user_id && !s.rooms.share_a_room(&caller.user_id, &user)? {
        return Err(Error::forbidden("You may not see this user's presence"));
    }
    Ok(Json(s.presence.get(&user).content()))
}
