//! `/receipt`, `/read_markers`, `/typing`.

use axum::routing::{post, put};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::Json;
use matrixos_storage::Batch;
use ruma::{EventId, UserId};
use serde_json::{json, Value};

use super::membership::parse_room;
use crate::error::{Error, Result};
use crate::http::extract::{opt_bool, opt_str, Auth, JsonBody};
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route(
            &super::v3("/rooms/{room_id}/receipt/{receipt_type}/{event_id}"),
            post(receipt),
        )
        .route(
            &super::v3("/rooms/{room_id}/read_markers"),
            post(read_markers),
        )
        .route(&super::v3("/rooms/{room_id}/typing/{user_id}"), put(typing))
}

type S = State<Arc<Services>>;

fn require_joined(s: &Services, user: &UserId, room: &ruma::RoomId) -> Result<()> {
    if !s.rooms.is_joined(user, room)? {
        return Err(Error::forbidden("You are not in this room"));
    }
    Ok(())
}

async fn mark(
    s: &Services,
    user: &UserId,
    room: &ruma::RoomId,
    kind: &str,
    event: &str,
    thread: Option<&str>,
) -> Result<()> {
    let event = EventId::parse(event).map_err(|_| Error::invalid_param("Invalid event id"))?;
    let short_room = s.rooms.short_room(room)?;
    let short_event = s.rooms.short_event(&event)?;
    let meta = match short_event {
        Some(short) => s.rooms.timeline_meta(short)?,
        None => None,
    };
    let Some(meta) = meta.filter(|m| Some(m.room) == short_room) else {
        return Err(Error::not_found("Unknown event in this room"));
    };
    match kind {
        "m.fully_read" => {
            s.account_data
                .set(
                    user,
                    Some(room),
                    "m.fully_read",
                    &json!({ "event_id": event }),
                )
                .await
        }
        "m.read" | "m.read.private" => {
            let mut clear = Batch::new();
            s.push
                .clear_read(&mut clear, user, meta.room, meta.count, thread)?;
            s.receipts
                .set(room, user, kind, &event, thread, clear)
                .await
        }
        _ => Err(Error::invalid_param("Unknown receipt type")),
    }
}

pub async fn receipt(
    State(s): S,
    Auth(caller): Auth,
    Path((room, kind, event)): Path<(String, String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    require_joined(&s, &caller.user_id, &room)?;
    mark(
        &s,
        &caller.user_id,
        &room,
        &kind,
        &event,
        opt_str(&body, "thread_id")?,
    )
    .await?;
    Ok(Json(json!({})))
}

pub async fn read_markers(
    State(s): S,
    Auth(caller): Auth,
    Path(room): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    require_joined(&s, &caller.user_id, &room)?;
    for kind in ["m.fully_read", "m.read", "m.read.private"] {
        if let Some(event) = opt_str(&body, kind)? {
            mark(&s, &caller.user_id, &room, kind, event, None).await?;
        }
    }
    Ok(Json(json!({})))
}

pub async fn typing(
    State(s): S,
    Auth(caller): Auth,
    Path((room, user)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    let user = UserId::parse(&user).map_err(|_| Error::invalid_param("Invalid user id"))?;
    if user != caller.user_id {
        return Err(Error::forbidden("Cannot set another user's typing state"));
    }
    require_joined(&s, &caller.user_id, &room)?;
    let typing =
        opt_bool(&body, "typing")?.ok_or_else(|| Error::missing_param("Missing 'typing'"))?;
    let timeout = body
        .get("timeout")
        .and_then(Value::as_u64)
        .unwrap_or(30_000);
    s.receipts
        .set_typing(&room, &user, typing, Duration::from_millis(timeout))
        .await?;
    Ok(Json(json!({})))
}
