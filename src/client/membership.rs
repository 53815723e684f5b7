//! Join, invite, leave, kick, ban, unban, knock, forget, joined_rooms.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use ruma::events::StateEventType;
use ruma::{OwnedRoomId, RoomAliasId, RoomId, UserId};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::http::extract::{opt_str, req_str, Auth, JsonBody};
use crate::rooms::send::EventDraft;
use crate::services::Services;

type S = State<Arc<Services>>;

pub fn parse_room(s: &str) -> Result<OwnedRoomId> {
    RoomId::parse(s).map_err(|_| Error::invalid_param("Invalid room id"))
}

/// Resolves a room id or a local alias.
fn resolve(s: &Services, id_or_alias: &str) -> Result<OwnedRoomId> {
    if id_or_alias.starts_with('#') {
        let alias = RoomAliasId::parse(id_or_alias)
            .map_err(|_| Error::invalid_param("Invalid room alias"))?;
        return s
            .rooms
            .alias_target(&alias)?
            .ok_or_else(|| Error::not_found("Room alias not found"));
    }
    parse_room(id_or_alias)
}

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
fn restricted_join_authoriser(
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

/// Sends a member event for `target` as `sender`.
async fn set_membership(
    s: &Services,
    sender: &UserId,
    room: &RoomId,
    target: &UserId,
    membership: &str,
    reason: Option<&str>,
) -> Result<()> {
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
    s.rooms.send(sender, room, draft, None).await?;
    Ok(())
}

pub async fn join(
    State(s): S,
    Auth(caller): Auth,
    Path(room): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let room = resolve(&s, &room)?;
    if !s.rooms.is_joined(&caller.user_id, &room)? {
        set_membership(
            &s,
            &caller.user_id,
            &room,
            &caller.user_id,
            "join",
            opt_str(&body, "reason")?,
        )
        .await?;
    }
    Ok(Json(json!({ "room_id": room })))
}

pub async fn knock(
    State(s): S,
    Auth(caller): Auth,
    Path(room): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let room = resolve(&s, &room)?;
    set_membership(
        &s,
        &caller.user_id,
        &room,
        &caller.user_id,
        "knock",
        opt_str(&body, "reason")?,
    )
    .await?;
    Ok(Json(json!({ "room_id": room })))
}

pub async fn leave(
    State(s): S,
    Auth(caller): Auth,
    Path(room): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    match s.rooms.membership(&caller.user_id, &room)? {
        Some(m) if m.membership == "leave" || m.membership == "ban" => {}
        Some(_) => {
            set_membership(
                &s,
                &caller.user_id,
                &room,
                &caller.user_id,
                "leave",
                opt_str(&body, "reason")?,
            )
            .await?
        }
        None => return Err(Error::forbidden("You are not in this room")),
    }
    Ok(Json(json!({})))
}

fn target(body: &Value) -> Result<ruma::OwnedUserId> {
    UserId::parse(req_str(body, "user_id")?).map_err(|_| Error::invalid_param("Invalid user_id"))
}

/// invite / kick / ban / unban: a member event about someone else.
async fn about_other(
    s: &Services,
    sender: &UserId,
    room: &str,
    body: &Value,
    membership: &str,
) -> Result<Json<Value>> {
    let room = parse_room(room)?;
    let target = target(body)?;
    if membership == "invite" && s.accounts.is_local(&target) && !s.accounts.exists(&target)? {
        return Err(Error::not_found("No such user"));
    }
    set_membership(
        s,
        sender,
        &room,
        &target,
        membership,
        opt_str(body, "reason")?,
    )
    .await?;
    Ok(Json(json!({})))
}

pub async fn invite(
    State(s): S,
    Auth(c): Auth,
    Path(room): Path<String>,
    JsonBody(b): JsonBody,
) -> Result<Json<Value>> {
    if b.get("id_server").is_some() || b.get("medium").is_some() {
        return Err(Error::forbidden("Third-party invites are not supported"));
    }
    about_other(&s, &c.user_id, &room, &b, "invite").await
}

pub async fn kick(
    State(s): S,
    Auth(c): Auth,
    Path(room): Path<String>,
    JsonBody(b): JsonBody,
) -> Result<Json<Value>> {
    about_other(&s, &c.user_id, &room, &b, "leave").await
}

pub async fn ban(
    State(s): S,
    Auth(c): Auth,
    Path(room): Path<String>,
    JsonBody(b): JsonBody,
) -> Result<Json<Value>> {
    about_other(&s, &c.user_id, &room, &b, "ban").await
}

pub async fn unban(
    State(s): S,
    Auth(c): Auth,
    Path(room): Path<String>,
    JsonBody(b): JsonBody,
) -> Result<Json<Value>> {
    about_other(&s, &c.user_id, &room, &b, "leave").await
}

pub async fn forget(
    State(s): S,
    Auth(caller): Auth,
    Path(room): Path<String>,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    match s.rooms.membership(&caller.user_id, &room)? {
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
            s.rooms.forget(&caller.user_id, &room).await?;
            Ok(Json(json!({})))
        }
        None => Err(Error::not_found("You were never in this room")),
    }
}

pub async fn joined_rooms(State(s): S, Auth(caller): Auth) -> Result<Json<Value>> {
    Ok(Json(
        json!({ "joined_rooms": s.rooms.joined_rooms(&caller.user_id)? }),
    ))
}
