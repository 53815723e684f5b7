//! Events other servers ask this one for: one event (`/event`), the state
//! before an event (`/state`, `/state_ids`), an event's auth chain
//! (`/event_auth`), the events before the ones they have
//! (`/get_missing_events`) and history (`/backfill`). A server sees a
//! room's events only while one of its users is in the room, or when the
//! room is world-readable; of those, events from before it could see them
//! (by the room's history visibility then) come redacted.

use std::sync::Arc;

use axum::Router;
use ruma::api::federation::authorization::get_event_authorization::v1 as event_auth;
use ruma::api::federation::backfill::get_backfill::v1 as backfill;
use ruma::api::federation::event::get_event_by_timestamp::v1 as by_time;
use ruma::api::federation::event::{
    get_event::v1 as get_event, get_missing_events::v1 as missing, get_room_state::v1 as state,
    get_room_state_ids::v1 as state_ids,
};
use ruma::{MilliSecondsSinceUnixEpoch, RoomId, ServerName};
use serde_json::value::RawValue as RawJsonValue;

use super::x_matrix::Origin;
use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::rooms::timeline::TimelinePos;
use crate::services::Services;

pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .reading(event)
        .reading(room_state_ids)
        .reading(room_state)
        .reading(auth_chain)
        .reading(missing_events)
        .reading(history)
        .reading(closest_to_time)
}

/// Refuses a server that may not see the room's events.
pub fn may_see(s: &Services, origin: &ServerName, room: &RoomId) -> Result<()> {
    super::acl::check(s, room, origin)?;
    if s.rooms.servers_in_room(room)?.iter().any(|o| o == origin) {
        return Ok(());
    }
    if s.rooms.is_world_readable(room)? {
        return Ok(());
    }
    tracing::info!(%origin, %room, "server not in room refused");
    Err(Error::forbidden("Your server is not in this room"))
}

/// A stored event as other servers are served it: exactly as signed.
pub fn signed_raw(s: &Services, short: u64) -> Result<Box<RawJsonValue>> {
    raw(s.rooms.signed_pdu(short)?)
}

fn raw(bytes: Vec<u8>) -> Result<Box<RawJsonValue>> {
    let text = String::from_utf8(bytes).map_err(|_| Error::internal("stored PDU is not UTF-8"))?;
    RawJsonValue::from_string(text).map_err(|e| Error::internal(format!("stored PDU: {e}")))
}

/// Timeline events as `origin` is served them: redacted where it may not
/// see them.
fn served_all(
    s: &Services,
    origin: &ServerName,
    room: &RoomId,
    shorts: &[u64],
) -> Result<Vec<Box<RawJsonValue>>> {
    let reader = s.rooms.server_reader(room, origin)?;
    shorts
        .iter()
        .map(|short| raw(reader.served(*short)?))
        .collect()
}

fn signed_all(s: &Services, shorts: &[u64]) -> Result<Vec<Box<RawJsonValue>>> {
    shorts.iter().map(|short| signed_raw(s, *short)).collect()
}

fn now() -> MilliSecondsSinceUnixEpoch {
    MilliSecondsSinceUnixEpoch::now()
}

fn event(s: Arc<Services>, req: Ruma<get_event::Request>) -> Result<get_event::Response> {
    let Origin(origin) = &req.caller;
    let (short, pdu) = s
        .rooms
        .pdu(&req.body.event_id)?
        .ok_or_else(|| Error::not_found("Unknown event"))?;
    // A room version 12 create event names no room: its id is the room's.
    let room = match &pdu.room_id {
        Some(room) => room.clone(),
        None => RoomId::parse(format!("!{}", pdu.event_id.localpart()))
            .map_err(|_| Error::not_found("Unknown event"))?,
    };
    if pdu.rejected {
        return Err(Error::not_found("Unknown event"));
    }
    may_see(&s, origin, &room)?;
    let pdu = s.rooms.server_reader(&room, origin)?.served(short)?;
    Ok(get_event::Response::new(
        s.server_name.clone(),
        now(),
        raw(pdu)?,
    ))
}

fn room_state_ids(s: Arc<Services>, req: Ruma<state_ids::Request>) -> Result<state_ids::Response> {
    let Ruma { body, caller, .. } = req;
    may_see(&s, &caller.0, &body.room_id)?;
    let state = s.rooms.state_before_event(&body.room_id, &body.event_id)?;
    let chain = s.rooms.auth_chain_union(&state)?;
    let ids = |shorts: &[u64]| -> Result<Vec<_>> {
        shorts
            .iter()
            .map(|short| Ok(s.rooms.pdu_by_short(*short)?.event_id.clone()))
            .collect()
    };
    Ok(state_ids::Response::new(ids(&chain)?, ids(&state)?))
}

fn room_state(s: Arc<Services>, req: Ruma<state::Request>) -> Result<state::Response> {
    let Ruma { body, caller, .. } = req;
    may_see(&s, &caller.0, &body.room_id)?;
    let state = s.rooms.state_before_event(&body.room_id, &body.event_id)?;
    let chain = s.rooms.auth_chain_union(&state)?;
    Ok(state::Response::new(
        signed_all(&s, &chain)?,
        signed_all(&s, &state)?,
    ))
}

fn auth_chain(s: Arc<Services>, req: Ruma<event_auth::Request>) -> Result<event_auth::Response> {
    let Ruma { body, caller, .. } = req;
    may_see(&s, &caller.0, &body.room_id)?;
    let short = s.rooms.timeline_event_in(&body.room_id, &body.event_id)?;
    let chain = s.rooms.auth_chain_union(&[short])?;
    Ok(event_auth::Response::new(signed_all(&s, &chain)?))
}

fn missing_events(s: Arc<Services>, req: Ruma<missing::Request>) -> Result<missing::Response> {
    let Ruma { body, caller, .. } = req;
    may_see(&s, &caller.0, &body.room_id)?;
    let limit = usize::try_from(u64::from(body.limit)).unwrap_or(usize::MAX);
    let found = s.rooms.missing_events(
        &body.room_id,
        &body.earliest_events,
        &body.latest_events,
        limit,
        body.min_depth.into(),
    )?;
    let mut oldest_first = found;
    oldest_first.reverse();
    Ok(missing::Response::new(served_all(
        &s,
        &caller.0,
        &body.room_id,
        &oldest_first,
    )?))
}

fn history(s: Arc<Services>, req: Ruma<backfill::Request>) -> Result<backfill::Response> {
    let Ruma { body, caller, .. } = req;
    may_see(&s, &caller.0, &body.room_id)?;
    let limit = usize::try_from(u64::from(body.limit)).unwrap_or(usize::MAX);
    let found = s.rooms.backfill_events(&body.room_id, &body.v, limit)?;
    Ok(backfill::Response::new(
        s.server_name.clone(),
        now(),
        served_all(&s, &caller.0, &body.room_id, &found)?,
    ))
}

/// `/timestamp_to_event`: the room's event closest to a time, for a
/// server in the room (its own timeline's, by the same search as clients').
fn closest_to_time(s: Arc<Services>, req: Ruma<by_time::Request>) -> Result<by_time::Response> {
    let Ruma { body, caller, .. } = req;
    may_see(&s, &caller.0, &body.room_id)?;
    let (short_room, _) = s.rooms.record_of(&body.room_id)?;
    let upto = TimelinePos::live(s.store.position());
    let forward = body.dir == ruma::api::Direction::Forward;
    let found = s
        .rooms
        .closest_event(short_room, upto, body.ts, forward, |_| Ok(true))?;
    let (ts, id) = found.ok_or_else(|| Error::not_found("No event found in that direction"))?;
    Ok(by_time::Response::new(id, ts))
}
