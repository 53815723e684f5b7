//! `/messages`, `/members`, `/joined_members`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Router;
use matrixos_storage::Direction;
use ruma::api::client::filter::RoomEventFilter;
use ruma::api::client::membership::{get_member_events, joined_members};
use ruma::api::client::message::get_message_events;
use ruma::api::Direction as Dir;
use ruma::serde::Raw;
use ruma::OwnedMxcUri;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::http::auth::Caller;
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::rooms::timeline::{parse_token, TimelinePos};
use crate::services::Services;
use crate::sync::filter::EventFilter;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .endpoint(messages)
        .reading(members)
        .reading(joined)
}

/// The page size asked for, capped at `max`.
pub fn page_limit(limit: ruma::UInt, max: usize) -> usize {
    usize::try_from(u64::from(limit)).map_or(max, |l| l.min(max))
}

/// The parts of a room event filter this server applies: types, senders
/// and lazy-loaded members.
pub fn event_filter(filter: RoomEventFilter) -> EventFilter {
    let users = |list: Vec<ruma::OwnedUserId>| list.into_iter().map(String::from).collect();
    EventFilter {
        limit: None,
        types: filter.types,
        not_types: filter.not_types,
        senders: filter.senders.map(users),
        not_senders: users(filter.not_senders),
        rooms: filter
            .rooms
            .map(|r| r.into_iter().map(String::from).collect()),
        not_rooms: filter.not_rooms.into_iter().map(String::from).collect(),
        lazy_load_members: !filter.lazy_load_options.is_disabled(),
        include_redundant_members: matches!(
            filter.lazy_load_options,
            ruma::api::client::filter::LazyLoadOptions::Enabled {
                include_redundant_members: true
            }
        ),
        unread_thread_notifications: false,
        contains_url: filter
            .url_filter
            .map(|f| f == ruma::api::client::filter::UrlFilter::EventsWithUrl),
    }
}

/// `/messages`. A backward page that reaches the start of what this server
/// has of a room asks the other servers in it for older events, then is
/// read again.
async fn messages(
    s: Arc<Services>,
    req: Ruma<get_message_events::v3::Request>,
) -> Result<get_message_events::v3::Response> {
    let (caller, body) = (req.caller, req.body);
    let room = body.room_id.clone();
    let limit = page_limit(body.limit, 1000);
    let page = {
        let (s, caller, body) = (s.clone(), caller.clone(), body.clone());
        crate::blocking::reads(move || read_messages(&s, &caller, body.clone()))?
    };
    let (response, at_start) = page;
    let Some(at_start) = at_start.filter(|_| limit > 0) else {
        return Ok(response);
    };
    let backfill = crate::federation::backfill::from_peers(&s, &room, at_start.short_room, limit);
    match backfill.await {
        Ok(true) => crate::blocking::reads(move || {
            let (mut response, at_start) = read_messages(&s, &caller, body.clone())?;
            // Older history may still be elsewhere: the page ends where a
            // further one would fetch it.
            if let Some(at_start) = at_start {
                if crate::federation::backfill::more_before(&s, at_start.short_room)? {
                    response.end = Some(at_start.cursor.token());
                }
            }
            Ok(response)
        }),
        Ok(false) => Ok(response),
        Err(e) => {
            tracing::info!(%room, error = %e, "history from other servers unavailable");
            Ok(response)
        }
    }
}

/// Where a backward page stopped at the start of a room's timeline here.
pub(super) struct AtStart {
    short_room: u64,
    cursor: TimelinePos,
}

/// One `/messages` page, and where it stopped if it is a backward page
/// that reached the start of the room's timeline here.
pub(super) fn read_messages(
    s: &Services,
    caller: &Caller,
    body: get_message_events::v3::Request,
) -> Result<(get_message_events::v3::Response, Option<AtStart>)> {
    let room = &body.room_id;
    let reader = s.rooms.reader(&caller.user_id, room)?;
    let (short_room, until) = (reader.short_room, reader.until);
    let direction = match body.dir {
        Dir::Backward => Direction::Backward,
        Dir::Forward => Direction::Forward,
    };
    let limit = page_limit(body.limit, 1000);
    let filter = event_filter(body.filter);
    let now = TimelinePos::live(s.store.position().min(until));
    let from = match body.from.as_deref() {
        Some(t) => parse_token(t)?.min(now),
        None if direction == Direction::Backward => now,
        None => TimelinePos::EARLIEST,
    };
    let to = body.to.as_deref().map(parse_token).transpose()?;
    let bound = match direction {
        Direction::Backward => to,
        Direction::Forward => Some(to.unwrap_or(now).min(now)),
    };
    let mut chunk = Vec::new();
    let mut senders = BTreeSet::new();
    let mut cursor = from;
    let mut end = None;
    if limit == 0 {
        // An empty page reads nothing, so it ends where it starts (when
        // anything lies beyond): reading an event would skip it.
        let beyond = s.rooms.timeline(short_room, from, direction, 1, bound)?;
        end = (!beyond.is_empty()).then_some(from);
    }
    let rounds = if limit == 0 { 0 } else { 20 };
    // Filtered-out events still move the cursor; read in bounded rounds.
    for _ in 0..rounds {
        let page = s
            .rooms
            .timeline(short_room, cursor, direction, limit.max(1), bound)?;
        let exhausted = page.len() < limit.max(1);
        for entry in &page {
            cursor = match direction {
                Direction::Backward => entry.pos.before(),
                Direction::Forward => entry.pos,
            };
            if chunk.len() < limit && filter.allows(&entry.pdu) && reader.can_see_entry(entry)? {
                senders.insert(entry.pdu.sender.clone());
                // Events stay JSON text from store to socket.
                chunk.push(Raw::from_json(reader.client_event(
                    entry.short,
                    &entry.pdu,
                    Some(room),
                    Some(&caller.device_id),
                )?));
            }
            if chunk.len() >= limit {
                break;
            }
        }
        if chunk.len() >= limit || exhausted {
            if !exhausted || chunk.len() >= limit {
                end = Some(cursor);
            }
            break;
        }
    }
    let at_start = (direction == Direction::Backward && to.is_none() && end.is_none())
        .then_some(AtStart { short_room, cursor });
    let mut response = get_message_events::v3::Response::new();
    response.chunk = chunk;
    response.start = from.token();
    response.end = end.map(TimelinePos::token);
    let member_state = match filter.lazy_load_members && !senders.is_empty() {
        true => reader.readable_state().ok(),
        false => None,
    };
    if let Some(hash) = member_state {
        for sender in senders {
            if let Some(ev) = s
                .rooms
                .state_event(hash, "m.room.member", sender.as_str())?
            {
                let json = ev.to_client_raw(Some(room), Default::default())?;
                response.state.push(Raw::from_json(json));
            }
        }
    }
    Ok((response, at_start))
}

/// The `membership` of a member event's content.
#[derive(Deserialize)]
struct Membership {
    membership: String,
}

fn members(
    s: Arc<Services>,
    req: Ruma<get_member_events::v3::Request>,
) -> Result<get_member_events::v3::Response> {
    let body = &req.body;
    let room = &body.room_id;
    let reader = s.rooms.reader(&req.caller.user_id, room)?;
    let hash = match body.at.as_deref() {
        Some(at) => reader.readable_state_at(parse_token(at)?)?,
        None => reader.readable_state()?,
    };
    let state = s.rooms.state.load(hash)?;
    let mut chunk = Vec::new();
    for (short_key, short_event) in state.iter() {
        let (kind, _) = s.rooms.state.key_of(*short_key)?;
        if kind != "m.room.member" {
            continue;
        }
        let pdu = s.rooms.pdu_by_short(*short_event)?;
        let m = serde_json::from_str::<Membership>(pdu.content.get())
            .map(|c| c.membership)
            .unwrap_or_default();
        let is = |want: &Option<ruma::events::room::member::MembershipState>| {
            want.as_ref().map(|w| w.as_str() == m)
        };
        if is(&body.membership) == Some(false) || is(&body.not_membership) == Some(true) {
            continue;
        }
        let json = s
            .rooms
            .client_event_raw(*short_event, &pdu, Some(room), None)?;
        chunk.push(Raw::from_json(json));
    }
    Ok(get_member_events::v3::Response::new(chunk))
}

/// The profile a member event carries; anything unreadable is left out.
#[derive(Deserialize, Default)]
struct Profile {
    displayname: Option<String>,
    avatar_url: Option<OwnedMxcUri>,
}

fn joined(
    s: Arc<Services>,
    req: Ruma<joined_members::v3::Request>,
) -> Result<joined_members::v3::Response> {
    let room = &req.body.room_id;
    let reader = s.rooms.reader(&req.caller.user_id, room)?;
    if reader.until != u64::MAX {
        return Err(Error::forbidden("You are not in this room"));
    }
    let (short_room, record) = s.rooms.record_of(room)?;
    let mut joined = BTreeMap::new();
    for (user, membership) in s.rooms.members(short_room)? {
        if membership != "join" {
            continue;
        }
        let profile = s
            .rooms
            .state_event(record.state, "m.room.member", user.as_str())?
            .and_then(|e| serde_json::from_str::<Profile>(e.content.get()).ok())
            .unwrap_or_default();
        let mut member = joined_members::v3::RoomMember::new();
        member.display_name = profile.displayname;
        member.avatar_url = profile.avatar_url;
        joined.insert(user, member);
    }
    Ok(joined_members::v3::Response::new(joined))
}
