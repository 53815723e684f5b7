//! `GET /rooms/{roomId}/initialSync`, the room snapshot of the old API that
//! bridges and older clients still read: the state, the latest messages,
//! the caller's membership and room account data, the directory
//! visibility; and `GET /initialSync`, the same for every room of the
//! caller (left ones with `archived=true`, invites as their invite event),
//! with global account data and the presence of the people they share a
//! room with.

use std::sync::Arc;

use std::collections::BTreeSet;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use ruma::api::client::message::get_message_events;
use ruma::api::client::peeking::get_current_state::v3 as initial_sync;
use ruma::api::client::room::Visibility;
use ruma::api::Direction as Dir;
use ruma::events::room::member::MembershipState;
use ruma::serde::Raw;
use ruma::RoomId;
use serde::Deserialize;
use serde_json::{json, Value};

use super::room_events::readable_state_events;
use super::room_history::read_messages;
use crate::error::Result;
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::http::extract::Auth;
use crate::http::Caller;
use crate::services::Services;

/// Messages in the snapshot, as Synapse gives.
const MESSAGES: u32 = 10;

/// Rooms in a global snapshot, at most (the old API has no paging).
const MAX_ROOMS: usize = 1_000;

pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .reading(room_initial_sync)
        .route("/_matrix/client/v3/initialSync", get(initial_sync_all))
        .route("/_matrix/client/r0/initialSync", get(initial_sync_all))
}

fn room_initial_sync(
    s: Arc<Services>,
    req: Ruma<initial_sync::Request>,
) -> Result<initial_sync::Response> {
    snapshot(&s, &req.caller, &req.body.room_id, MESSAGES)
}

/// What the caller may read of the room (403 if they were never in it and
/// it is not world-readable), up to `limit` messages oldest first.
fn snapshot(
    s: &Services,
    caller: &Caller,
    room: &RoomId,
    limit: u32,
) -> Result<initial_sync::Response> {
    let state = readable_state_events(s, &caller.user_id, room)?;
    let mut page = get_message_events::v3::Request::new(room.to_owned(), Dir::Backward);
    page.limit = limit.into();
    let (page, _) = read_messages(s, caller, page)?;
    let mut chunk = page.chunk;
    chunk.reverse();
    // `end` is where the page began (now); `start` where it stopped, none
    // at the room's first event.
    let mut messages = initial_sync::PaginationChunk::new(chunk, page.start);
    messages.start = page.end;
    let mut out = initial_sync::Response::new(room.to_owned());
    out.state = state;
    out.messages = Some(messages);
    out.membership = s
        .rooms
        .membership(&caller.user_id, room)?
        .map(|m| MembershipState::from(m.membership.as_str()));
    out.visibility = Some(match s.rooms.is_published(room)? {
        true => Visibility::Public,
        false => Visibility::Private,
    });
    out.account_data = s
        .account_data
        .changed_since(&caller.user_id, 0)?
        .into_iter()
        .filter(|e| e.room_id.as_deref() == Some(room))
        .map(|e| Ok(Raw::from_json(serde_json::value::to_raw_value(&e.event())?)))
        .collect::<Result<_>>()?;
    Ok(out)
}

#[derive(Deserialize)]
struct AllQuery {
    limit: Option<u32>,
    #[serde(default)]
    archived: bool,
}

/// `GET /initialSync`: every room of the caller as `/rooms/{id}/initialSync`
/// gives it (`limit` messages each, 10 by default), invites as their
/// invite event, left rooms only with `archived=true`.
async fn initial_sync_all(
    State(s): State<Arc<Services>>,
    Auth(caller): Auth,
    Query(query): Query<AllQuery>,
) -> Result<Json<Value>> {
    let limit = query.limit.unwrap_or(MESSAGES).min(100);
    crate::blocking::reads(|| {
        let end = s.store.position();
        let mut rooms = Vec::new();
        let mut sharing = BTreeSet::new();
        for (room, membership) in s
            .rooms
            .rooms_of(&caller.user_id)?
            .into_iter()
            .take(MAX_ROOMS)
        {
            let entry = match membership.membership.as_str() {
                "invite" => {
                    let invite = s.rooms.pdu_by_short(membership.event)?;
                    let event =
                        s.rooms
                            .client_event(membership.event, &invite, Some(&room), None)?;
                    json!({ "room_id": room, "membership": "invite", "invite": event })
                }
                "join" => {
                    for (member, m) in s.rooms.members(s.rooms.short_room(&room)?.unwrap_or(0))? {
                        if m == "join" {
                            sharing.insert(member);
                        }
                    }
                    snapshot_json(&s, &caller, &room, limit)?
                }
                "leave" | "ban" if query.archived => snapshot_json(&s, &caller, &room, limit)?,
                _ => continue,
            };
            rooms.push(entry);
        }
        let changed = s.account_data.changed_since(&caller.user_id, 0)?;
        let account_data = crate::sync::global_account_data(&s, &caller.user_id, 0, &changed)?;
        let presence: Vec<Value> = sharing
            .iter()
            .filter_map(|user| {
                let content = s.presence.known(user)?;
                Some(json!({ "type": "m.presence", "sender": user, "content": content }))
            })
            .collect();
        Ok(Json(json!({
            "end": end.to_string(),
            "rooms": rooms,
            "account_data": account_data,
            "presence": presence,
        })))
    })
}

/// One room of the global snapshot, as its own `initialSync` answers.
fn snapshot_json(s: &Services, caller: &Caller, room: &RoomId, limit: u32) -> Result<Value> {
    let room_sync = snapshot(s, caller, room, limit)?;
    Ok(json!({
        "room_id": room_sync.room_id,
        "membership": room_sync.membership,
        "messages": room_sync.messages,
        "state": room_sync.state,
        "visibility": room_sync.visibility,
        "account_data": room_sync.account_data,
    }))
}
