//! `GET /events?room_id=…`: peeking. New events of one room the caller
//! may read (joined, or world-readable without joining) after a token,
//! waiting up to `timeout` for some as `/sync` does. matrix-js-sdk's
//! `peekInRoom` (Element's preview of a world-readable room) reads the
//! room with `/rooms/{id}/initialSync` and then polls this; its tokens are
//! `/messages` tokens, so either continues the other.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use ruma::api::client::message::get_message_events;
use ruma::api::client::peeking::listen_to_new_events;
use ruma::api::Direction;
use ruma::UInt;

use super::room_history::read_messages;
use crate::error::Result;
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;

pub fn routes() -> Router<Arc<Services>> {
    Router::new().endpoint(events)
}

/// Without `timeout` (the spec's default), and at most.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_TIMEOUT: Duration = Duration::from_secs(120);
/// Events per answer.
const LIMIT: u32 = 100;

async fn events(
    s: Arc<Services>,
    req: Ruma<listen_to_new_events::v3::Request>,
) -> Result<listen_to_new_events::v3::Response> {
    let Ruma { body, caller, .. } = req;
    let timeout = body.timeout.unwrap_or(DEFAULT_TIMEOUT).min(MAX_TIMEOUT);
    let deadline = tokio::time::Instant::now() + timeout;
    let from = match body.from {
        Some(from) => from,
        None => s.store.position().to_string(),
    };
    let mut ask = get_message_events::v3::Request::new(body.room_id.clone(), Direction::Forward);
    ask.from = Some(from.clone());
    ask.limit = UInt::from(LIMIT);
    loop {
        // Subscribed before looking, so an event written meanwhile wakes it.
        let rooms = std::iter::once(&body.room_id);
        let mut waiting = s.store.notifier.subscribe(&caller.user_id, rooms);
        let (page, _) = crate::blocking::reads(|| read_messages(&s, &caller, ask.clone()))?;
        // Events the caller may not see still move the token on.
        if let Some(end) = page.end {
            ask.from = Some(end);
        }
        let timed_out = tokio::time::Instant::now() >= deadline;
        if !page.chunk.is_empty() || timed_out {
            let mut out = listen_to_new_events::v3::Response::new();
            out.end = ask.from;
            out.start = Some(from);
            out.chunk = page.chunk;
            return Ok(out);
        }
        let _ = tokio::time::timeout_at(deadline, waiting.changed()).await;
    }
}
