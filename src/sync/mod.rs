//! `/sync` (v3): initial and incremental, long-polling until something for
//! the user arrives.

pub mod filter;
mod room;

use axum::routing::get;
use axum::Router;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::http::extract::{query_param, Auth};
use crate::http::Caller;
use crate::services::presence::Update;
use crate::services::Services;
use filter::Filter;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new().route(&crate::client::v3("/sync"), get(sync))
}

/// Longest long-poll a client may ask for.
const MAX_TIMEOUT: Duration = Duration::from_secs(120);

struct SyncParams {
    since: u64,
    full_state: bool,
    filter: Filter,
}

fn load_filter(s: &Services, caller: &Caller, raw: Option<&str>) -> Result<Filter> {
    match raw {
        None => Ok(Filter::default()),
        Some(text) if text.trim_start().starts_with('{') => {
            let value: Value = serde_json::from_str(text)
                .map_err(|e| Error::not_json(format!("Invalid filter: {e}")))?;
            Filter::from_json(&value)
        }
        Some(id) => {
            let value = crate::client::user_data::stored_filter(s, &caller.user_id, id)?
                .ok_or_else(|| Error::not_found("Unknown filter"))?;
            Filter::from_json(&value)
        }
    }
}

pub async fn sync(
    State(s): State<Arc<Services>>,
    Auth(caller): Auth,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<Value>> {
    let since = match query_param(&q, "since") {
        Some(t) => t
            .parse::<u64>()
            .map_err(|_| Error::invalid_param("Invalid since token"))?,
        None => 0,
    };
    let timeout = match query_param(&q, "timeout") {
        Some(t) => Duration::from_millis(
            t.parse::<u64>()
                .map_err(|_| Error::invalid_param("Invalid timeout"))?,
        ),
        None => Duration::ZERO,
    }
    .min(MAX_TIMEOUT);
    let full_state = match query_param(&q, "full_state") {
        Some("true") => true,
        Some("false") | None => false,
        Some(_) => return Err(Error::invalid_param("full_state must be true or false")),
    };
    // Syncing marks the user online unless the client says otherwise;
    // `offline` means "do not change it".
    match query_param(&q, "set_presence").unwrap_or("online") {
        "offline" => s.presence.note_seen(&caller.user_id),
        p @ ("online" | "unavailable") => {
            s.presence
                .update(&caller.user_id, Update::FromSync(p))
                .await?
        }
        _ => {
            return Err(Error::invalid_param(
                "set_presence must be online, offline or unavailable",
            ))
        }
    }
    let params = SyncParams {
        since,
        full_state,
        filter: load_filter(&s, &caller, query_param(&q, "filter"))?,
    };
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        // Subscribed before looking: a write that lands while this sync
        // builds its answer still wakes it. Only the caller's own writes
        // and their joined rooms' wake it.
        let rooms = s.rooms.rooms_of(&caller.user_id)?;
        let joined = rooms
            .iter()
            .filter(|(_, m)| m.membership == "join")
            .map(|(room, _)| room);
        let mut waiting = s.store.notifier.subscribe(&caller.user_id, joined);
        let next = s.store.position();
        let (response, empty) = build(&s, &caller, &params, next, rooms).await?;
        if !empty || since == 0 || full_state || tokio::time::Instant::now() >= deadline {
            s.presence.note_seen(&caller.user_id);
            return Ok(Json(response));
        }
        if tokio::time::timeout_at(deadline, waiting.changed())
            .await
            .is_err()
        {
            let rooms = s.rooms.rooms_of(&caller.user_id)?;
            let (response, _) = build(&s, &caller, &params, s.store.position(), rooms).await?;
            s.presence.note_seen(&caller.user_id);
            return Ok(Json(response));
        }
    }
}

/// Whether an incremental sync can pass over a joined room: nothing was
/// written in it (events, receipts, typing) and no account data of it
/// changed since the token.
fn unchanged(
    s: &Services,
    p: &SyncParams,
    room: &ruma::RoomId,
    since: u64,
    account_data: &[crate::services::account_data::AccountDataEntry],
) -> bool {
    since > 0
        && !p.full_state
        && !s.store.notifier.room_changed_since(room, since)
        && !account_data
            .iter()
            .any(|e| e.room_id.as_deref() == Some(room))
}

/// The answer at stream position `next`, over the user's rooms (each with
/// the user's membership), read once by the caller.
async fn build(
    s: &Services,
    caller: &Caller,
    p: &SyncParams,
    next: u64,
    rooms: Vec<(
        ruma::OwnedRoomId,
        crate::rooms::membership::MembershipRecord,
    )>,
) -> Result<(Value, bool)> {
    let user = &caller.user_id;
    let since = p.since.min(next);
    let mut joined = Map::new();
    let mut invited = Map::new();
    let mut knocked = Map::new();
    let mut left = Map::new();
    let mut member_changes = room::MemberChanges::default();
    let account_data = s.account_data.changed_since(user, since)?;
    for (room_id, membership) in rooms {
        if !p.filter.room.allows_room(room_id.as_str()) || membership.count > next {
            continue;
        }
        let fresh = membership.count > since;
        match membership.membership.as_str() {
            "join" if !fresh && unchanged(s, p, &room_id, since, &account_data) => {}
            "join" => {
                let ctx = room::RoomSync {
                    s,
                    caller,
                    room_id: &room_id,
                    since,
                    next,
                    full_state: p.full_state,
                    filter: &p.filter,
                    account_data: &account_data,
                };
                if let Some(body) = ctx.joined(fresh, &mut member_changes)? {
                    joined.insert(room_id.to_string(), body);
                }
            }
            "invite" if fresh => {
                invited.insert(
                    room_id.to_string(),
                    json!({ "invite_state": { "events": membership.stripped_state } }),
                );
            }
            "knock" if fresh => {
                knocked.insert(
                    room_id.to_string(),
                    json!({ "knock_state": { "events": membership.stripped_state } }),
                );
            }
            "leave" | "ban" if fresh && (since > 0 || p.filter.room.include_leave) => {
                let ctx = room::RoomSync {
                    s,
                    caller,
                    room_id: &room_id,
                    since,
                    next: membership.count,
                    full_state: p.full_state,
                    filter: &p.filter,
                    account_data: &account_data,
                };
                left.insert(room_id.to_string(), ctx.left()?);
            }
            _ => {}
        }
    }
    let to_device = s
        .keys
        .take_to_device(user, &caller.device_id, since, next)
        .await?;
    let mut global: Vec<Value> = account_data
        .iter()
        .filter(|e| e.room_id.is_none())
        .map(|e| json!({ "type": e.kind, "content": e.content }))
        .collect();
    // Push rules start as server defaults that were never written: a first
    // sync still shows them, as Synapse does.
    if since == 0 && !global.iter().any(|e| e["type"] == "m.push_rules") {
        global.push(s.push.account_data_event(user)?);
    }
    let presence = presence_events(s, user, &p.filter, since, next)?;
    let (changed, left_users) = if since > 0 {
        device_list_changes(s, user, since, next, member_changes)?
    } else {
        (vec![], vec![])
    };
    let empty = joined.is_empty()
        && invited.is_empty()
        && knocked.is_empty()
        && left.is_empty()
        && to_device.is_empty()
        && global.is_empty()
        && presence.is_empty()
        && changed.is_empty()
        && left_users.is_empty();
    let response = json!({
        "next_batch": next.to_string(),
        "rooms": { "join": joined, "invite": invited, "knock": knocked, "leave": left },
        "account_data": { "events": global },
        "presence": { "events": presence },
        "to_device": { "events": to_device.into_iter().map(|m| m.json).collect::<Vec<_>>() },
        "device_lists": { "changed": changed, "left": left_users },
        "device_one_time_keys_count": s.keys.one_time_key_counts(user, &caller.device_id)?,
        "device_unused_fallback_key_types": s.keys.unused_fallback_types(user, &caller.device_id)?,
    });
    Ok((response, empty))
}

/// `m.presence` of the user and of people they share a room with, changed
/// in the sync window.
fn presence_events(
    s: &Services,
    user: &ruma::UserId,
    filter: &Filter,
    since: u64,
    next: u64,
) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let limit = filter.presence.limit.unwrap_or(usize::MAX);
    for (other, content) in s.presence.changed(since, next) {
        if out.len() >= limit {
            break;
        }
        if !filter
            .presence
            .allows_type_and_sender("m.presence", other.as_str())
            || !s.rooms.share_a_room(user, &other)?
        {
            continue;
        }
        out.push(json!({ "type": "m.presence", "sender": other, "content": content }));
    }
    Ok(out)
}

/// Whose device lists the user must re-fetch (`changed`) or may forget
/// (`left`): key changes of people they share a room with, people who joined
/// a shared room, and people they no longer share any room with.
fn device_list_changes(
    s: &Services,
    user: &ruma::UserId,
    since: u64,
    next: u64,
    members: room::MemberChanges,
) -> Result<(Vec<String>, Vec<String>)> {
    let mut changed = BTreeSet::new();
    for other in s.keys.changed_users(since, next)? {
        if s.rooms.share_a_room(user, &other)? {
            changed.insert(other.to_string());
        }
    }
    for other in members.joined {
        if other != *user {
            changed.insert(other.to_string());
        }
    }
    let mut left = BTreeSet::new();
    for other in members.left {
        if other != *user && !s.rooms.share_a_room(user, &other)? {
            left.insert(other.to_string());
            changed.remove(other.as_str());
        }
    }
    Ok((changed.into_iter().collect(), left.into_iter().collect()))
}
