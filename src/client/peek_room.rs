//! Peeking via `/sync` (MSC2753, its unstable paths): `peek_room` starts
//! (or renews) a device's peek into a world-readable room this server
//! holds, and `/rooms/{roomId}/unpeek` ends it. The room then comes and
//! goes in the device's `/sync` under `rooms.peek`. Rooms held only by
//! other servers cannot be peeked (that needs federation peeking,
//! MSC2444): they are not found. Hand-written: ruma has no types for it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use http::StatusCode;
use ruma::{OwnedRoomId, OwnedServerName, RoomOrAliasId};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::http::extract::{req_str, Auth, JsonBody};
use crate::services::Services;

const PREFIX: &str = "/_matrix/client/unstable/org.matrix.msc2753";

pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route(&format!("{PREFIX}/peek_room"), post(peek_room))
        .route(&format!("{PREFIX}/rooms/{{room_id}}/unpeek"), post(unpeek))
}

fn bad_state(message: &str) -> Error {
    Error::new(StatusCode::BAD_REQUEST, "M_BAD_STATE", message)
}

/// The `servers` field: optional, a list of server names.
fn servers(body: &Value) -> Result<Vec<OwnedServerName>> {
    match body.get("servers") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(names)) => names
            .iter()
            .map(|n| {
                n.as_str()
                    .and_then(|n| OwnedServerName::try_from(n).ok())
                    .ok_or_else(|| Error::invalid_param("'servers' must list server names"))
            })
            .collect(),
        Some(_) => Err(Error::bad_json("'servers' must be a list")),
    }
}

async fn peek_room(
    State(s): State<Arc<Services>>,
    Auth(caller): Auth,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    s.send_limiter.check(&caller.user_id)?;
    let asked = req_str(&body, "room")?;
    let asked = <&RoomOrAliasId>::try_from(asked)
        .map_err(|_| Error::invalid_param("'room' must be a room id or a room alias"))?;
    let via = servers(&body)?;
    let (room, _) = super::membership::resolve(&s, asked, &via).await?;
    let joined = s
        .rooms
        .membership(&caller.user_id, &room)?
        .is_some_and(|m| m.membership == "join");
    if joined {
        return Err(bad_state(
            "You are in this room: it is in your sync already",
        ));
    }
    if s.rooms.short_room(&room)?.is_none() {
        return Err(Error::not_found("This server does not hold that room"));
    }
    if !s.rooms.is_world_readable(&room)? {
        return Err(Error::forbidden("The room's history is not world-readable"));
    }
    let expires = s
        .peeks
        .start(&caller.user_id, &caller.device_id, &room)
        .await?;
    tracing::info!(user = %caller.user_id, device = %caller.device_id, %room, "peeking");
    Ok(Json(json!({ "room_id": room, "peek_expiry_ts": expires })))
}

async fn unpeek(
    State(s): State<Arc<Services>>,
    Auth(caller): Auth,
    Path(room): Path<String>,
    JsonBody(_): JsonBody,
) -> Result<Json<Value>> {
    let room = OwnedRoomId::try_from(room).map_err(|_| Error::invalid_param("Invalid room id"))?;
    let ended = s
        .peeks
        .end(
            &caller.user_id,
            &caller.device_id,
            std::slice::from_ref(&room),
        )
        .await?;
    if ended == 0 {
        return Err(bad_state("You are not peeking into this room"));
    }
    Ok(Json(json!({})))
}
