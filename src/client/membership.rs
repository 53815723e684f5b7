//! Join, invite, leave, kick, ban, unban, knock, forget, joined_rooms.

use std::sync::Arc;

use axum::Router;
use ruma::api::client::knock::knock_room;
use ruma::api::client::membership::{
    ban_user, forget_room, invite_user, join_room_by_id, join_room_by_id_or_alias, joined_rooms,
    kick_user, leave_room, unban_user,
};
use ruma::api::federation::query::get_room_information::v1 as room_information;
use ruma::{OwnedRoomId, OwnedServerName, RoomId, RoomOrAliasId, UserId};

use crate::error::{Error, Result};
use crate::federation::remote_membership;
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::http::Caller;
use crate::services::membership::{join_room, knock_room, leave_room, set_membership};
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .endpoint(join_by_id_or_alias)
        .endpoint(join_by_id)
        .endpoint(knock)
        .endpoint(joined)
        .endpoint(leave)
        .endpoint(forget)
        .merge(crate::http::body_check::before_parsing(
            Router::new()
                .endpoint(invite)
                .endpoint(kick)
                .endpoint(ban)
                .endpoint(unban),
            user_id_as_synapse,
        ))
}

/// Synapse's answers on the `user_id` of invite, kick, ban and unban
/// bodies, where ruma finds the body malformed (`M_BAD_JSON`): none is
/// `M_MISSING_PARAM`, one that is not a user id `M_INVALID_PARAM`. A
/// third-party invite is the handler's to refuse; a body that is no JSON
/// object the extractor's.
fn user_id_as_synapse(body: &[u8]) -> Result<Option<Vec<u8>>> {
    use invite_user::v3::InvitationRecipient;
    /// The one field looked at.
    #[derive(serde::Deserialize)]
    struct Target {
        #[allow(dead_code)]
        user_id: ruma::OwnedUserId,
    }
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    let object = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body);
    if object.is_err() || serde_json::from_slice::<InvitationRecipient>(body).is_ok() {
        return Ok(None);
    }
    match serde_json::from_slice::<Target>(body) {
        Ok(_) => Ok(None),
        Err(e) if e.to_string().starts_with("missing field") => {
            Err(Error::missing_param("Missing 'user_id'"))
        }
        Err(e) => Err(Error::invalid_param(format!("Invalid 'user_id': {e}"))),
    }
}

pub fn parse_room(s: &str) -> Result<OwnedRoomId> {
    RoomId::parse(s).map_err(|_| Error::invalid_param("Invalid room id"))
}

/// A room id with the servers to join it through: the `via` servers and
/// the one in its id; an alias resolved here or by its server.
pub(crate) async fn resolve(
    s: &Services,
    id_or_alias: &RoomOrAliasId,
    via: &[OwnedServerName],
) -> Result<(OwnedRoomId, Vec<OwnedServerName>)> {
    let alias = match <&RoomId>::try_from(id_or_alias) {
        Ok(room) => return Ok((room.to_owned(), remote_membership::join_servers(room, via))),
        Err(alias) => alias,
    };
    if alias.server_name() == s.server_name {
        let room = s
            .rooms
            .alias_target(alias)?
            .ok_or_else(|| Error::not_found("Room alias not found"))?;
        return Ok((room, via.to_vec()));
    }
    let request = room_information::Request::new(alias.to_owned());
    let answer = s
        .federation
        .client
        .send(alias.server_name(), request)
        .await?;
    let mut servers = answer.servers;
    servers.extend(via.iter().cloned());
    Ok((answer.room_id, servers))
}

async fn join_by_id_or_alias(
    s: Arc<Services>,
    req: Ruma<join_room_by_id_or_alias::v3::Request>,
) -> Result<join_room_by_id_or_alias::v3::Response> {
    let (room, servers) = resolve(&s, &req.body.room_id_or_alias, &req.body.via).await?;
    join_as(&s, &req.caller, &room, &servers, req.body.reason.as_deref()).await?;
    Ok(join_room_by_id_or_alias::v3::Response::new(room))
}

async fn join_by_id(
    s: Arc<Services>,
    req: Ruma<join_room_by_id::v3::Request>,
) -> Result<join_room_by_id::v3::Response> {
    let room = req.body.room_id;
    let servers = remote_membership::join_servers(&room, &[]);
    join_as(&s, &req.caller, &room, &servers, req.body.reason.as_deref()).await?;
    Ok(join_room_by_id::v3::Response::new(room))
}

/// Joins the caller to a room: a guest only to a room held here that lets
/// guests in.
async fn join_as(
    s: &Services,
    caller: &Caller,
    room: &RoomId,
    servers: &[OwnedServerName],
    reason: Option<&str>,
) -> Result<()> {
    if caller.guest {
        return super::guests::join(s, &caller.user_id, room, reason).await;
    }
    join_room(s, &caller.user_id, room, servers, reason).await
}

async fn knock(
    s: Arc<Services>,
    req: Ruma<knock_room::v3::Request>,
) -> Result<knock_room::v3::Response> {
    let (room, servers) = resolve(&s, &req.body.room_id_or_alias, &req.body.via).await?;
    let user = &req.caller.user_id;
    knock_room(&s, user, &room, &servers, req.body.reason.as_deref()).await?;
    Ok(knock_room::v3::Response::new(room))
}

async fn leave(
    s: Arc<Services>,
    req: Ruma<leave_room::v3::Request>,
) -> Result<leave_room::v3::Response> {
    let (user, room) = (&req.caller.user_id, &req.body.room_id);
    match s.rooms.membership(user, room)? {
        Some(m) if m.membership == "leave" || m.membership == "ban" => {}
        Some(_) => leave_room(&s, user, room, req.body.reason.as_deref()).await?,
        None => return Err(Error::forbidden("You are not in this room")),
    }
    Ok(leave_room::v3::Response::new())
}

/// A member event about someone else: invite, kick, ban, unban.
async fn about_other(
    s: &Services,
    sender: &UserId,
    room: &RoomId,
    target: &UserId,
    membership: &str,
    reason: Option<&str>,
) -> Result<()> {
    if membership == "invite" && s.accounts.is_local(target) && !s.accounts.exists(target)? {
        return Err(Error::not_found("No such user"));
    }
    set_membership(s, sender, room, target, membership, reason).await
}

/// `user`'s membership in the room's current state.
fn current_membership(s: &Services, room: &RoomId, user: &UserId) -> Result<Option<String>> {
    let (_, record) = s.rooms.record_of(room)?;
    let member = s
        .rooms
        .state_event(record.state, "m.room.member", user.as_str())?;
    Ok(member.and_then(|m| {
        let content = m.content_value();
        content.get("membership")?.as_str().map(str::to_owned)
    }))
}

async fn invite(
    s: Arc<Services>,
    req: Ruma<invite_user::v3::Request>,
) -> Result<invite_user::v3::Response> {
    let invite_user::v3::InvitationRecipient::UserId(recipient) = req.body.recipient else {
        return Err(Error::forbidden("Third-party invites are not supported"));
    };
    let (sender, room) = (&req.caller.user_id, &req.body.room_id);
    let reason = recipient.reason.as_deref();
    if current_membership(&s, room, &recipient.user_id)?.as_deref() == Some("ban") {
        return Err(Error::forbidden("The user is banned: unban them first"));
    }
    about_other(&s, sender, room, &recipient.user_id, "invite", reason).await?;
    Ok(invite_user::v3::Response::new())
}

async fn kick(
    s: Arc<Services>,
    req: Ruma<kick_user::v3::Request>,
) -> Result<kick_user::v3::Response> {
    let b = &req.body;
    let reason = b.reason.as_deref();
    // Only someone in the room (joined, invited, knocking) can be kicked: a
    // banned user is unbanned, not kicked, as Synapse has it.
    match current_membership(&s, &b.room_id, &b.user_id)?.as_deref() {
        Some("join" | "invite" | "knock") => {}
        Some("ban") => return Err(Error::forbidden("The user is banned: unban them instead")),
        _ => return Err(Error::forbidden("The user is not in the room")),
    }
    about_other(
        &s,
        &req.caller.user_id,
        &b.room_id,
        &b.user_id,
        "leave",
        reason,
    )
    .await?;
    Ok(kick_user::v3::Response::new())
}

async fn ban(s: Arc<Services>, req: Ruma<ban_user::v3::Request>) -> Result<ban_user::v3::Response> {
    let b = &req.body;
    let reason = b.reason.as_deref();
    about_other(
        &s,
        &req.caller.user_id,
        &b.room_id,
        &b.user_id,
        "ban",
        reason,
    )
    .await?;
    Ok(ban_user::v3::Response::new())
}

async fn unban(
    s: Arc<Services>,
    req: Ruma<unban_user::v3::Request>,
) -> Result<unban_user::v3::Response> {
    let b = &req.body;
    let reason = b.reason.as_deref();
    about_other(
        &s,
        &req.caller.user_id,
        &b.room_id,
        &b.user_id,
        "leave",
        reason,
    )
    .await?;
    Ok(unban_user::v3::Response::new())
}

async fn forget(
    s: Arc<Services>,
    req: Ruma<forget_room::v3::Request>,
) -> Result<forget_room::v3::Response> {
    let (user, room) = (&req.caller.user_id, &req.body.room_id);
    match s.rooms.membership(user, room)? {
        Some(m)
            if m.membership == "join" || m.membership == "invite" || m.membership == "knock" =>
        {
            Err(Error::new(
                http::StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                "Leave the room before forgetting it",
            ))
        }
        Some(_) => {
            s.rooms.forget(user, room).await?;
            Ok(forget_room::v3::Response::new())
        }
        None => Err(Error::not_found("You were never in this room")),
    }
}

async fn joined(
    s: Arc<Services>,
    req: Ruma<joined_rooms::v3::Request>,
) -> Result<joined_rooms::v3::Response> {
    let rooms = s.rooms.joined_rooms(&req.caller.user_id)?;
    Ok(joined_rooms::v3::Response::new(rooms))
}
