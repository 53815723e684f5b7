//! Profiles: display name, avatar and the other fields of extended profiles
//! (`m.tz`, custom ones, v1.16); the display name and avatar are mirrored
//! into joined rooms' member events.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use ruma::api::client::profile::{
    delete_profile_field, get_profile, get_profile_field, set_profile_field,
};
use ruma::api::federation::query::get_profile_information;
use ruma::events::StateEventType;
use ruma::profile::{ProfileFieldName, ProfileFieldValue};
use ruma::{MxcUri, UserId};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::rooms::send::EventDraft;
use crate::services::accounts::profile_fields;
use crate::services::Services;

pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .endpoint(whole_profile)
        .endpoint(get_field)
        .endpoint(set_field)
        .endpoint(delete_field)
}

/// The longest display name and avatar URL, in characters (Synapse's
/// limits): both are copied into the member event of every joined room and
/// served to anyone by `/profile`.
const MAX_DISPLAYNAME_CHARS: usize = 256;
const MAX_AVATAR_URL_CHARS: usize = 1000;
/// The longest field name, in bytes (the spec's limit).
const MAX_KEY_BYTES: usize = 255;

/// The fields copied into member events.
fn in_member_events(key: &str) -> bool {
    key == "displayname" || key == "avatar_url"
}

/// Refuses a field name that is too long (`M_KEY_TOO_LARGE`) or outside
/// the spec's grammar: `displayname`, `avatar_url`, `m.tz` or a namespaced
/// identifier of lower-case parts (`M_INVALID_PARAM`).
fn check_key(key: &str) -> Result<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::new(
            http::StatusCode::BAD_REQUEST,
            "M_KEY_TOO_LARGE",
            "Profile field names are at most 255 bytes",
        ));
    }
    let part = |p: &str| {
        p.starts_with(|c: char| c.is_ascii_lowercase())
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    let namespaced = key.contains('.') && key.split('.').all(part);
    if in_member_events(key) || namespaced {
        Ok(())
    } else {
        Err(Error::invalid_param(format!(
            "'{key}' is not a valid profile field name"
        )))
    }
}

/// Refuses a display name or avatar URL that is not a string, is too long,
/// or (the avatar) is not an `mxc://` URI; an empty one clears the field.
fn check_value(key: &str, value: &Value) -> Result<()> {
    if !in_member_events(key) {
        return Ok(());
    }
    let Some(text) = value.as_str() else {
        return Err(Error::bad_json(format!("'{key}' must be a string")));
    };
    let max = if key == "displayname" {
        MAX_DISPLAYNAME_CHARS
    } else {
        MAX_AVATAR_URL_CHARS
    };
    if text.chars().count() > max {
        return Err(Error::invalid_param(format!(
            "'{key}' is longer than {max} characters"
        )));
    }
    if key == "avatar_url" && !text.is_empty() && <&MxcUri>::from(text).validate().is_err() {
        return Err(Error::invalid_param("'avatar_url' must be an mxc:// URI"));
    }
    Ok(())
}

/// Every field of the profile asked for: a local account's, or asked of
/// the user's server.
async fn profile_of(s: &Services, user: &UserId) -> Result<BTreeMap<String, Value>> {
    if user.server_name() == s.server_name {
        let record = s
            .accounts
            .get(user)?
            .ok_or_else(|| Error::not_found("Profile not found"))?;
        return Ok(profile_fields(&record));
    }
    let request = get_profile_information::v1::Request::new(user.to_owned());
    let remote = s
        .federation
        .client
        .send(user.server_name(), request)
        .await
        .map_err(|e| match e.status {
            http::StatusCode::NOT_FOUND => Error::not_found("Profile not found"),
            _ => e,
        })?;
    Ok(remote.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

async fn whole_profile(
    s: Arc<Services>,
    req: Ruma<get_profile::v3::Request>,
) -> Result<get_profile::v3::Response> {
    let mut out = get_profile::v3::Response::new();
    for (key, value) in profile_of(&s, &req.body.user_id).await? {
        out.set(key, value);
    }
    Ok(out)
}

async fn get_field(
    s: Arc<Services>,
    req: Ruma<get_profile_field::v3::Request>,
) -> Result<get_profile_field::v3::Response> {
    let key = req.body.field.as_str().to_owned();
    let not_set = || Error::not_found("Profile field not set");
    let value = profile_of(&s, &req.body.user_id)
        .await?
        .remove(&key)
        .ok_or_else(not_set)?;
    // Another server's display name that is not a string is no name.
    let value = ProfileFieldValue::new(&key, value).map_err(|_| not_set())?;
    Ok(get_profile_field::v3::Response::new(value))
}

/// Sets or removes one of the caller's own profile fields; a change of
/// display name or avatar goes into the member event of every joined room.
async fn change_field(
    s: &Services,
    caller: &UserId,
    user: &UserId,
    key: &str,
    value: Option<Value>,
) -> Result<()> {
    if user != caller {
        return Err(Error::forbidden("Cannot change another user's profile"));
    }
    check_key(key)?;
    if let Some(value) = &value {
        check_value(key, value)?;
    }
    // An empty display name or avatar clears the field.
    let value = value.filter(|v| !(in_member_events(key) && v.as_str() == Some("")));
    s.accounts.set_profile_field(user, key, value).await?;
    if !in_member_events(key) {
        return Ok(());
    }
    for room in s.rooms.joined_rooms(user)? {
        let mut content = crate::services::membership::profile_content(s, user)?;
        content.insert("membership".into(), json!("join"));
        let draft = EventDraft::state(
            StateEventType::RoomMember,
            user.as_str(),
            Value::Object(content),
        );
        if let Err(e) = s.rooms.send(user, &room, draft, None).await {
            tracing::warn!(room = %room, error = %e, "profile update not reflected in room");
        }
    }
    Ok(())
}

async fn set_field(
    s: Arc<Services>,
    req: Ruma<set_profile_field::v3::Request>,
) -> Result<set_profile_field::v3::Response> {
    let value = &req.body.value;
    let key = value.field_name();
    let json = value.value().into_owned();
    change_field(
        &s,
        &req.caller.user_id,
        &req.body.user_id,
        key.as_str(),
        Some(json),
    )
    .await?;
    Ok(set_profile_field::v3::Response::new())
}

async fn delete_field(
    s: Arc<Services>,
    req: Ruma<delete_profile_field::v3::Request>,
) -> Result<delete_profile_field::v3::Response> {
    let key: &ProfileFieldName = &req.body.field;
    change_field(
        &s,
        &req.caller.user_id,
        &req.body.user_id,
        key.as_str(),
        None,
    )
    .await?;
    Ok(delete_profile_field::v3::Response::new())
}
