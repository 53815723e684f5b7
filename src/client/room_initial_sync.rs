//! `GET /rooms/{roomId}/initialSync`, the room snapshot of the old API that
//! bridges and older clients still read: the state, the latest messages,
//! the caller's membership and room account data, the directory
//! visibility.

use std::sync::Arc;

use axum::Router;
use ruma::api::client::message::get_message_events;
use ruma::api::client::peeking::get_current_state::v3 as initial_sync;
use ruma::api::client::room::Visibility;
use ruma::api::Direction as Dir;
use ruma::events::room::member::MembershipState;
use ruma::serde::Raw;

use super::room_events::readable_state_events;
use super::room_history::read_messages;
use crate::error::Result;
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;

/// Messages in the snapshot, as Synapse gives.
const MESSAGES: u32 = 10;

pub fn routes() -> Router<Arc<Services>> {
    Router::new().reading(room_initial_sync)
}

/// What the caller may read of the room (403 if they were never in it and
/// it is not world-readable), messages oldest first.
fn room_initial_sync(
    s: Arc<Services>,
    req: Ruma<initial_sync::Request>,
) -> Result<initial_sync::Response> {
    let (caller, room) = (&req.caller, &req.body.room_id);
    let state = readable_state_events(&s, &caller.user_id, room)?;
    let mut page = get_message_events::v3::Request::new(room.clone(), Dir::Backward);
    page.limit = MESSAGES.into();
    let (page, _) = read_messages(&s, caller, page)?;
    let mut chunk = page.chunk;
    chunk.reverse();
    // `end` is where the page began (now); `start` where it stopped, none
    // at the room's first event.
    let mut messages = initial_sync::PaginationChunk::new(chunk, page.start);
    messages.start = page.end;
    let mut out = initial_sync::Response::new(room.clone());
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
        .filter(|e| e.room_id.as_ref() == Some(room))
        .map(|e| Ok(Raw::from_json(serde_json::value::to_raw_value(&e.event())?)))
        .collect::<Result<_>>()?;
    Ok(out)
}
