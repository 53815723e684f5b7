//! History from before this server joined a room: when a client pages
//! back (`/messages`) to the oldest event this server has, and that event
//! builds on events it does not have, the other servers in the room are
//! asked for them with `/backfill`. What they send is checked like any
//! peer's events (signatures, hashes, auth events fetched when unknown) and
//! stored before everything seen so far. The state before the oldest of
//! them (whose prev events are unknown here) is asked of the same server
//! with `/state_ids`, so that history visibility and membership at those
//! events are the room's, not guessed from their auth events.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use matrixos_storage::Direction;
use parking_lot::Mutex;
use ruma::api::federation::backfill::get_backfill::v1 as backfill;
use ruma::{OwnedEventId, OwnedRoomId, RoomId, RoomVersionId, ServerName, UInt};

use super::client::Bounds;
use super::{gap, inbound, pdu_check};
use crate::bounded_map::BoundedMap;
use crate::error::Result;
use crate::rooms::remote::RemotePdu;
use crate::rooms::timeline::TimelinePos;
use crate::services::Services;
use crate::two_gen::TwoGen;

/// Most events asked of a peer at once.
pub const MAX_ASK: usize = 100;
/// Servers asked in turn before giving up for now.
const MAX_SERVERS: usize = 3;
/// How long the same oldest event is not asked about again: paging at the
/// start of a room's history must not make a request to a peer each time.
const RETRY_AFTER: Duration = Duration::from_secs(60);
/// Most events of one answer whose state is asked for (`/state_ids`): an
/// answer has one oldest end, a few more only where its history forks.
const MAX_STATE_ASKS: usize = 3;

/// Rooms remembered per generation as having their whole history here.
const COMPLETE_ROOMS: usize = 10_000;

/// The rooms recently backfilled, with the oldest event asked about, and
/// rooms whose history here starts at their create event (nothing can
/// come before it: a page reaching it asks no one and reads nothing more).
pub struct BackfillAttempts {
    attempts: Mutex<BoundedMap<OwnedRoomId, OwnedEventId>>,
    complete: Mutex<TwoGen<u64, ()>>,
}

impl Default for BackfillAttempts {
    fn default() -> Self {
        Self {
            attempts: Mutex::new(BoundedMap::new(10_000)),
            complete: Mutex::new(TwoGen::new(COMPLETE_ROOMS)),
        }
    }
}

impl BackfillAttempts {
    /// Records an attempt from `oldest`; false if one was made lately.
    fn claim(&self, room: &RoomId, oldest: &OwnedEventId) -> bool {
        let now = Instant::now();
        let mut map = self.attempts.lock();
        map.expire(now, RETRY_AFTER);
        if map.get(room) == Some(oldest) {
            return false;
        }
        map.insert(room.to_owned(), oldest.clone(), now);
        true
    }
}

/// Asks the room's other servers for up to `limit` events before the
/// oldest one this server has, and stores them. True if any was stored.
pub async fn from_peers(
    s: &Arc<Services>,
    room: &RoomId,
    short_room: u64,
    limit: usize,
) -> Result<bool> {
    let Some(oldest) = oldest_with_unknown_prevs(s, short_room)? else {
        return Ok(false);
    };
    if !s.federation.backfills.claim(room, &oldest) {
        return Ok(false);
    }
    let (_, record) = s.rooms.record_of(room)?;
    let servers = s.rooms.servers_in_room(room)?;
    let limit = limit.clamp(1, MAX_ASK);
    for server in servers
        .iter()
        .filter(|x| **x != s.server_name)
        .take(MAX_SERVERS)
    {
        let request = backfill::Request::new(
            room.to_owned(),
            vec![oldest.clone()],
            UInt::try_from(limit).unwrap_or(UInt::MIN),
        );
        let answer = match s
            .federation
            .client
            .send_bounded(server, request, Bounds::EVENTS)
            .await
        {
            Ok(answer) => answer,
            Err(e) => {
                tracing::info!(%room, %server, error = %e, "backfill failed");
                continue;
            }
        };
        let asked = answer.pdus.len().min(limit + 1);
        let events =
            pdu_check::verified_of_room(s, room, &record.version, &answer.pdus[..asked]).await;
        let mut fresh = Vec::with_capacity(events.len());
        for event in events {
            if !s.rooms.in_dag(event.event_id())? {
                fresh.push(event);
            }
        }
        if fresh.is_empty() {
            continue;
        }
        for event in &fresh {
            if lacks_auth_events(s, event, &fresh)? {
                let id = event.event_id();
                inbound::fetch_auth_chain(s, server, room, &record.version, id).await?;
            }
        }
        let states = states_before_oldest(s, server, room, &record.version, &fresh).await;
        s.rooms.backfill(room, fresh, states).await?;
        return Ok(true);
    }
    Ok(false)
}

/// The state before each of the answer's events whose prev events are
/// neither known here nor in the answer, as `server` gives it. An event
/// whose state cannot be had is left out (it is then judged by the state
/// its auth events form).
async fn states_before_oldest(
    s: &Arc<Services>,
    server: &ServerName,
    room: &RoomId,
    version: &RoomVersionId,
    answer: &[RemotePdu],
) -> HashMap<OwnedEventId, Vec<OwnedEventId>> {
    let mut states = HashMap::new();
    let oldest = answer.iter().filter(|event| {
        event.pdu.prev_events.iter().any(|prev| {
            !answer.iter().any(|e| e.event_id() == prev) && !s.rooms.in_dag(prev).unwrap_or(false)
        })
    });
    for event in oldest.take(MAX_STATE_ASKS) {
        let id = event.event_id();
        match gap::state_before(s, server, room, version, id).await {
            Ok(state) => {
                states.insert(id.clone(), state);
            }
            Err(e) => {
                tracing::info!(%room, %server, event = %id, error = %e, "no state for a backfilled event")
            }
        }
    }
    states
}

/// Whether an event names auth events neither known here nor among the
/// events it came with.
fn lacks_auth_events(s: &Services, event: &RemotePdu, answer: &[RemotePdu]) -> Result<bool> {
    for id in &event.pdu.auth_events {
        if s.rooms.short_event(id)?.is_none() && !answer.iter().any(|e| e.event_id() == id) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether the room's history here starts with an event that builds on
/// events this server does not have.
pub fn more_before(s: &Services, short_room: u64) -> Result<bool> {
    Ok(oldest_with_unknown_prevs(s, short_room)?.is_some())
}

/// The room's oldest timeline event, if some of its prev events are not in
/// this server's timeline: where history from peers would go.
fn oldest_with_unknown_prevs(s: &Services, short_room: u64) -> Result<Option<OwnedEventId>> {
    let complete = &s.federation.backfills.complete;
    if complete.lock().get(&short_room).is_some() {
        return Ok(None);
    }
    let oldest = s.rooms.timeline(
        short_room,
        TimelinePos::EARLIEST,
        Direction::Forward,
        1,
        None,
    )?;
    let Some(entry) = oldest.first() else {
        return Ok(None);
    };
    if entry.pdu.prev_events.is_empty() {
        complete.lock().insert(short_room, ());
        return Ok(None);
    }
    for prev in &entry.pdu.prev_events {
        if !s.rooms.in_dag(prev)? {
            return Ok(Some(entry.pdu.event_id.clone()));
        }
    }
    Ok(None)
}
