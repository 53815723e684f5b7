//! `/v1/room_summary/{roomIdOrAlias}` (MSC3266, and its unstable path): a
//! preview of a room this server holds, for anyone who may join or read it
//! or is in it; the caller's membership when signed in.

use std::sync::Arc;

use axum::Router;
use ruma::api::client::room::get_summary;
use ruma::events::room::join_rules::RoomJoinRulesEventContent;
use ruma::room::{JoinRuleSummary, RoomSummary};
use ruma::{OwnedMxcUri, OwnedRoomAliasId, RoomId, UInt, UserId};
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
    let user = req.caller.as_ref().map(|c| c.user_id.as_ref());
    let preview = preview(&s, &room, user)?.ok_or_else(not_found)?;
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

/// A room's preview, if the user (or anyone, for `None`) may see it:
/// Synapse's rule: it is world-readable, or anyone may join or knock, or
/// the user is in it, invited or knocking, or may join it through a room
/// they are in (restricted).
pub fn preview(s: &Services, room: &RoomId, user: Option<&UserId>) -> Result<Option<Preview>> {
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
    let membership = match user {
        Some(user) => s.rooms.membership(user, room)?.map(|m| m.membership),
        None => None,
    };
    let in_room = matches!(membership.as_deref(), Some("join" | "invite" | "knock"));
    let anyone_may_ask = matches!(
        join_rule,
        JoinRuleSummary::Public | JoinRuleSummary::Knock | JoinRuleSummary::KnockRestricted(_)
    );
    let through_a_room = match (&join_rule, user) {
        (JoinRuleSummary::Restricted(rule), Some(user)) => {
            let joined = s.rooms.joined_rooms(user)?;
            rule.allowed_room_ids.iter().any(|r| joined.contains(r))
        }
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
