//! One PDU from another server, taken in the spec's order: identified,
//! signatures and content hash checked (`pdu_check`), missing auth events
//! fetched from the sender (`/event_auth`) and stored as outliers, missing
//! prev events fetched with `/get_missing_events` (a bounded number), and
//! past a gap that leaves, the state before it from `/state_ids`; then
//! appended: the room core checks it against its auth events, the state
//! before it and the current state.

use std::sync::Arc;

use ruma::api::federation::authorization::get_event_authorization::v1 as event_auth;
use ruma::api::federation::event::get_missing_events::v1 as missing;
use ruma::canonical_json::CanonicalJsonObject;
use ruma::{OwnedEventId, RoomId, RoomVersionId, ServerName, UInt};
use serde_json::value::RawValue as RawJsonValue;

use super::pdu_check::{self, rules_of};
use crate::error::{Error, Result};
use crate::rooms::remote::{Durable, RemotePdu};
use crate::rooms::Verdict;
use crate::services::Services;

/// Most prev events fetched for one PDU.
const MAX_MISSING: u32 = 20;

/// How a PDU of a transaction fared: its id, the outcome (`Err` is the
/// reason it was refused), and the write to wait for before answering.
pub struct Handled {
    pub event_id: OwnedEventId,
    pub outcome: std::result::Result<(), String>,
    pub durable: Option<Durable>,
}

/// Takes a PDU of a transaction. `None` when it names no room this server
/// is in, as Synapse does: such a PDU is left out of the answer.
pub async fn handle_pdu(
    s: &Arc<Services>,
    origin: &ServerName,
    raw: &RawJsonValue,
) -> Option<Handled> {
    let object = match pdu_check::parse(raw) {
        Ok(object) => object,
        Err(e) => {
            tracing::info!(%origin, error = %e, "unreadable PDU ignored");
            return None;
        }
    };
    let room = pdu_check::room_id_of(&object).ok()?;
    let version = match s.rooms.record_of(&room) {
        Ok((_, record)) => record.version,
        Err(_) => {
            if let Err(e) = super::out_of_room::take(s, origin, &room, object).await {
                tracing::info!(%origin, %room, error = %e, "PDU for an unknown room ignored");
            }
            return None;
        }
    };
    let event_id = rules_of(&version)
        .ok()
        .and_then(|rules| matrixos_federation::event_id_for_pdu(&object, &rules).ok())?;
    let (outcome, durable) = match take_pdu(s, origin, &room, &version, object, &event_id).await {
        Ok(durable) => (Ok(()), durable),
        Err(e) => {
            tracing::info!(%origin, event = %event_id, error = %e, "PDU refused");
            (Err(e.message), None)
        }
    };
    Some(Handled {
        event_id,
        outcome,
        durable,
    })
}

/// Checks and appends one PDU, fetching what it builds on; answers the
/// write to wait for.
async fn take_pdu(
    s: &Arc<Services>,
    origin: &ServerName,
    room: &RoomId,
    version: &RoomVersionId,
    object: CanonicalJsonObject,
    event_id: &OwnedEventId,
) -> Result<Option<Durable>> {
    super::acl::check(s, room, origin)?;
    let remote = pdu_check::verified_as(s, version, object, event_id.clone()).await?;
    super::acl::check(s, room, remote.pdu.sender.server_name())?;
    if s.rooms.in_dag(remote.event_id())? {
        return Ok(None);
    }
    let state_before = match fetch_missing_prevs(s, origin, room, version, &remote).await? {
        true => None,
        false => {
            let id = remote.event_id();
            Some(super::gap::state_before(s, origin, room, version, id).await?)
        }
    };
    append(s, origin, room, version, remote, state_before)
        .await
        .map(Some)
}

/// Appends a checked PDU whose prev events are known (or with the state
/// before it, when they could not be fetched), without waiting for the
/// write (the PDUs of a transaction are written together).
async fn append(
    s: &Arc<Services>,
    origin: &ServerName,
    room: &RoomId,
    version: &RoomVersionId,
    remote: RemotePdu,
    state_before: Option<Vec<OwnedEventId>>,
) -> Result<Durable> {
    fetch_missing_auth(s, origin, room, version, &remote).await?;
    let (appended, durable) = s.rooms.stage_remote(room, remote, state_before).await?;
    match appended.verdict {
        Verdict::Rejected => {
            durable.await?;
            Err(Error::forbidden(
                appended.reason.unwrap_or_else(|| "rejected".to_owned()),
            ))
        }
        _ => Ok(durable),
    }
}

/// Fetches the auth chain of an event whose auth events are not all known
/// and stores it as outliers.
async fn fetch_missing_auth(
    s: &Arc<Services>,
    origin: &ServerName,
    room: &RoomId,
    version: &RoomVersionId,
    remote: &RemotePdu,
) -> Result<()> {
    for id in &remote.pdu.auth_events {
        if s.rooms.short_event(id)?.is_none() {
            return fetch_auth_chain(s, origin, room, version, remote.event_id()).await;
        }
    }
    Ok(())
}

/// Fetches an event's auth chain from `origin` (`/event_auth`) and stores
/// it as outliers.
pub async fn fetch_auth_chain(
    s: &Arc<Services>,
    origin: &ServerName,
    room: &RoomId,
    version: &RoomVersionId,
    event: &ruma::EventId,
) -> Result<()> {
    let request = event_auth::Request::new(room.to_owned(), event.to_owned());
    let answer = s
        .federation
        .client
        .send_bounded(origin, request, super::client::Bounds::EVENTS)
        .await?;
    let events = pdu_check::verified_of_room(s, room, version, &answer.auth_chain).await;
    s.rooms.store_outliers(room, events).await
}

/// Fetches the events between the room's forward extremities and a PDU
/// whose prev events are not all known, and appends them oldest first.
/// False if a gap remains.
async fn fetch_missing_prevs(
    s: &Arc<Services>,
    origin: &ServerName,
    room: &RoomId,
    version: &RoomVersionId,
    remote: &RemotePdu,
) -> Result<bool> {
    if all_prevs_known(s, remote)? {
        return Ok(true);
    }
    let (_, record) = s.rooms.record_of(room)?;
    let mut request = missing::Request::new(
        room.to_owned(),
        record.extremities.clone(),
        vec![remote.event_id().clone()],
    );
    request.limit = UInt::from(MAX_MISSING);
    let answer = match s
        .federation
        .client
        .send_bounded(origin, request, super::client::Bounds::EVENTS)
        .await
    {
        Ok(answer) => answer,
        Err(e) => {
            // As Synapse does: the state before the PDU, asked for next,
            // lets it in all the same.
            tracing::info!(%origin, event = %remote.event_id(), error = %e, "missing events not fetched");
            return Ok(false);
        }
    };
    let asked = answer.events.len().min(MAX_MISSING as usize);
    let mut fetched = pdu_check::verified_of_room(s, room, version, &answer.events[..asked]).await;
    fetched.sort_by(|a, b| (a.pdu.depth, a.event_id()).cmp(&(b.pdu.depth, b.event_id())));
    for event in fetched {
        if s.rooms.in_dag(event.event_id())? || !all_prevs_known(s, &event)? {
            continue;
        }
        let id = event.event_id().clone();
        let appended = match Box::pin(append(s, origin, room, version, event, None)).await {
            Ok(durable) => durable.await,
            Err(e) => Err(e),
        };
        if let Err(e) = appended {
            tracing::info!(%origin, event = %id, error = %e, "missing event refused");
        }
    }
    all_prevs_known(s, remote)
}

fn all_prevs_known(s: &Services, remote: &RemotePdu) -> Result<bool> {
    for prev in &remote.pdu.prev_events {
        if !s.rooms.in_dag(prev)? {
            return Ok(false);
        }
    }
    Ok(true)
}
