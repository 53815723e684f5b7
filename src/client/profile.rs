//! Profiles: display name and avatar, mirrored into joined rooms' member events.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use ruma::events::StateEventType;
use ruma::{MxcUri, OwnedUserId, UserId};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::http::extract::{Auth, JsonBody};
use crate::rooms::send::EventDraft;
use crate::services::Services;

type S = State<Arc<Services>>;

fn parse_user(s: &str) -> Result<OwnedUserId> {
    UserId::parse(s).map_err(|_| Error::invalid_param("Invalid user id"))
}

fn field_name(field: &str) -> Result<&'static str> {
    match field {
        "displayname" => Ok("displayname"),
        "avatar_url" => Ok("avatar_url"),
        _ => Err(Error::unrecognized("Unsupported profile field")),
    }
}

/// The longest display name and avatar URL, in characters (Synapse's
/// limits): both are copied into the member event of every joined room and
/// served to anyone by `/profile`.
const MAX_DISPLAYNAME_CHARS: usize = 256;
const MAX_AVATAR_URL_CHARS: usize = 1000;

/// Refuses a display name or avatar URL that is too long, and an avatar
/// that is not an `mxc://` URI (an empty one clears it).
fn check_value(name: &str, value: &str) -> Result<()> {
    let max = if name == "displayname" {
        MAX_DISPLAYNAME_CHARS
    } else {
        MAX_AVATAR_URL_CHARS
    };
    if value.chars().count() > max {
        return Err(Error::invalid_param(format!(
            "'{name}' is longer than {max} characters"
        )));
    }
    if name == "avatar_url" && !value.is_empty() && <&MxcUri>::from(value).validate().is_err() {
        return Err(Error::invalid_param("'avatar_url' must be an mxc:// URI"));
    }
    Ok(())
}

pub async fn get_profile(State(s): S, Path(user): Path<String>) -> Result<Json<Value>> {
    let user = parse_user(&user)?;
    let record = s
        .accounts
        .get(&user)?
        .ok_or_else(|| Error::not_found("Profile not found"))?;
    let mut out = json!({});
    if let Some(d) = record.displayname {
        out["displayname"] = json!(d);
    }
    if let Some(a) = record.avatar_url {
        out["avatar_url"] = json!(a);
    }
    Ok(Json(out))
}

pub async fn get_field(
    State(s): S,
    Path((user, field)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let user = parse_user(&user)?;
    let name = field_name(&field)?;
    let record = s
        .accounts
        .get(&user)?
        .ok_or_else(|| Error::not_found("Profile not found"))?;
    let value = if name == "displayname" {
        record.displayname
    } else {
        record.avatar_url
    };
    match value {
        Some(v) => Ok(Json(json!({ name: v }))),
        None => Err(Error::not_found("Profile field not set")),
    }
}

pub async fn set_field(
    State(s): S,
    Auth(caller): Auth,
    Path((user, field)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let user = parse_user(&user)?;
    if user != caller.user_id {
        return Err(Error::forbidden("Cannot set another user's profile"));
    }
    let name = field_name(&field)?;
    let value = match body.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(v)) => Some(v.clone()),
        Some(_) => return Err(Error::bad_json(format!("'{name}' must be a string"))),
    };
    if let Some(value) = &value {
        check_value(name, value)?;
    }
    if name == "displayname" {
        s.accounts.set_profile(&user, Some(value), None).await?;
    } else {
        s.accounts.set_profile(&user, None, Some(value)).await?;
    }
    for room in s.rooms.joined_rooms(&user)? {
        let mut content = crate::services::membership::profile_content(&s, &user)?;
        content.insert("membership".into(), json!("join"));
        let draft = EventDraft::state(
            StateEventType::RoomMember,
            user.as_str(),
            Value::Object(content),
        );
        if let Err(e) = s.rooms.send(&user, &room, draft, None).await {
            tracing::warn!(room = %room, error = %e, "profile update not reflected in room");
        }
    }
    Ok(Json(json!({})))
}
