//! `/sync` (v3): initial and incremental, long-polling until something for
//! the user arrives.

mod answer_extras;
pub mod filter;
mod peeked;
pub(crate) mod room;
pub mod sends_in_flight;
pub mod sharing;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use ruma::api::client::sync::sync_events::v3::{
    Filter as FilterParam, GlobalAccountData, InviteState, InvitedRoom, KnockState, KnockedRoom,
    Presence, Request, Response, Rooms, ToDevice,
};
use ruma::api::client::sync::sync_events::DeviceLists;
use ruma::serde::Raw;
use ruma::{OwnedUserId, UInt};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::http::Caller;
use crate::services::peeks::Peek;
use crate::services::presence::Update;
use crate::services::Services;
use filter::Filter;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .endpoint(sync)
        .layer(axum::middleware::from_fn(answer_extras::restore))
}

/// Longest long-poll a client may ask for.
const MAX_TIMEOUT: Duration = Duration::from_secs(120);

struct SyncParams {
    since: u64,
    full_state: bool,
    /// `use_state_after` (v1.16): rooms carry `state_after`.
    state_after: bool,
    filter: Filter,
    /// Whose events and invites are not sent (`m.ignored_user_list`).
    ignored: BTreeSet<OwnedUserId>,
}

/// What a room's part of an answer is read with.
struct RoomScope<'a> {
    s: &'a Services,
    caller: &'a Caller,
    account_data: &'a [crate::services::account_data::AccountDataEntry],
}

impl SyncParams {
    /// The reading of one room's events after `since` up to `next`.
    fn room<'a>(
        &'a self,
        scope: &RoomScope<'a>,
        room_id: &'a ruma::RoomId,
        (since, next): (u64, u64),
    ) -> room::RoomSync<'a> {
        room::RoomSync {
            s: scope.s,
            caller: scope.caller,
            room_id,
            since,
            next,
            full_state: self.full_state,
            state_after: self.state_after,
            filter: &self.filter,
            ignored: &self.ignored,
            account_data: scope.account_data,
        }
    }
}

/// JSON built by the server, typed as what the response holds there.
fn raw<T>(value: &impl Serialize) -> Result<Raw<T>> {
    Ok(Raw::from_json(serde_json::value::to_raw_value(value)?))
}

fn load_filter(s: &Services, caller: &Caller, param: Option<FilterParam>) -> Result<Filter> {
    match param {
        None => Ok(Filter::default()),
        Some(FilterParam::FilterDefinition(definition)) => {
            Filter::from_json(&serde_json::to_value(definition)?)
        }
        // ruma keeps JSON it could not read as a definition as an id.
        Some(FilterParam::FilterId(text)) if text.trim_start().starts_with('{') => {
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::not_json(format!("Invalid filter: {e}")))?;
            Filter::from_json(&value)
        }
        Some(FilterParam::FilterId(id)) => {
            let value = crate::client::user_data::stored_filter(s, &caller.user_id, &id)?
                .ok_or_else(|| Error::not_found("Unknown filter"))?;
            Filter::from_json(&value)
        }
        Some(_) => Err(Error::invalid_param("Unsupported filter")),
    }
}

/// A sync's `set_presence`: `online` or `unavailable` set it (passed on
/// to other servers when it changes); `offline` means "do not change it".
pub(crate) async fn apply_set_presence(
    s: &Services,
    user: &ruma::UserId,
    presence: &str,
) -> Result<()> {
    match presence {
        "offline" => s.presence.note_seen(user),
        "online" | "unavailable" => {
            if s.presence.update(user, Update::FromSync(presence)).await? {
                crate::federation::edus::presence_changed(s, user).await;
            }
        }
        _ => {
            return Err(Error::invalid_param(
                "set_presence must be online, offline or unavailable",
            ))
        }
    }
    Ok(())
}

/// Global account data changed since `since`; on a first sync (`since`
/// 0), also the push rules, which start as server defaults never written
/// and are shown all the same, as Synapse does.
pub(crate) fn global_account_data(
    s: &Services,
    user: &ruma::UserId,
    since: u64,
    changed: &[crate::services::account_data::AccountDataEntry],
) -> Result<Vec<serde_json::Value>> {
    let global = changed.iter().filter(|e| e.room_id.is_none());
    // Push rules as the server has them: stored ones merged with the
    // server's current defaults.
    let mut out = global
        .clone()
        .map(|e| match e.kind.as_str() {
            "m.push_rules" => s.push.account_data_event(user),
            _ => Ok(e.event()),
        })
        .collect::<Result<Vec<serde_json::Value>>>()?;
    if since == 0 && !global.clone().any(|e| e.kind == "m.push_rules") {
        out.push(s.push.account_data_event(user)?);
    }
    Ok(out)
}

async fn sync(s: Arc<Services>, req: Ruma<Request>) -> Result<Response> {
    let caller = req.caller;
    let req = req.body;
    let since = match req.since.as_deref() {
        Some(t) => t
            .parse::<u64>()
            .map_err(|_| Error::invalid_param("Invalid since token"))?,
        None => 0,
    };
    let timeout = req.timeout.unwrap_or_default().min(MAX_TIMEOUT);
    let full_state = req.full_state;
    // Syncing marks the user online unless the client says otherwise.
    apply_set_presence(&s, &caller.user_id, req.set_presence.as_str()).await?;
    let params = SyncParams {
        since,
        full_state,
        state_after: req.use_state_after,
        filter: load_filter(&s, &caller, req.filter)?,
        ignored: s.account_data.ignored_users(&caller.user_id)?,
    };
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        // Subscribed before looking: a write that lands while this sync
        // builds its answer still wakes it. Only the caller's own writes
        // and their joined rooms' wake it.
        let rooms = s.rooms.rooms_of(&caller.user_id)?;
        let peeks = peeked::settle(&s, &caller, &rooms).await?;
        let joined = rooms
            .iter()
            .filter(|(_, m)| m.membership == "join")
            .map(|(room, _)| room)
            .chain(peeked::active_rooms(&peeks));
        let mut waiting = s.store.notifier.subscribe(&caller.user_id, joined);
        // The device's own sends are answered before their echoes go out.
        s.sends_in_flight
            .settled(&caller.user_id, &caller.device_id)
            .await;
        let next = s.store.position();
        let (response, empty) = build(&s, &caller, &params, next, (rooms, &peeks)).await?;
        if !empty || since == 0 || full_state || tokio::time::Instant::now() >= deadline {
            s.presence.note_seen(&caller.user_id);
            return Ok(response);
        }
        if tokio::time::timeout_at(deadline, waiting.changed())
            .await
            .is_err()
        {
            let rooms = s.rooms.rooms_of(&caller.user_id)?;
            let next = s.store.position();
            let (response, _) = build(&s, &caller, &params, next, (rooms, &peeks)).await?;
            s.presence.note_seen(&caller.user_id);
            return Ok(response);
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

type Memberships = Vec<(
    ruma::OwnedRoomId,
    crate::rooms::membership::MembershipRecord,
)>;

/// The answer at stream position `next`, over the user's rooms (each with
/// the user's membership), read once by the caller.
async fn build(
    s: &Services,
    caller: &Caller,
    p: &SyncParams,
    next: u64,
    (rooms, peeks): (Memberships, &[Peek]),
) -> Result<(Response, bool)> {
    let user = &caller.user_id;
    let since = p.since.min(next);
    let account_data = s.account_data.changed_since(user, since)?;
    // The rooms are what reads the disk at length.
    let scope = RoomScope {
        s,
        caller,
        account_data: &account_data,
    };
    let (mut rooms_out, mut member_changes, peeked) = crate::blocking::reads(|| {
        let (rooms_out, mut changes) = rooms_part(&scope, p, (since, next), &rooms)?;
        let peeked = peeked::part(&scope, p, (since, next), peeks, &mut changes)?;
        Ok::<_, Error>((rooms_out, changes, peeked))
    })?;
    rooms_out.leave.extend(peeked.left);
    let to_device = s
        .keys
        .take_to_device(user, &caller.device_id, since, next)
        .await?;
    let global = global_account_data(s, user, since, &account_data)?
        .iter()
        .map(raw)
        .collect::<Result<Vec<_>>>()?;
    if !member_changes.carried.is_empty() {
        let carried = std::mem::take(&mut member_changes.carried);
        s.lazy_members
            .record((user, &caller.device_id), next, carried);
    }
    let mut met = std::mem::take(&mut member_changes.joined);
    for room in &member_changes.rooms_joined {
        if let Some(short_room) = s.rooms.short_room(room)? {
            let members = s.rooms.members(short_room)?.into_iter();
            met.extend(members.filter(|(_, m)| m == "join").map(|(u, _)| u));
        }
    }
    let presence = presence_events(s, user, &p.filter, (since, next), met)?;
    let mut device_lists = DeviceLists::new();
    if since > 0 {
        (device_lists.changed, device_lists.left) = device_list_changes(s, user, since, next)?;
    }
    let empty = rooms_out.is_empty()
        && rooms_out.knock.is_empty()
        && peeked.peek.is_empty()
        && to_device.is_empty()
        && global.is_empty()
        && presence.is_empty()
        && device_lists.is_empty();
    let mut response = Response::new(next.to_string());
    answer_extras::note_knocks(&rooms_out);
    answer_extras::note_peeks(&peeked.peek);
    response.rooms = rooms_out;
    response.account_data = GlobalAccountData::new();
    response.account_data.events = global;
    response.presence = Presence::new();
    response.presence.events = presence;
    response.to_device = ToDevice::new();
    response.to_device.events = to_device
        .iter()
        .map(|m| raw(&m.json))
        .collect::<Result<_>>()?;
    response.device_lists = device_lists;
    response.device_one_time_keys_count = s
        .keys
        .one_time_key_counts(user, &caller.device_id)?
        .into_iter()
        .map(|(algorithm, n)| (algorithm.into(), UInt::new_saturating(n)))
        .collect::<BTreeMap<_, _>>();
    response.device_unused_fallback_key_types = Some(
        s.keys
            .unused_fallback_types(user, &caller.device_id)?
            .into_iter()
            .map(Into::into)
            .collect(),
    );
    Ok((response, empty))
}

/// The `rooms` part of the answer, and whose membership changed in them.
fn rooms_part(
    scope: &RoomScope<'_>,
    p: &SyncParams,
    (since, next): (u64, u64),
    rooms: &Memberships,
) -> Result<(Rooms, room::MemberChanges)> {
    let (s, account_data) = (scope.s, scope.account_data);
    let mut rooms_out = Rooms::new();
    let mut member_changes = room::MemberChanges::default();
    for (room_id, membership) in rooms {
        if !p.filter.room.allows_room(room_id.as_str()) || membership.count > next {
            continue;
        }
        let fresh = membership.count > since;
        match membership.membership.as_str() {
            "join" if !fresh && unchanged(s, p, room_id, since, account_data) => {}
            "join" => {
                let ctx = p.room(scope, room_id, (since, next));
                if fresh && since > 0 {
                    member_changes.rooms_joined.push(room_id.clone());
                }
                if let Some(body) = ctx.joined(fresh, &mut member_changes)? {
                    rooms_out.join.insert(room_id.clone(), body);
                }
            }
            "invite" if fresh && !invited_by_ignored(p, &membership.stripped_state) => {
                let mut state = InviteState::new();
                state.events = raw_all(&membership.stripped_state)?;
                rooms_out
                    .invite
                    .insert(room_id.clone(), InvitedRoom::from(state));
            }
            "knock" if fresh => {
                let mut state = KnockState::new();
                state.events = raw_all(&membership.stripped_state)?;
                rooms_out
                    .knock
                    .insert(room_id.clone(), KnockedRoom::from(state));
            }
            "leave" | "ban" if fresh && (since > 0 || p.filter.room.include_leave) => {
                if s.rooms.short_room(room_id)?.is_none() {
                    // An invite rejected through another server: the leave
                    // is all there is of the room here.
                    rooms_out
                        .leave
                        .insert(room_id.clone(), room::left_unknown_room(s, membership)?);
                    continue;
                }
                let ctx = p.room(scope, room_id, (since, membership.count));
                let room = ctx.left()?;
                rooms_out.leave.insert(room_id.clone(), room);
            }
            _ => {}
        }
    }
    Ok((rooms_out, member_changes))
}

/// Whether an invite (its stripped state) comes from an ignored user.
fn invited_by_ignored(p: &SyncParams, stripped: &[serde_json::Value]) -> bool {
    let sender = stripped
        .iter()
        .rev()
        .find(|e| e.get("type").and_then(serde_json::Value::as_str) == Some("m.room.member"))
        .and_then(|e| e.get("sender"))
        .and_then(serde_json::Value::as_str);
    sender.is_some_and(|sender| p.ignored.iter().any(|u| u.as_str() == sender))
}

/// Stripped state as stored, typed for the response.
fn raw_all<T>(events: &[serde_json::Value]) -> Result<Vec<Raw<T>>> {
    events.iter().map(raw).collect()
}

/// `m.presence` of the user and of people they share a room with, changed
/// in the sync window; and of the people `met` in this window (who joined a
/// room of the user's, or are in a room the user joined), whenever theirs
/// last changed.
fn presence_events(
    s: &Services,
    user: &ruma::UserId,
    filter: &Filter,
    (since, next): (u64, u64),
    met: BTreeSet<OwnedUserId>,
) -> Result<Vec<Raw<ruma::events::presence::PresenceEvent>>> {
    let mut out = Vec::new();
    let limit = filter.presence.limit.unwrap_or(usize::MAX);
    let mut changed = s.presence.changed(since, next);
    if since > 0 {
        for other in met {
            if changed.iter().all(|(u, _)| *u != other) {
                if let Some(content) = s.presence.known(&other) {
                    changed.push((other, content));
                }
            }
        }
    }
    for (other, content) in changed {
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
        out.push(raw(
            &serde_json::json!({ "type": "m.presence", "sender": other, "content": content }),
        )?);
    }
    Ok(out)
}

/// Whose device lists the user must re-fetch (`changed`) or may forget
/// (`left`): key changes of the user and of people they share a room with,
/// people they started sharing a room with, and people they no longer
/// share any room with.
pub(crate) fn device_list_changes(
    s: &Services,
    user: &ruma::UserId,
    since: u64,
    next: u64,
) -> Result<(Vec<OwnedUserId>, Vec<OwnedUserId>)> {
    let mut changed = BTreeSet::new();
    for other in s.keys.changed_users(since, next)? {
        if other == *user || s.rooms.share_a_room(user, &other)? {
            changed.insert(other);
        }
    }
    let sharing = sharing::sharing_changes(s, user, since, next)?;
    changed.extend(sharing.started);
    Ok((
        changed.into_iter().collect(),
        sharing.stopped.into_iter().collect(),
    ))
}
