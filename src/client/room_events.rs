//! Sending and reading room events: send, state, event, redact.

use axum::routing::{get, put};
use axum::Router;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use ruma::events::TimelineEventType;
use ruma::EventId;
use serde_json::{json, Value};

use super::membership::parse_room;
use crate::error::{Error, Result};
use crate::http::extract::{Auth, JsonBody};
use crate::rooms::send::{EventDraft, Txn};
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route(
            &super::v3("/rooms/{room_id}/send/{event_type}/{txn_id}"),
            put(send),
        )
        .route(&super::v3("/rooms/{room_id}/state"), get(get_state))
        .route(
            &super::v3("/rooms/{room_id}/state/{event_type}"),
            get(get_state_event_empty_key).put(put_state_empty_key),
        )
        .route(
            &super::v3("/rooms/{room_id}/state/{event_type}/"),
            get(get_state_event_empty_key).put(put_state_empty_key),
        )
        .route(
            &super::v3("/rooms/{room_id}/state/{event_type}/{state_key}"),
            get(get_state_event).put(put_state),
        )
        .route(
            &super::v3("/rooms/{room_id}/event/{event_id}"),
            get(get_event),
        )
        .route(
            &super::v3("/rooms/{room_id}/redact/{event_id}/{txn_id}"),
            put(redact),
        )
}

type S = State<Arc<Services>>;

pub async fn send(
    State(s): S,
    Auth(caller): Auth,
    Path((room, kind, txn)): Path<(String, String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    s.send_limiter.check(&caller.user_id)?;
    s.presence.note_active(&caller.user_id);
    let draft = EventDraft::message(TimelineEventType::from(kind.as_str()), body);
    let txn = Txn {
        device: &caller.device_id,
        id: &txn,
        endpoint: "send",
    };
    let event_id = s
        .rooms
        .send(&caller.user_id, &room, draft, Some(txn))
        .await?;
    Ok(Json(json!({ "event_id": event_id })))
}

pub async fn put_state(
    State(s): S,
    Auth(caller): Auth,
    Path((room, kind, key)): Path<(String, String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    let draft = EventDraft::state(kind.as_str().into(), key, body);
    let event_id = s.rooms.send(&caller.user_id, &room, draft, None).await?;
    Ok(Json(json!({ "event_id": event_id })))
}

pub async fn put_state_empty_key(
    state: S,
    auth: Auth,
    Path((room, kind)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Json<Value>> {
    put_state(state, auth, Path((room, kind, String::new())), body).await
}

pub async fn get_state_event(
    State(s): S,
    Auth(caller): Auth,
    Path((room, kind, key)): Path<(String, String, String)>,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    let hash = s.rooms.reader(&caller.user_id, &room)?.readable_state()?;
    let event = s
        .rooms
        .state_event(hash, &kind, &key)?
        .ok_or_else(|| Error::not_found("Event not found"))?;
    Ok(Json(event.content_value()))
}

pub async fn get_state_event_empty_key(
    state: S,
    auth: Auth,
    Path((room, kind)): Path<(String, String)>,
) -> Result<Json<Value>> {
    get_state_event(state, auth, Path((room, kind, String::new()))).await
}

pub async fn get_state(
    State(s): S,
    Auth(caller): Auth,
    Path(room): Path<String>,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    let hash = s.rooms.reader(&caller.user_id, &room)?.readable_state()?;
    let events: Vec<Value> = s
        .rooms
        .state
        .load(hash)?
        .values()
        .map(|short| {
            let pdu = s.rooms.pdu_by_short(*short)?;
            s.rooms.client_event(*short, &pdu, Some(&room), None)
        })
        .collect::<Result<_>>()?;
    Ok(Json(Value::Array(events)))
}

pub async fn get_event(
    State(s): S,
    Auth(caller): Auth,
    Path((room, event)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    let event = EventId::parse(&event).map_err(|_| Error::invalid_param("Invalid event id"))?;
    let reader = s
        .rooms
        .reader(&caller.user_id, &room)
        .map_err(|_| Error::not_found("Event not found"))?;
    let (short, pdu) = s
        .rooms
        .pdu(&event)?
        .ok_or_else(|| Error::not_found("Event not found"))?;
    if !reader.can_see(short, &pdu)? {
        return Err(Error::not_found("Event not found"));
    }
    let event = s
        .rooms
        .client_event(short, &pdu, Some(&room), caller.viewer())?;
    Ok(Json(event))
}

pub async fn redact(
    State(s): S,
    Auth(caller): Auth,
    Path((room, event, txn)): Path<(String, String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    let target = EventId::parse(&event).map_err(|_| Error::invalid_param("Invalid event id"))?;
    let mut content = json!({});
    if let Some(reason) = body.get("reason").and_then(Value::as_str) {
        content["reason"] = json!(reason);
    }
    let draft = EventDraft {
        kind: TimelineEventType::RoomRedaction,
        content,
        state_key: None,
        redacts: Some(target),
    };
    let txn = Txn {
        device: &caller.device_id,
        id: &txn,
        endpoint: "redact",
    };
    let event_id = s
        .rooms
        .send(&caller.user_id, &room, draft, Some(txn))
        .await?;
    Ok(Json(json!({ "event_id": event_id })))
}
