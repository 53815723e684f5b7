//! `GET /events`: new events after a token, waiting up to `timeout` for
//! some as `/sync` does. With `room_id` it peeks: the events of that one
//! room, which the caller may read without being in it when it is
//! world-readable; matrix-js-sdk's `peekInRoom` (Element's preview of a
//! room not joined) reads the room with `/rooms/{id}/initialSync` and then
//! polls this. Without `room_id` it is the old API's event stream over the
//! caller's joined rooms. Tokens are `/messages` tokens, so either
//! continues the other. Hand-written: ruma's request requires `room_id`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use matrixos_storage::Direction;
use ruma::OwnedRoomId;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::error::Result;
use crate::http::extract::Auth;
use crate::http::Caller;
use crate::rooms::timeline::{parse_token, TimelinePos};
use crate::services::Services;

pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route("/_matrix/client/v3/events", get(events))
        .route("/_matrix/client/r0/events", get(events))
}

/// Without `timeout` (the spec's default), and at most.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_TIMEOUT: Duration = Duration::from_secs(120);
/// Events per answer, and read per room per look.
const LIMIT: usize = 100;

#[derive(Deserialize)]
struct EventsQuery {
    from: Option<String>,
    room_id: Option<OwnedRoomId>,
    timeout: Option<u64>,
}

async fn events(
    State(s): State<Arc<Services>>,
    Auth(caller): Auth,
    Query(query): Query<EventsQuery>,
) -> Result<Json<Value>> {
    let timeout = query
        .timeout
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis)
        .min(MAX_TIMEOUT);
    let deadline = tokio::time::Instant::now() + timeout;
    let start = match &query.from {
        Some(from) => parse_token(from)?,
        None => TimelinePos::live(s.store.position()),
    };
    let mut from = start;
    loop {
        let rooms = match &query.room_id {
            Some(room) => vec![room.clone()],
            None => s.rooms.joined_rooms(&caller.user_id)?,
        };
        // Subscribed before looking, so an event written meanwhile wakes it.
        let mut waiting = s.store.notifier.subscribe(&caller.user_id, rooms.iter());
        let next = s.store.position();
        let single = query.room_id.is_some();
        let (chunk, reached) =
            crate::blocking::reads(|| new_events(&s, &caller, &rooms, single, from, next))?;
        // Events the caller may not see still move the token on.
        from = reached;
        if !chunk.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(Json(json!({
                "chunk": chunk,
                "start": start.token(),
                "end": from.token(),
            })));
        }
        let _ = tokio::time::timeout_at(deadline, waiting.changed()).await;
    }
}

/// The events of `rooms` the caller may see after `from`, up to stream
/// position `next`, oldest first and at most `LIMIT`, and the place the
/// answer reaches. A room the caller may not read is an error when it is
/// the one asked for, and passed over in the stream of joined rooms.
fn new_events(
    s: &Services,
    caller: &Caller,
    rooms: &[OwnedRoomId],
    single: bool,
    from: TimelinePos,
    next: u64,
) -> Result<(Vec<Box<RawValue>>, TimelinePos)> {
    let mut reached = TimelinePos::live(next).max(from);
    let mut found = Vec::new();
    for room in rooms {
        if !single
            && !s
                .store
                .notifier
                .room_changed_since(room, from.stream_count())
        {
            continue;
        }
        let reader = match s.rooms.reader(&caller.user_id, room) {
            Ok(reader) => reader,
            Err(e) if single => return Err(e),
            Err(_) => continue,
        };
        let until = TimelinePos::live(reader.until.min(next));
        let page = s.rooms.timeline(
            reader.short_room,
            from,
            Direction::Forward,
            LIMIT,
            Some(until),
        )?;
        if page.len() == LIMIT {
            // More of this room lies beyond: the answer stops where it does.
            reached = reached.min(page[LIMIT - 1].pos);
        }
        for entry in page {
            if reader.can_see_entry(&entry)? {
                let device = Some(caller.device_id.as_ref());
                let event = reader.client_event(entry.short, &entry.pdu, Some(room), device)?;
                found.push((entry.pos, event));
            }
        }
    }
    found.retain(|(pos, _)| *pos <= reached);
    found.sort_by_key(|(pos, _)| *pos);
    if found.len() > LIMIT {
        found.truncate(LIMIT);
        reached = found[LIMIT - 1].0;
    }
    Ok((found.into_iter().map(|(_, event)| event).collect(), reached))
}
