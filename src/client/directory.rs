//! `/directory/room/{alias}`, `/rooms/{id}/aliases`, `/directory/list/room`
//! and `/publicRooms`.

use std::sync::Arc;

use axum::Router;
use ruma::api::client::alias::{create_alias, delete_alias, get_alias};
use ruma::api::client::directory::{
    get_public_rooms, get_public_rooms_filtered, get_room_visibility, set_room_visibility,
};
use ruma::api::client::room::{aliases, Visibility};
use ruma::directory::{PublicRoomsChunk, PublicRoomsChunkInit};
use ruma::events::room::guest_access::GuestAccess;
use ruma::events::room::history_visibility::HistoryVisibility;
use ruma::room::JoinRuleKind;
use ruma::{RoomAliasId, RoomId, UInt};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .endpoint(get_alias)
        .endpoint(put_alias)
        .endpoint(delete_alias)
        .endpoint(room_aliases)
        .endpoint(get_visibility)
        .merge(crate::http::body_check::before_parsing(
            Router::new().endpoint(set_visibility),
            visibility_defaults_to_public,
        ))
        .endpoint(get_public_rooms)
        .endpoint(post_public_rooms)
}

/// Aliases of other servers need federation.
fn check_local(s: &Services, alias: &RoomAliasId) -> Result<()> {
    if alias.server_name() != s.server_name {
        return Err(Error::invalid_param("Room alias is not on this server"));
    }
    Ok(())
}

async fn get_alias(
    s: Arc<Services>,
    req: Ruma<get_alias::v3::Request>,
) -> Result<get_alias::v3::Response> {
    let alias = &req.body.room_alias;
    check_local(&s, alias)?;
    let room = s
        .rooms
        .alias_target(alias)?
        .ok_or_else(|| Error::not_found("Room alias not found"))?;
    Ok(get_alias::v3::Response::new(
        room,
        vec![s.server_name.clone()],
    ))
}

async fn put_alias(
    s: Arc<Services>,
    req: Ruma<create_alias::v3::Request>,
) -> Result<create_alias::v3::Response> {
    let (alias, room, caller) = (&req.body.room_alias, &req.body.room_id, &req.caller);
    check_local(&s, alias)?;
    if s.rooms.short_room(room)?.is_none() {
        return Err(Error::not_found("Unknown room"));
    }
    // Only members may name a room (Synapse checks the same): an alias is
    // public, and whoever made it may delete it again.
    if !s.rooms.is_joined(&caller.user_id, room)? {
        return Err(Error::forbidden("You are not in this room"));
    }
    s.rooms.set_alias(alias, room, &caller.user_id).await?;
    Ok(create_alias::v3::Response::new())
}

async fn delete_alias(
    s: Arc<Services>,
    req: Ruma<delete_alias::v3::Request>,
) -> Result<delete_alias::v3::Response> {
    let (alias, caller) = (&req.body.room_alias, &req.caller.user_id);
    check_local(&s, alias)?;
    let record = s
        .rooms
        .alias(alias)?
        .ok_or_else(|| Error::not_found("Room alias not found"))?;
    let admin = s.accounts.get(caller)?.is_some_and(|u| u.admin);
    let may = record.creator == *caller || admin || {
        let (_, room) = s.rooms.record_of(&record.room_id)?;
        s.rooms.has_level(&room, caller, "state_default", 50)?
    };
    if !may {
        return Err(Error::forbidden("You may not delete this alias"));
    }
    s.rooms.delete_alias(alias, &record).await?;
    Ok(delete_alias::v3::Response::new())
}

async fn room_aliases(
    s: Arc<Services>,
    req: Ruma<aliases::v3::Request>,
) -> Result<aliases::v3::Response> {
    let room = &req.body.room_id;
    s.rooms
        .reader(&req.caller.user_id, room)?
        .readable_state()?;
    Ok(aliases::v3::Response::new(s.rooms.aliases_of(room)?))
}

async fn get_visibility(
    s: Arc<Services>,
    req: Ruma<get_room_visibility::v3::Request>,
) -> Result<get_room_visibility::v3::Response> {
    let room = &req.body.room_id;
    s.rooms.record_of(room)?;
    let visibility = if s.rooms.is_published(room)? {
        Visibility::Public
    } else {
        Visibility::Private
    };
    Ok(get_room_visibility::v3::Response::new(visibility))
}

/// A directory visibility request without `visibility` publishes the
/// room, as Synapse does; ruma would refuse it.
fn visibility_defaults_to_public(body: &[u8]) -> Result<Option<Vec<u8>>> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body) {
        Ok(mut map) if !map.contains_key("visibility") => {
            map.insert("visibility".into(), "public".into());
            Ok(Some(serde_json::to_vec(&map)?))
        }
        // Present, or not a JSON object: the extractor answers.
        _ => Ok(None),
    }
}

async fn set_visibility(
    s: Arc<Services>,
    req: Ruma<set_room_visibility::v3::Request>,
) -> Result<set_room_visibility::v3::Response> {
    let (room, caller) = (&req.body.room_id, &req.caller.user_id);
    let (_, record) = s.rooms.record_of(room)?;
    let public = match req.body.visibility {
        Visibility::Public => true,
        Visibility::Private => false,
        _ => return Err(Error::invalid_param("visibility must be public or private")),
    };
    if !s.rooms.is_joined(caller, room)?
        || !s.rooms.has_level(&record, caller, "state_default", 50)?
    {
        return Err(Error::forbidden(
            "You may not change this room's visibility",
        ));
    }
    s.rooms.set_published(room, public).await?;
    Ok(set_room_visibility::v3::Response::new())
}

/// One field of a state event's content (state key ""), if it is there
/// and of the expected type.
fn state_field<T: DeserializeOwned>(
    s: &Services,
    state: u64,
    kind: &str,
    field: &str,
) -> Result<Option<T>> {
    Ok(s.rooms.state_event(state, kind, "")?.and_then(|event| {
        let value = event.content_value().get(field)?.clone();
        serde_json::from_value(value).ok()
    }))
}

/// One directory entry, from the room's current state.
fn room_summary(s: &Services, room: &RoomId) -> Result<PublicRoomsChunk> {
    let (short, record) = s.rooms.record_of(room)?;
    let state = record.state;
    let joined = s
        .rooms
        .members(short)?
        .iter()
        .filter(|(_, m)| m == "join")
        .count();
    let history: Option<HistoryVisibility> =
        state_field(s, state, "m.room.history_visibility", "history_visibility")?;
    let guests: Option<GuestAccess> = state_field(s, state, "m.room.guest_access", "guest_access")?;
    let mut entry = PublicRoomsChunk::from(PublicRoomsChunkInit {
        num_joined_members: UInt::new_saturating(joined as u64),
        room_id: room.to_owned(),
        world_readable: history == Some(HistoryVisibility::WorldReadable),
        guest_can_join: guests == Some(GuestAccess::CanJoin),
    });
    entry.join_rule =
        state_field(s, state, "m.room.join_rules", "join_rule")?.unwrap_or(JoinRuleKind::Invite);
    entry.name = state_field(s, state, "m.room.name", "name")?;
    entry.topic = state_field(s, state, "m.room.topic", "topic")?;
    entry.canonical_alias = state_field(s, state, "m.room.canonical_alias", "alias")?;
    entry.avatar_url = state_field(s, state, "m.room.avatar", "url")?;
    entry.room_type = state_field(s, state, "m.room.create", "type")?;
    Ok(entry)
}

/// Whether the entry's name, topic or alias contains `term`, in any case.
fn matches(entry: &PublicRoomsChunk, term: &str) -> bool {
    let term = term.to_lowercase();
    let alias = entry.canonical_alias.as_ref().map(|a| a.as_str());
    [entry.name.as_deref(), entry.topic.as_deref(), alias]
        .into_iter()
        .flatten()
        .any(|v| v.to_lowercase().contains(&term))
}

/// A page of the directory: both `/publicRooms` endpoints answer this.
struct Page {
    chunk: Vec<PublicRoomsChunk>,
    next_batch: Option<String>,
    prev_batch: Option<String>,
    total: UInt,
}

fn public_rooms(
    s: &Services,
    limit: Option<UInt>,
    since: Option<&str>,
    term: Option<&str>,
) -> Result<Page> {
    let mut entries = Vec::new();
    for room in s.rooms.published_rooms()? {
        let entry = room_summary(s, &room)?;
        if term.is_none_or(|t| matches(&entry, t)) {
            entries.push(entry);
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.num_joined_members));
    let total = entries.len();
    let start: usize = match since {
        Some(t) => t
            .parse()
            .map_err(|_| Error::invalid_param("Invalid since token"))?,
        None => 0,
    };
    let limit = limit
        .map_or(total, |l| usize::try_from(l).unwrap_or(usize::MAX))
        .max(1);
    let next = start.saturating_add(limit);
    Ok(Page {
        chunk: entries.into_iter().skip(start).take(limit).collect(),
        next_batch: (next < total).then(|| next.to_string()),
        prev_batch: (start > 0).then(|| start.saturating_sub(limit).to_string()),
        total: UInt::new_saturating(total as u64),
    })
}

async fn get_public_rooms(
    s: Arc<Services>,
    req: Ruma<get_public_rooms::v3::Request>,
) -> Result<get_public_rooms::v3::Response> {
    let page = public_rooms(&s, req.body.limit, req.body.since.as_deref(), None)?;
    let mut out = get_public_rooms::v3::Response::new(page.chunk);
    out.next_batch = page.next_batch;
    out.prev_batch = page.prev_batch;
    out.total_room_count_estimate = Some(page.total);
    Ok(out)
}

async fn post_public_rooms(
    s: Arc<Services>,
    req: Ruma<get_public_rooms_filtered::v3::Request>,
) -> Result<get_public_rooms_filtered::v3::Response> {
    let body = req.body;
    let term = body.filter.generic_search_term.as_deref();
    let page = public_rooms(&s, body.limit, body.since.as_deref(), term)?;
    let mut out = get_public_rooms_filtered::v3::Response::new();
    out.chunk = page.chunk;
    out.next_batch = page.next_batch;
    out.prev_batch = page.prev_batch;
    out.total_room_count_estimate = Some(page.total);
    Ok(out)
}
