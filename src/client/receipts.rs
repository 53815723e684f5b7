//! `/receipt`, `/read_markers`, `/typing`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use matrixos_storage::Batch;
use ruma::api::client::read_marker::set_read_marker;
use ruma::api::client::receipt::create_receipt;
use ruma::api::client::receipt::create_receipt::v3::ReceiptType;
use ruma::api::client::typing::create_typing_event;
use ruma::api::client::typing::create_typing_event::v3::Typing;
use ruma::events::fully_read::FullyReadEventContent;
use ruma::events::receipt::ReceiptThread;
use ruma::{EventId, RoomId, UserId};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .endpoint(receipt)
        .endpoint(read_markers)
        .merge(crate::http::body_check::before_parsing(
            Router::new().endpoint(typing),
            timeout_as_synapse,
        ))
}

/// How long a typing notice lasts when the client does not say.
const DEFAULT_TYPING_MS: u64 = 30_000;

/// `{"typing": true}` without a `timeout`, which the spec allows and
/// Synapse takes as 30 seconds, where ruma finds a field missing.
fn timeout_as_synapse(body: &[u8]) -> Result<Option<Vec<u8>>> {
    match serde_json::from_slice::<Typing>(body) {
        Err(e) if e.to_string().starts_with("missing field `timeout`") => {}
        _ => return Ok(None),
    }
    let mut fields: serde_json::Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| Error::bad_json(e.to_string()))?;
    fields.insert("timeout".into(), DEFAULT_TYPING_MS.into());
    serde_json::to_vec(&fields)
        .map(Some)
        .map_err(|e| Error::internal(format!("typing body: {e}")))
}

fn require_joined(s: &Services, user: &UserId, room: &RoomId) -> Result<()> {
    if !s.rooms.is_joined(user, room)? {
        return Err(Error::forbidden("You are not in this room"));
    }
    Ok(())
}

/// Moves one of the caller's markers in `room` to `event`.
async fn mark(
    s: &Services,
    user: &UserId,
    room: &RoomId,
    kind: &ReceiptType,
    event: &EventId,
    thread: &ReceiptThread,
) -> Result<()> {
    let short_room = s.rooms.short_room(room)?;
    let meta = match s.rooms.short_event(event)? {
        Some(short) => s.rooms.timeline_meta(short)?,
        None => None,
    };
    let Some(meta) = meta.filter(|m| Some(m.room) == short_room) else {
        return Err(Error::not_found("Unknown event in this room"));
    };
    match kind {
        ReceiptType::FullyRead => {
            let content = FullyReadEventContent::new(event.to_owned());
            let content = serde_json::to_value(content)
                .map_err(|e| Error::internal(format!("fully read marker: {e}")))?;
            s.account_data
                .set(user, Some(room), "m.fully_read", &content)
                .await
        }
        ReceiptType::Read | ReceiptType::ReadPrivate => {
            let thread = thread.as_str();
            let mut clear = Batch::new();
            s.push
                .clear_read(&mut clear, user, meta.room, meta.count, thread)?;
            s.receipts
                .set(room, user, kind.as_str(), event, thread, clear)
                .await?;
            if *kind == ReceiptType::Read {
                crate::federation::edus::send_receipt(s, room, user, event, thread).await?;
            }
            Ok(())
        }
        _ => Err(Error::invalid_param("Unknown receipt type")),
    }
}

async fn receipt(
    s: Arc<Services>,
    req: Ruma<create_receipt::v3::Request>,
) -> Result<create_receipt::v3::Response> {
    let (user, b) = (&req.caller.user_id, &req.body);
    require_joined(&s, user, &b.room_id)?;
    mark(
        &s,
        user,
        &b.room_id,
        &b.receipt_type,
        &b.event_id,
        &b.thread,
    )
    .await?;
    Ok(create_receipt::v3::Response::new())
}

async fn read_markers(
    s: Arc<Services>,
    req: Ruma<set_read_marker::v3::Request>,
) -> Result<set_read_marker::v3::Response> {
    let (user, b) = (&req.caller.user_id, &req.body);
    require_joined(&s, user, &b.room_id)?;
    for (kind, event) in [
        (ReceiptType::FullyRead, &b.fully_read),
        (ReceiptType::Read, &b.read_receipt),
        (ReceiptType::ReadPrivate, &b.private_read_receipt),
    ] {
        if let Some(event) = event {
            let unthreaded = ReceiptThread::Unthreaded;
            mark(&s, user, &b.room_id, &kind, event, &unthreaded).await?;
        }
    }
    Ok(set_read_marker::v3::Response::new())
}

async fn typing(
    s: Arc<Services>,
    req: Ruma<create_typing_event::v3::Request>,
) -> Result<create_typing_event::v3::Response> {
    let (caller, b) = (&req.caller, &req.body);
    if b.user_id != caller.user_id {
        return Err(Error::forbidden("Cannot set another user's typing state"));
    }
    require_joined(&s, &caller.user_id, &b.room_id)?;
    let (typing, timeout) = match &b.state {
        Typing::Yes(info) => (true, info.timeout),
        _ => (false, Duration::ZERO),
    };
    s.receipts
        .set_typing(&b.room_id, &b.user_id, typing, timeout)
        .await?;
    crate::federation::edus::send_typing(&s, &b.room_id, &b.user_id, typing).await?;
    Ok(create_typing_event::v3::Response::new())
}
