//! `/context/{eventId}` and `/timestamp_to_event`.

use axum::routing::get;
use axum::Router;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use matrixos_storage::Direction;
use ruma::EventId;
use serde_json::{json, Value};

use super::membership::parse_room;
use crate::error::{Error, Result};
use crate::http::extract::{query_param, Auth};
use crate::rooms::timeline::TimelineEntry;
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route(
            &super::v3("/rooms/{room_id}/context/{event_id}"),
            get(context),
        )
        .route(
            "/_matrix/client/v1/rooms/{room_id}/timestamp_to_event",
            get(timestamp_to_event),
        )
}

type S = State<Arc<Services>>;
type Q = Query<Vec<(String, String)>>;

pub async fn context(
    State(s): S,
    Auth(caller): Auth,
    Path((room, event)): Path<(String, String)>,
    Query(q): Q,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    let event = EventId::parse(&event).map_err(|_| Error::invalid_param("Invalid event id"))?;
    let reader = s.rooms.reader(&caller.user_id, &room)?;
    let (short_room, until) = (reader.short_room, reader.until);
    let (short, pdu) = s
        .rooms
        .pdu(&event)?
        .ok_or_else(|| Error::not_found("Event not found"))?;
    if !reader.can_see(short, &pdu)? {
        return Err(Error::not_found("Event not found"));
    }
    let meta = s.rooms.meta(short)?;
    let (limit, filter) = super::room_history::page_params(&q, 100)?;
    let before_n = limit / 2;
    let after_n = limit - before_n;
    let keep = |entries: Vec<TimelineEntry>| -> Result<Vec<TimelineEntry>> {
        let mut kept = Vec::with_capacity(entries.len());
        for entry in entries {
            if filter.allows(&entry.pdu) && reader.can_see_entry(&entry)? {
                kept.push(entry);
            }
        }
        Ok(kept)
    };
    let before = keep(s.rooms.timeline(
        short_room,
        meta.count.saturating_sub(1),
        Direction::Backward,
        before_n,
        None,
    )?)?;
    let upto = until.min(s.store.position());
    let after = keep(s.rooms.timeline(
        short_room,
        meta.count,
        Direction::Forward,
        after_n,
        Some(upto),
    )?)?;
    let client = |e: &TimelineEntry| -> Result<Value> {
        s.rooms
            .client_event(e.short, &e.pdu, Some(&room), caller.viewer())
    };
    let start = before
        .last()
        .map(|e| e.count.saturating_sub(1))
        .unwrap_or(meta.count.saturating_sub(1));
    let end = after.last().map(|e| e.count).unwrap_or(meta.count);
    let state_hash = match after.last() {
        Some(e) => s.rooms.meta(e.short)?.state_after,
        None => meta.state_after,
    };
    let mut state = Vec::new();
    for short in s.rooms.state.load(state_hash)?.values() {
        let ev = s.rooms.pdu_by_short(*short)?;
        state.push(s.rooms.client_event(*short, &ev, Some(&room), None)?);
    }
    let event = s
        .rooms
        .client_event(short, &pdu, Some(&room), caller.viewer())?;
    Ok(Json(json!({
        "start": start.to_string(),
        "end": end.to_string(),
        "event": event,
        "events_before": before.iter().map(client).collect::<Result<Vec<_>>>()?,
        "events_after": after.iter().map(client).collect::<Result<Vec<_>>>()?,
        "state": state,
    })))
}

/// Most events examined by one `/timestamp_to_event` call.
const MAX_SCAN: usize = 200_000;

pub async fn timestamp_to_event(
    State(s): S,
    Auth(caller): Auth,
    Path(room): Path<String>,
    Query(q): Q,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    let reader = s.rooms.reader(&caller.user_id, &room)?;
    let (short_room, until) = (reader.short_room, reader.until);
    let ts: u64 = query_param(&q, "ts")
        .ok_or_else(|| Error::missing_param("Missing ts"))?
        .parse()
        .map_err(|_| Error::invalid_param("Invalid ts"))?;
    let forward = match query_param(&q, "dir") {
        Some("f") => true,
        Some("b") => false,
        Some(_) => return Err(Error::invalid_param("dir must be f or b")),
        None => return Err(Error::missing_param("Missing dir")),
    };
    let upto = until.min(s.store.position());
    let mut best: Option<(u64, Value)> = None;
    let mut cursor = 0;
    let mut scanned = 0;
    while scanned < MAX_SCAN {
        let page = s
            .rooms
            .timeline(short_room, cursor, Direction::Forward, 500, Some(upto))?;
        if page.is_empty() {
            break;
        }
        for e in &page {
            scanned += 1;
            cursor = e.count;
            if !reader.can_see_entry(e)? {
                continue;
            }
            let ets: u64 = e.pdu.origin_server_ts.get().into();
            let better = match (&best, forward) {
                (_, true) if ets < ts => false,
                (_, false) if ets > ts => false,
                (None, _) => true,
                (Some((b, _)), true) => ets < *b,
                (Some((b, _)), false) => ets >= *b,
            };
            if better {
                best = Some((ets, json!(e.pdu.event_id)));
            }
        }
    }
    match best {
        Some((ts, id)) => Ok(Json(json!({ "event_id": id, "origin_server_ts": ts }))),
        None => Err(Error::not_found("No event found in that direction")),
    }
}
