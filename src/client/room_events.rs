//! Sending and reading room events: send, state, event, redact.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use ruma::api::client::message::send_message_event;
use ruma::api::client::redact::redact_event;
use ruma::api::client::room::get_room_event;
use ruma::api::client::state::get_state_event_for_key::v3::StateEventFormat;
use ruma::api::client::state::{get_state_event_for_key, get_state_events, send_state_event};
use ruma::events::{StateEventType, TimelineEventType};
use ruma::serde::Raw;
use ruma::{OwnedRoomId, RoomId, UserId};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::http::extract::{Auth, JsonBody};
use crate::rooms::send::{EventDraft, Txn};
use crate::services::Services;

/// The state paths without a state key (it is then empty), which ruma's
/// metadata leaves out and clients use.
const STATE_WITHOUT_KEY: [&str; 2] = [
    "/_matrix/client/v3/rooms/{room_id}/state/{event_type}",
    "/_matrix/client/v3/rooms/{room_id}/state/{event_type}/",
];

/// `POST …/send/{eventType}` without a transaction id, which clients from
/// before r0 still use (as Synapse serves it: not idempotent).
const SEND_WITHOUT_TXN: [&str; 2] = [
    "/_matrix/client/v3/rooms/{room_id}/send/{event_type}",
    "/_matrix/client/r0/rooms/{room_id}/send/{event_type}",
];

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    let untransacted = SEND_WITHOUT_TXN.iter().fold(Router::new(), |r, path| {
        r.route(path, post(send_without_txn))
    });
    Router::new()
        .merge(untransacted)
        .endpoint(send)
        .reading(get_state)
        .reading(get_state_event)
        .reading_at(STATE_WITHOUT_KEY, get_state_event)
        .endpoint(put_state)
        .endpoint_at(STATE_WITHOUT_KEY, put_state)
        .reading(get_event)
        .endpoint(redact)
}

/// Content sent by a client, as it was sent.
fn content<T>(raw: &Raw<T>) -> Result<Value> {
    serde_json::from_str(raw.json().get())
        .map_err(|e| Error::bad_json(format!("Invalid content: {e}")))
}

async fn send(
    s: Arc<Services>,
    req: Ruma<send_message_event::v3::Request>,
) -> Result<send_message_event::v3::Response> {
    let (caller, body) = (&req.caller, &req.body);
    s.send_limiter.check(&caller.user_id)?;
    s.presence.note_active(&caller.user_id);
    let kind = TimelineEventType::from(body.event_type.to_string());
    let draft = EventDraft::message(kind, content(&body.body)?);
    let _answering = s.sends_in_flight.begin(&caller.user_id, &caller.device_id);
    let txn = Txn {
        device: &caller.device_id,
        id: body.txn_id.as_str(),
        endpoint: "send",
    };
    let event_id = s
        .rooms
        .send(&caller.user_id, &body.room_id, draft, Some(txn))
        .await?;
    Ok(send_message_event::v3::Response::new(event_id))
}

async fn send_without_txn(
    State(s): State<Arc<Services>>,
    Auth(caller): Auth,
    Path((room_id, event_type)): Path<(String, String)>,
    JsonBody(content): JsonBody,
) -> Result<Json<Value>> {
    let room_id =
        OwnedRoomId::try_from(room_id).map_err(|_| Error::invalid_param("Invalid room id"))?;
    s.send_limiter.check(&caller.user_id)?;
    s.presence.note_active(&caller.user_id);
    let draft = EventDraft::message(TimelineEventType::from(event_type), content);
    let event_id = s.rooms.send(&caller.user_id, &room_id, draft, None).await?;
    Ok(Json(serde_json::json!({ "event_id": event_id })))
}

async fn put_state(
    s: Arc<Services>,
    req: Ruma<send_state_event::v3::Request>,
) -> Result<send_state_event::v3::Response> {
    let body = req.body;
    let content = content(&body.body)?;
    if let Some(event_id) = same_state(&s, &req.caller.user_id, &body, &content)? {
        return Ok(send_state_event::v3::Response::new(event_id));
    }
    let guest_access = body.event_type == StateEventType::RoomGuestAccess;
    let draft = EventDraft::state(body.event_type, body.state_key, content);
    let event_id = s
        .rooms
        .send(&req.caller.user_id, &body.room_id, draft, None)
        .await?;
    if guest_access {
        super::guests::after_guest_access_change(&s, &body.room_id).await;
    }
    Ok(send_state_event::v3::Response::new(event_id))
}

/// The current state event the caller would send again: same type, key,
/// sender and content. As Synapse does, sending it again answers its id
/// and adds nothing (membership changes have their own rules).
fn same_state(
    s: &Services,
    user: &ruma::UserId,
    body: &send_state_event::v3::Request,
    content: &Value,
) -> Result<Option<ruma::OwnedEventId>> {
    let kind = body.event_type.to_string();
    if kind == "m.room.member" || !s.rooms.is_joined(user, &body.room_id)? {
        return Ok(None);
    }
    let (_, record) = s.rooms.record_of(&body.room_id)?;
    let current = s.rooms.state_event(record.state, &kind, &body.state_key)?;
    Ok(current
        .filter(|e| e.sender == user && e.content_value() == *content)
        .map(|e| e.event_id.clone()))
}

fn get_state_event(
    s: Arc<Services>,
    req: Ruma<get_state_event_for_key::v3::Request>,
) -> Result<get_state_event_for_key::v3::Response> {
    let body = &req.body;
    let hash = s
        .rooms
        .reader(&req.caller.user_id, &body.room_id)?
        .readable_state()?;
    let event = s
        .rooms
        .state_event(hash, &body.event_type.to_string(), &body.state_key)?
        .ok_or_else(|| Error::not_found("Event not found"))?;
    let json = match &body.format {
        StateEventFormat::Content => event.content.clone(),
        StateEventFormat::Event => event.to_client_raw(Some(&body.room_id), Map::new())?,
        other => {
            return Err(Error::invalid_param(format!(
                "Unknown format {}: 'content' or 'event'",
                other.as_str()
            )))
        }
    };
    Ok(get_state_event_for_key::v3::Response::new(json))
}

fn get_state(
    s: Arc<Services>,
    req: Ruma<get_state_events::v3::Request>,
) -> Result<get_state_events::v3::Response> {
    let room = &req.body.room_id;
    let events = readable_state_events(&s, &req.caller.user_id, room)?;
    Ok(get_state_events::v3::Response::new(events))
}

/// Every state event of the room the user may read: the current state, or
/// as it was when they left.
pub(super) fn readable_state_events<T>(
    s: &Services,
    user: &UserId,
    room: &RoomId,
) -> Result<Vec<Raw<T>>> {
    let hash = s.rooms.reader(user, room)?.readable_state()?;
    s.rooms
        .state
        .load(hash)?
        .values()
        .map(|short| {
            let pdu = s.rooms.pdu_by_short(*short)?;
            let json = s.rooms.client_event_raw(*short, &pdu, Some(room), None)?;
            Ok(Raw::from_json(json))
        })
        .collect()
}

fn get_event(
    s: Arc<Services>,
    req: Ruma<get_room_event::v3::Request>,
) -> Result<get_room_event::v3::Response> {
    let (caller, room) = (&req.caller, &req.body.room_id);
    let not_found = || Error::not_found("Event not found");
    let reader = s
        .rooms
        .reader(&caller.user_id, room)
        .map_err(|_| not_found())?;
    let (short, pdu) = s.rooms.pdu(&req.body.event_id)?.ok_or_else(not_found)?;
    if !reader.can_see(short, &pdu)? {
        return Err(not_found());
    }
    let json = reader.client_event(short, &pdu, Some(room), Some(&caller.device_id))?;
    Ok(get_room_event::v3::Response::new(Raw::from_json(json)))
}

async fn redact(
    s: Arc<Services>,
    req: Ruma<redact_event::v3::Request>,
) -> Result<redact_event::v3::Response> {
    let (caller, body) = (&req.caller, req.body);
    let mut content = Map::new();
    if let Some(reason) = body.reason {
        content.insert("reason".into(), Value::String(reason));
    }
    let draft = EventDraft {
        kind: TimelineEventType::RoomRedaction,
        content: Value::Object(content),
        state_key: None,
        redacts: Some(body.event_id),
    };
    let _answering = s.sends_in_flight.begin(&caller.user_id, &caller.device_id);
    let txn = Txn {
        device: &caller.device_id,
        id: body.txn_id.as_str(),
        endpoint: "redact",
    };
    let event_id = s
        .rooms
        .send(&caller.user_id, &body.room_id, draft, Some(txn))
        .await?;
    Ok(redact_event::v3::Response::new(event_id))
}
