//! `POST /createRoom`.

use axum::routing::post;
use axum::Router;
use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use ruma::{RoomAliasId, RoomVersionId, UserId};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::http::extract::{opt_bool, opt_str, Auth, JsonBody};
use crate::rooms::create::{CreateRoom, Preset};
use crate::rooms::send::EventDraft;
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new().route(&super::v3("/createRoom"), post(create_room))
}

fn parse(s: &Services, creator: &UserId, body: &Value) -> Result<CreateRoom> {
    let visibility = opt_str(body, "visibility")?.unwrap_or("private");
    let preset = match opt_str(body, "preset")? {
        Some("private_chat") => Preset::PrivateChat,
        Some("trusted_private_chat") => Preset::TrustedPrivateChat,
        Some("public_chat") => Preset::PublicChat,
        Some(other) => return Err(Error::invalid_param(format!("Unknown preset {other}"))),
        None if visibility == "public" => Preset::PublicChat,
        None => Preset::PrivateChat,
    };
    let version = opt_str(body, "room_version")?.unwrap_or(&s.config.default_room_version);
    let version = RoomVersionId::try_from(version)
        .map_err(|_| Error::unsupported_room_version("Invalid room version"))?;
    let alias = match opt_str(body, "room_alias_name")? {
        Some(local) => Some(
            RoomAliasId::parse(format!("#{local}:{}", s.server_name))
                .map_err(|_| Error::invalid_param("Invalid room alias"))?,
        ),
        None => None,
    };
    let invite = match body.get("invite") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(list)) => list
            .iter()
            .map(|u| {
                u.as_str()
                    .and_then(|u| UserId::parse(u).ok())
                    .ok_or_else(|| Error::invalid_param("invite must list user ids"))
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(Error::bad_json("invite must be a list")),
    };
    let object = |field: &str| -> Result<Option<serde_json::Map<String, Value>>> {
        match body.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m.clone())),
            Some(_) => Err(Error::bad_json(format!("{field} must be an object"))),
        }
    };
    let mut initial_state = Vec::new();
    if let Some(list) = body.get("initial_state") {
        let list = list
            .as_array()
            .ok_or_else(|| Error::bad_json("initial_state must be a list"))?;
        for ev in list {
            let kind = ev
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::bad_json("initial_state event needs a type"))?;
            let key = ev.get("state_key").and_then(Value::as_str).unwrap_or("");
            let content = ev
                .get("content")
                .filter(|c| c.is_object())
                .ok_or_else(|| Error::bad_json("initial_state event needs content"))?;
            initial_state.push(EventDraft::state(kind.into(), key, content.clone()));
        }
    }
    Ok(CreateRoom {
        version,
        preset,
        name: opt_str(body, "name")?.map(str::to_owned),
        topic: opt_str(body, "topic")?.map(str::to_owned),
        alias,
        invite,
        is_direct: opt_bool(body, "is_direct")?.unwrap_or(false),
        creation_content: object("creation_content")?.unwrap_or_default(),
        power_level_override: object("power_level_content_override")?,
        initial_state,
        creator_profile: crate::services::membership::profile_content(s, creator)?,
    })
}

pub async fn create_room(
    State(s): State<Arc<Services>>,
    Auth(caller): Auth,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let opts = parse(&s, &caller.user_id, &body)?;
    let public = opt_str(&body, "visibility")? == Some("public");
    let room_id = s.rooms.create_room(&caller.user_id, opts).await?;
    if public {
        s.rooms.set_published(&room_id, true).await?;
    }
    tracing::info!(room = %room_id, creator = %caller.user_id, "room created");
    Ok(Json(json!({ "room_id": room_id })))
}
