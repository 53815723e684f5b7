//! Join, invite, leave, kick, ban, unban, knock, forget, joined_rooms.

use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use ruma::{OwnedRoomId, RoomAliasId, RoomId, UserId};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::http::extract::{opt_str, req_str, Auth, JsonBody};
use crate::services::membership::set_membership;
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route(&super::v3("/join/{room_id_or_alias}"), post(join))
        .route(&super::v3("/knock/{room_id_or_alias}"), post(knock))
        .route(&super::v3("/joined_rooms"), get(joined_rooms))
        .route(&super::v3("/rooms/{room_id}/join"), post(join))
        .route(&super::v3("/rooms/{room_id}/leave"), post(leave))
        .route(&super::v3("/rooms/{room_id}/invite"), post(invite))
        .route(&super::v3("/rooms/{room_id}/kick"), post(kick))
        .route(&super::v3("/rooms/{room_id}/ban"), post(ban))
        .route(&super::v3("/rooms/{room_id}/unban"), post(unban))
        .route(&super::v3("/rooms/{room_id}/forget"), post(forget))
}

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
