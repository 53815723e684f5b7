//! `/v1/room_summary/{roomIdOrAlias}` (MSC3266, and its unstable path): a
//! preview of a room this server holds, for anyone who may join or read it
//! or is in it; the caller's membership when signed in.

use std::sync::Arc;

use axum::Router;
use ruma::api::client::room::get_summary;
use ruma::events::room::join_rules::RoomJoinRulesEventContent;
use ruma::room::{JoinRuleSummary, RoomSummary};
use ruma::{OwnedMxcUri, OwnedRoomAliasId, OwnedRoomId, RoomId, ServerName, UInt, UserId};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new().reading(summary)
}

fn summary(
    s: Arc<Services>,
    req: Ruma<get_summary::v1::Request>,
) -> Result<get_summary::v1::Response> {
    // Rooms not held here are not previewed (that needs the federation
    // hierarchy API): not found, as for a room one may not see. So an alias
    // is looked up here only; a caller, who may be anonymous, never makes
    // this server call another.
    let not_found = || Error::not_found("Room not found or not visible");
    let room = match <&ruma::RoomId>::try_from(&*req.body.room_id_or_alias) {
        Ok(room) => room.to_owned(),
        Err(alias) => s.rooms.alias_target(alias)?.ok_or_else(not_found)?,
    };
    let viewer = match &req.caller {
        Some(caller) => Viewer::User(&caller.user_id),
        None => Viewer::Anyone,
    };
    let preview = preview(&s, &room, viewer)?.ok_or_else(not_found)?;
    let mut response = get_summary::v1::Response::new(preview.summary);
    response.membership = preview.membership.map(|m| m.as_str().into());
    Ok(response)
}

/// What a room held here looks like to someone outside it.
pub struct Preview {
    pub summary: RoomSummary,
    /// The caller's membership, if any.
    pub membership: Option<String>,
    /// The room's current state.
    pub state: u64,
}

/// Who asks for a preview.
#[derive(Clone, Copy)]
pub enum Viewer<'a> {
    Anyone,
    User(&'a UserId),
    /// Another server, for its users (the federation hierarchy).
    Server(&'a ServerName),
}

/// A room's preview, if the viewer may see it: Synapse's rule: it is
/// world-readable, or anyone may join or knock, or the user is in it,
/// invited or knocking, or may join it through a room they are in
/// (restricted); a server, when it has a member in the room or in a room
/// that lets people join this one.
pub fn preview(s: &Services, room: &RoomId, viewer: Viewer<'_>) -> Result<Option<Preview>> {
    let Ok((short_room, record)) = s.rooms.record_of(room) else {
        return Ok(None);
    };
    let state = record.state;
    let content = |kind: &str| -> Result<Option<Value>> {
        Ok(s.rooms
            .state_event(state, kind, "")?
            .map(|e| e.content_value()))
    };
    let text = |kind: &str, field: &str| -> Result<Option<String>> {
        Ok(content(kind)?.and_then(|c| c.get(field)?.as_str().map(str::to_owned)))
    };
    let join_rule: JoinRuleSummary = content("m.room.join_rules")?
        .and_then(|c| serde_json::from_value::<RoomJoinRulesEventContent>(c).ok())
        .map_or(JoinRuleSummary::Invite, |c| c.join_rule.into());
    let world_readable = text("m.room.history_visibility", "history_visibility")?.as_deref()
        == Some("world_readable");
    let membership = match viewer {
        Viewer::User(user) => s.rooms.membership(user, room)?.map(|m| m.membership),
        _ => None,
    };
    let in_room = match viewer {
        Viewer::Server(server) => s.rooms.servers_in_room(room)?.iter().any(|x| x == server),
        _ => matches!(membership.as_deref(), Some("join" | "invite" | "knock")),
    };
    let anyone_may_ask = matches!(
        join_rule,
        JoinRuleSummary::Public | JoinRuleSummary::Knock | JoinRuleSummary::KnockRestricted(_)
    );
    let through_a_room = match &join_rule {
        JoinRuleSummary::Restricted(rule) => may_join_through(s, &rule.allowed_room_ids, viewer)?,
        _ => false,
    };
    if !(world_readable || anyone_may_ask || in_room || through_a_room) {
        return Ok(None);
    }
    let joined = s
        .rooms
        .members(short_room)?
        .iter()
        .filter(|(_, m)| m == "join")
        .count();
    let guest_can_join =
        text("m.room.guest_access", "guest_access")?.as_deref() == Some("can_join");
    let mut summary = RoomSummary::new(
        room.to_owned(),
        join_rule,
        guest_can_join,
        UInt::new_saturating(joined as u64),
        world_readable,
    );
    summary.name = text("m.room.name", "name")?;
    summary.topic = text("m.room.topic", "topic")?;
    summary.avatar_url = text("m.room.avatar", "url")?.map(OwnedMxcUri::from);
    summary.canonical_alias =
        text("m.room.canonical_alias", "alias")?.and_then(|a| OwnedRoomAliasId::try_from(a).ok());
    summary.room_type = text("m.room.create", "type")?.map(Into::into);
    summary.encryption = text("m.room.encryption", "algorithm")?.map(Into::into);
    summary.room_version = Some(record.version.clone());
    Ok(Some(Preview {
        summary,
        membership,
        state,
    }))
}

/// Whether the viewer is in one of the rooms that let their members join
/// a restricted room.
fn may_join_through(s: &Services, allowed: &[OwnedRoomId], viewer: Viewer<'_>) -> Result<bool> {
    match viewer {
        Viewer::Anyone => Ok(false),
        Viewer::User(user) => {
            let joined = s.rooms.joined_rooms(user)?;
            Ok(allowed.iter().any(|r| joined.contains(r)))
        }
        Viewer::Server(server) => {
            for room in allowed {
                if s.rooms.short_room(room)?.is_some()
                    && s.rooms.servers_in_room(room)?.iter().any(|x| x == server)
                {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}
