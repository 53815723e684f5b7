//! Membership changes by local users (people and AI users alike): the
//! member event's content, restricted-join authorisation, and sending it.

use ruma::events::StateEventType;
use ruma::{OwnedServerName, RoomId, UserId};
use serde_json::{json, Value};

use super::Services;
use crate::error::{Error, Result};
use crate::federation::remote_membership;
use crate::rooms::send::EventDraft;

/// The `displayname` and `avatar_url` a member event carries for a user.
pub fn profile_content(s: &Services, user: &UserId) -> Result<serde_json::Map<String, Value>> {
    let mut content = serde_json::Map::new();
    if let Some(profile) = s.accounts.get(user)? {
        if let Some(d) = profile.displayname {
            content.insert("displayname".into(), json!(d));
        }
        if let Some(a) = profile.avatar_url {
            content.insert("avatar_url".into(), json!(a));
        }
    }
    Ok(content)
}

/// For a join to a restricted room by someone not invited: a local member
/// who may invite, vouching that the joiner is in one of the allowed rooms.
pub(crate) fn restricted_join_authoriser(
    s: &Services,
    room: &RoomId,
    user: &UserId,
) -> Result<Option<ruma::OwnedUserId>> {
    let (short_room, record) = s.rooms.record_of(room)?;
    let Some(join_rules) = s.rooms.state_event(record.state, "m.room.join_rules", "")? else {
        return Ok(None);
    };
    let content = join_rules.content_value();
    let rule = content
        .get("join_rule")
        .and_then(Value::as_str)
        .unwrap_or("");
    if rule != "restricted" && rule != "knock_restricted" {
        return Ok(None);
    }
    if s.rooms
        .membership(user, room)?
        .is_some_and(|m| m.membership == "invite" || m.membership == "join")
    {
        return Ok(None);
    }
    let allowed = content
        .get("allow")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let in_allowed_room = allowed.iter().any(|a| {
        a.get("type").and_then(Value::as_str) == Some("m.room_membership")
            && a.get("room_id")
                .and_then(Value::as_str)
                .and_then(|r| RoomId::parse(r).ok())
                .is_some_and(|r| s.rooms.is_joined(user, &r).unwrap_or(false))
    });
    if !in_allowed_room {
        return Ok(None);
    }
    for (member, membership) in s.rooms.members(short_room)? {
        if membership == "join"
            && s.accounts.is_local(&member)
            && s.rooms.has_level(&record, &member, "invite", 0)?
        {
            return Ok(Some(member));
        }
    }
    Ok(None)
}

/// No membership but leaving (or a ban) in a room an admin blocked: no
/// join, invite or knock (Synapse's 403, with its `M_UNKNOWN`).
pub fn check_not_blocked(s: &Services, room: &RoomId, membership: &str) -> Result<()> {
    if !matches!(membership, "leave" | "ban") && s.rooms.blocked_by(room)?.is_some() {
        return Err(Error::new(
            http::StatusCode::FORBIDDEN,
            "M_UNKNOWN",
            "This room has been blocked on this server",
        ));
    }
    Ok(())
}

/// Sends a member event for `target` as `sender`.
pub async fn set_membership(
    s: &Services,
    sender: &UserId,
    room: &RoomId,
    target: &UserId,
    membership: &str,
    reason: Option<&str>,
) -> Result<()> {
    check_not_blocked(s, room, membership)?;
    if s.rooms.short_room(room)?.is_none() {
        return Err(Error::not_found("Room not found"));
    }
    let mut content = if matches!(membership, "join" | "invite" | "knock") {
        profile_content(s, target)?
    } else {
        serde_json::Map::new()
    };
    content.insert("membership".into(), json!(membership));
    if membership == "join" && sender == target {
        if let Some(via) = restricted_join_authoriser(s, room, target)? {
            content.insert("join_authorised_via_users_server".into(), json!(via));
        }
    }
    let mut content = Value::Object(content);
    if let Some(reason) = reason {
        content["reason"] = json!(reason);
    }
    let draft = EventDraft::state(StateEventType::RoomMember, target.as_str(), content);
    if membership == "invite" && target.server_name() != s.server_name {
        return crate::federation::invites::invite_remote(s, sender, room, target, draft).await;
    }
    s.rooms.send(sender, room, draft, None).await?;
    Ok(())
}

/// The server of whoever invited `user` to a room this server is not in.
/// A server that is in a room this one is not, known from the user's
/// pending membership: the inviter's server for an invite; for a knock,
/// the servers whose users sent the room's stripped state.
pub fn resident_servers(
    s: &Services,
    user: &UserId,
    room: &RoomId,
) -> Result<Vec<OwnedServerName>> {
    let Some(m) = s.rooms.membership(user, room)? else {
        return Ok(Vec::new());
    };
    let mut servers: Vec<OwnedServerName> = Vec::new();
    match m.membership.as_str() {
        "invite" => {
            let invite = s.rooms.pdu_by_short(m.event)?;
            servers.push(invite.sender.server_name().to_owned());
        }
        "knock" => {
            for event in &m.stripped_state {
                let sender = event["sender"].as_str().and_then(|u| UserId::parse(u).ok());
                if let Some(server) = sender.map(|u| u.server_name().to_owned()) {
                    if server != s.server_name && !servers.contains(&server) {
                        servers.push(server);
                    }
                }
            }
        }
        _ => {}
    }
    Ok(servers)
}

/// The other servers that were in a room when this server left it.
fn last_known_servers(s: &Services, room: &RoomId) -> Result<Vec<OwnedServerName>> {
    if s.rooms.short_room(room)?.is_none() {
        return Ok(Vec::new());
    }
    s.rooms.servers_in_room(room)
}

/// Joins `user` to `room` unless already joined: through this server when
/// it is in the room, else through one of `servers` or the inviter's.
pub async fn join_room(
    s: &Services,
    user: &UserId,
    room: &RoomId,
    servers: &[OwnedServerName],
    reason: Option<&str>,
) -> Result<()> {
    if s.rooms.is_joined(user, room)? {
        return Ok(());
    }
    check_not_blocked(s, room, "join")?;
    if !s.rooms.has_joined_member(room)? {
        let mut servers = servers.to_vec();
        servers.extend(resident_servers(s, user, room)?);
        servers.extend(last_known_servers(s, room)?);
        return remote_membership::join(s, user, room, &servers, reason).await;
    }
    set_membership(s, user, room, user, "join", reason).await
}

/// Leaves `room` (or declines an invite to it): through the inviter's
/// server when this one is not in the room.
pub async fn leave_room(
    s: &Services,
    user: &UserId,
    room: &RoomId,
    reason: Option<&str>,
) -> Result<()> {
    if !s.rooms.has_joined_member(room)? {
        let mut servers = resident_servers(s, user, room)?;
        servers.extend(remote_membership::join_servers(room, &[]));
        return remote_membership::leave(s, user, room, &servers, reason).await;
    }
    set_membership(s, user, room, user, "leave", reason).await
}

/// Knocks on `room`: through this server when it is in the room, else
/// through one of `servers`.
pub async fn knock_room(
    s: &Services,
    user: &UserId,
    room: &RoomId,
    servers: &[OwnedServerName],
    reason: Option<&str>,
) -> Result<()> {
    check_not_blocked(s, room, "knock")?;
    if !s.rooms.has_joined_member(room)? {
        return remote_membership::knock(s, user, room, servers, reason).await;
    }
    set_membership(s, user, room, user, "knock", reason).await
}
