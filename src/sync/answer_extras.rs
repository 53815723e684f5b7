//! What a sync answer carries that ruma 0.16's response type cannot:
//! - knocks when no joined, invited or left room changed (ruma leaves
//!   `rooms` out then, and a sync whose only news is a knock would lose it);
//! - the rooms the device peeks into (MSC2753's `rooms.peek`).
//!
//! The sync handler notes them here, and this layer writes them into the
//! answer's JSON.

use std::cell::RefCell;
use std::collections::BTreeMap;

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use ruma::api::client::sync::sync_events::v3::{JoinedRoom, Rooms};
use ruma::OwnedRoomId;
use serde_json::{json, Value};

#[derive(Default)]
struct Extras {
    knock: Option<Value>,
    peek: Option<Value>,
}

tokio::task_local! {
    static EXTRAS: RefCell<Extras>;
}

/// Most bytes of a sync answer this layer will reread.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Called by the handler with the rooms it answers: knocks that ruma
/// would drop are kept for the layer.
pub fn note_knocks(rooms: &Rooms) {
    if rooms.is_empty() && !rooms.knock.is_empty() {
        let knocks = serde_json::to_value(&rooms.knock).ok();
        let _ = EXTRAS.try_with(|slot| slot.borrow_mut().knock = knocks);
    }
}

/// Called by the handler with the peeked rooms it answers.
pub fn note_peeks(peek: &BTreeMap<OwnedRoomId, JoinedRoom>) {
    if !peek.is_empty() {
        let peek = serde_json::to_value(peek).ok();
        let _ = EXTRAS.try_with(|slot| slot.borrow_mut().peek = peek);
    }
}

/// The layer around the sync endpoint.
pub async fn restore(request: Request, next: Next) -> Response {
    let (response, extras) = EXTRAS
        .scope(RefCell::new(Extras::default()), async {
            let response = next.run(request).await;
            (response, EXTRAS.with(|slot| slot.take()))
        })
        .await;
    if extras.knock.is_none() && extras.peek.is_none() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        tracing::error!("a sync answer could not be reread");
        return Response::from_parts(parts, Body::empty());
    };
    let mut answer: Value = match serde_json::from_slice(&bytes) {
        Ok(answer) => answer,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    if let Some(knocks) = extras.knock {
        if answer.get("rooms").is_none() {
            answer["rooms"] = json!({ "knock": knocks });
        }
    }
    if let Some(peek) = extras.peek {
        if !answer["rooms"].is_object() {
            answer["rooms"] = json!({});
        }
        answer["rooms"]["peek"] = peek;
    }
    let bytes = serde_json::to_vec(&answer).unwrap_or_else(|_| bytes.to_vec());
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}
