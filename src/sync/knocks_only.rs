//! ruma 0.16 leaves `rooms` out of a sync answer when its joined, invited
//! and left rooms are empty, even if it has knocked rooms: a sync whose
//! only news is a knock would lose it. The sync handler notes such knocks
//! here, and this layer puts them back into the answer's JSON.

use std::cell::RefCell;

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use ruma::api::client::sync::sync_events::v3::Rooms;
use serde_json::{json, Value};

tokio::task_local! {
    static KNOCKS: RefCell<Option<Value>>;
}

/// Most bytes of a sync answer this layer will reread.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Called by the handler with the rooms it answers: knocks that ruma
/// would drop are kept for the layer.
pub fn note(rooms: &Rooms) {
    if rooms.is_empty() && !rooms.knock.is_empty() {
        let knocks = serde_json::to_value(&rooms.knock).ok();
        let _ = KNOCKS.try_with(|slot| *slot.borrow_mut() = knocks);
    }
}

/// The layer around the sync endpoint.
pub async fn restore(request: Request, next: Next) -> Response {
    let (response, knocks) = KNOCKS
        .scope(RefCell::new(None), async {
            let response = next.run(request).await;
            (response, KNOCKS.with(|slot| slot.borrow_mut().take()))
        })
        .await;
    let Some(knocks) = knocks else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        tracing::error!("a sync answer could not be reread");
        return Response::from_parts(parts, Body::empty());
    };
    let mut answer: Value = match serde_json::from_slice(&bytes) {
        Ok(answer) => answer,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    if answer.get("rooms").is_none() {
        answer["rooms"] = json!({ "knock": knocks });
    }
    let bytes = serde_json::to_vec(&answer).unwrap_or_else(|_| bytes.to_vec());
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}
