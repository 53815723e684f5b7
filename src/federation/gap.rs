//! The state before a PDU whose prev events could not be fetched (more
//! missing than `/get_missing_events` may bring): asked of the server that
//! sent it with `/state_ids`, the events not known here fetched (one by one
//! when few, else the whole `/state`), checked and stored as outliers. The
//! PDU is then judged against that state like any other.

use std::collections::BTreeSet;

use ruma::api::federation::event::{
    get_event::v1 as get_event, get_room_state::v1 as room_state,
    get_room_state_ids::v1 as state_ids,
};
use ruma::{EventId, OwnedEventId, RoomId, RoomVersionId, ServerName};
use serde_json::value::RawValue as RawJsonValue;

use super::client::Bounds;
use super::pdu_check;
use crate::error::{Error, Result};
use crate::services::Services;
use std::sync::Arc;

/// Most missing events fetched one by one; more take one `/state` call.
const MAX_SINGLE_FETCHES: usize = 20;
/// Most state events accepted for one room (Synapse's largest rooms hold
/// a few hundred thousand).
const MAX_STATE: usize = 500_000;

/// The ids of the state events before `event`, all stored here, as
/// `origin` gives them.
pub async fn state_before(
    s: &Arc<Services>,
    origin: &ServerName,
    room: &RoomId,
    version: &RoomVersionId,
    event: &EventId,
) -> Result<Vec<OwnedEventId>> {
    let request = state_ids::Request::new(event.to_owned(), room.to_owned());
    let answer = s
        .federation
        .client
        .send_bounded(origin, request, Bounds::ROOM_STATE)
        .await?;
    if answer.pdu_ids.len() + answer.auth_chain_ids.len() > MAX_STATE {
        return Err(Error::bad_json(
            "The state is larger than this server takes",
        ));
    }
    let mut missing = BTreeSet::new();
    for id in answer.pdu_ids.iter().chain(&answer.auth_chain_ids) {
        if s.rooms.short_event(id)?.is_none() {
            missing.insert(id.clone());
        }
    }
    if !missing.is_empty() {
        let fetched = fetch(s, origin, room, event, &missing).await?;
        let events = pdu_check::verified_of_room(s, room, version, &fetched).await;
        s.rooms.store_outliers(room, events).await?;
    }
    Ok(answer.pdu_ids)
}

/// The missing events as `origin` sends them.
async fn fetch(
    s: &Services,
    origin: &ServerName,
    room: &RoomId,
    event: &EventId,
    missing: &BTreeSet<OwnedEventId>,
) -> Result<Vec<Box<RawJsonValue>>> {
    let client = &s.federation.client;
    if missing.len() > MAX_SINGLE_FETCHES {
        let request = room_state::Request::new(event.to_owned(), room.to_owned());
        let answer = client
            .send_bounded(origin, request, Bounds::ROOM_STATE)
            .await?;
        let mut all = answer.pdus;
        all.extend(answer.auth_chain);
        return Ok(all);
    }
    let mut fetched = Vec::with_capacity(missing.len());
    for id in missing {
        let request = get_event::Request::new(id.clone());
        let answer = client.send_bounded(origin, request, Bounds::EVENTS).await?;
        fetched.push(answer.pdu);
    }
    Ok(fetched)
}
