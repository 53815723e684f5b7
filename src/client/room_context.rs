//! `/context/{eventId}` and `/timestamp_to_event`.

use std::sync::Arc;

use axum::Router;
use matrixos_storage::Direction;
use ruma::api::client::context::get_context;
use ruma::api::client::room::get_event_by_timestamp;
use ruma::api::Direction as Dir;
use ruma::serde::Raw;

use super::room_history::{event_filter, page_limit};
use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::rooms::timeline::{TimelineEntry, TimelinePos};
use crate::rooms::visibility::RoomReader;
use crate::services::Services;
use crate::sync::filter::EventFilter;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new().reading(context).endpoint(timestamp_to_event)
}

fn context(
    s: Arc<Services>,
    req: Ruma<get_context::v3::Request>,
) -> Result<get_context::v3::Response> {
    let (caller, body) = (&req.caller, req.body);
    let room = &body.room_id;
    let reader = s.rooms.reader(&caller.user_id, room)?;
    let (short, pdu) = s
        .rooms
        .pdu(&body.event_id)?
        .ok_or_else(|| Error::not_found("Event not found"))?;
    if !reader.can_see(short, &pdu)? {
        return Err(Error::not_found("Event not found"));
    }
    let meta = s.rooms.meta(short)?;
    let limit = page_limit(body.limit, 100);
    let filter = event_filter(body.filter);
    let before_n = limit / 2;
    let at = meta.position();
    let Around {
        before,
        after,
        start,
        end,
    } = around(&s, &reader, at, (before_n, limit - before_n), &filter)?;
    let client = |e: &TimelineEntry| -> Result<Raw<_>> {
        let json = reader.client_event(e.short, &e.pdu, Some(room), Some(&caller.device_id))?;
        Ok(Raw::from_json(json))
    };
    let state_hash = match after.last() {
        Some(e) => s.rooms.meta(e.short)?.state_after,
        None => meta.state_after,
    };
    // Lazy loading: of the members, only the senders of the events served.
    let senders: Vec<&ruma::UserId> = std::iter::once(&pdu)
        .chain(before.iter().chain(&after).map(|e| &e.pdu))
        .map(|p| p.sender.as_ref())
        .collect();
    let mut response = get_context::v3::Response::new();
    for (short_key, short) in s.rooms.state.load(state_hash)?.iter() {
        if filter.lazy_load_members {
            let (kind, key) = s.rooms.state.key_of(*short_key)?;
            if kind == "m.room.member" && !senders.iter().any(|u| u.as_str() == key) {
                continue;
            }
        }
        let ev = s.rooms.pdu_by_short(*short)?;
        let json = s.rooms.client_event_raw(*short, &ev, Some(room), None)?;
        response.state.push(Raw::from_json(json));
    }
    let event = reader.client_event(short, &pdu, Some(room), Some(&caller.device_id))?;
    response.start = Some(start.token());
    response.end = Some(end.token());
    response.event = Some(Raw::from_json(event));
    response.events_before = before.iter().map(client).collect::<Result<_>>()?;
    response.events_after = after.iter().map(client).collect::<Result<_>>()?;
    Ok(response)
}

/// The events around one that a reader may see and a filter allows.
pub struct Around {
    /// Newest first.
    pub before: Vec<TimelineEntry>,
    /// Oldest first.
    pub after: Vec<TimelineEntry>,
    /// Tokens to page on from either end.
    pub start: TimelinePos,
    pub end: TimelinePos,
}

/// Up to `before_n` events before the place `at` and `after_n` after it
/// (as far as the reader may read), of those the reader may see and the
/// filter allows.
pub fn around(
    s: &Services,
    reader: &RoomReader<'_>,
    at: TimelinePos,
    (before_n, after_n): (usize, usize),
    filter: &EventFilter,
) -> Result<Around> {
    let keep = |entries: Vec<TimelineEntry>| -> Result<Vec<TimelineEntry>> {
        let mut kept = Vec::with_capacity(entries.len());
        for entry in entries {
            if filter.allows(&entry.pdu) && reader.can_see_entry(&entry)? {
                kept.push(entry);
            }
        }
        Ok(kept)
    };
    let short_room = reader.short_room;
    let before =
        keep(
            s.rooms
                .timeline(short_room, at.before(), Direction::Backward, before_n, None)?,
        )?;
    let upto = TimelinePos::live(reader.until.min(s.store.position()));
    let after = keep(
        s.rooms
            .timeline(short_room, at, Direction::Forward, after_n, Some(upto))?,
    )?;
    Ok(Around {
        start: before.last().map_or(at, |e| e.pos).before(),
        end: after.last().map_or(at, |e| e.pos),
        before,
        after,
    })
}

/// Pages of history asked of other servers for one `/timestamp_to_event`
/// that finds nothing here before the time.
const MAX_BACKFILL_PAGES: usize = 5;

/// The event closest to a time. Looking back past the oldest event this
/// server has (history from before it joined), the room's other servers
/// are asked for the history before it (`/backfill`, a few pages) until an
/// event at or before the time is here. Events are found in this server's
/// own timeline, so that clients can then read around them.
async fn timestamp_to_event(
    s: Arc<Services>,
    req: Ruma<get_event_by_timestamp::v1::Request>,
) -> Result<get_event_by_timestamp::v1::Response> {
    let backward = req.body.dir == Dir::Backward;
    for page in 0..=MAX_BACKFILL_PAGES {
        let (found, short_room) = crate::blocking::reads(|| closest_here(&s, &req))?;
        if let Some((ts, id)) = found {
            return Ok(get_event_by_timestamp::v1::Response::new(id, ts));
        }
        let more = backward
            && page < MAX_BACKFILL_PAGES
            && crate::federation::backfill::more_before(&s, short_room)?;
        if !more {
            break;
        }
        let room = &req.body.room_id;
        let limit = crate::federation::backfill::MAX_ASK;
        if !crate::federation::backfill::from_peers(&s, room, short_room, limit).await? {
            break;
        }
    }
    Err(Error::not_found("No event found in that direction"))
}

/// The closest event this server has that the caller may see, and the
/// room's short id.
fn closest_here(
    s: &Services,
    req: &Ruma<get_event_by_timestamp::v1::Request>,
) -> Result<(
    Option<(ruma::MilliSecondsSinceUnixEpoch, ruma::OwnedEventId)>,
    u64,
)> {
    let body = &req.body;
    let reader = s.rooms.reader(&req.caller.user_id, &body.room_id)?;
    let upto = TimelinePos::live(reader.until.min(s.store.position()));
    let forward = body.dir == Dir::Forward;
    let found = s
        .rooms
        .closest_event(reader.short_room, upto, body.ts, forward, |e| {
            reader.can_see_entry(e)
        })?;
    Ok((found, reader.short_room))
}
