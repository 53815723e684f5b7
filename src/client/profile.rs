//! Profiles: display name and avatar, mirrored into joined rooms' member events.

use std::sync::Arc;

use axum::Router;
use ruma::api::client::profile::{get_profile, get_profile_field, set_profile_field};
use ruma::events::StateEventType;
use ruma::profile::{ProfileFieldName, ProfileFieldValue};
use ruma::{MxcUri, UserId};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::rooms::send::EventDraft;
use crate::services::accounts::UserRecord;
use crate::services::Services;

pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .endpoint(whole_profile)
        .endpoint(get_field)
        .endpoint(set_field)
}

/// The longest display name and avatar URL, in characters (Synapse's
/// limits): both are copied into the member event of every joined room and
/// served to anyone by `/profile`.
const MAX_DISPLAYNAME_CHARS: usize = 256;
const MAX_AVATAR_URL_CHARS: usize = 1000;

/// Refuses a display name or avatar URL that is too long, and an avatar
/// that is not an `mxc://` URI (an empty one clears it).
fn check_value(name: &ProfileFieldName, value: &str) -> Result<()> {
    let max = if *name == ProfileFieldName::DisplayName {
        MAX_DISPLAYNAME_CHARS
    } else {
        MAX_AVATAR_URL_CHARS
    };
    if value.chars().count() > max {
        return Err(Error::invalid_param(format!(
            "'{name}' is longer than {max} characters"
        )));
    }
    if *name == ProfileFieldName::AvatarUrl
        && !value.is_empty()
        && <&MxcUri>::from(value).validate().is_err()
    {
        return Err(Error::invalid_param("'avatar_url' must be an mxc:// URI"));
    }
    Ok(())
}

/// The account whose profile is asked for.
fn profile_of(s: &Services, user: &UserId) -> Result<UserRecord> {
    s.accounts
        .get(user)?
        .ok_or_else(|| Error::not_found("Profile not found"))
}

/// The profile fields this server keeps: display name and avatar.
fn supported(field: &ProfileFieldName) -> Result<()> {
    match field {
        ProfileFieldName::DisplayName | ProfileFieldName::AvatarUrl => Ok(()),
        _ => Err(Error::unrecognized("Unsupported profile field")),
    }
}

async fn whole_profile(
    s: Arc<Services>,
    req: Ruma<get_profile::v3::Request>,
) -> Result<get_profile::v3::Response> {
    let record = profile_of(&s, &req.body.user_id)?;
    let mut out = get_profile::v3::Response::new();
    if let Some(d) = record.displayname {
        out.set("displayname".to_owned(), json!(d));
    }
    if let Some(a) = record.avatar_url {
        out.set("avatar_url".to_owned(), json!(a));
    }
    Ok(out)
}

async fn get_field(
    s: Arc<Services>,
    req: Ruma<get_profile_field::v3::Request>,
) -> Result<get_profile_field::v3::Response> {
    let field = &req.body.field;
    supported(field)?;
    let record = profile_of(&s, &req.body.user_id)?;
    let value = match field {
        ProfileFieldName::DisplayName => record.displayname.map(ProfileFieldValue::DisplayName),
        _ => record
            .avatar_url
            .map(|a| ProfileFieldValue::AvatarUrl(a.into())),
    };
    value
        .map(get_profile_field::v3::Response::new)
        .ok_or_else(|| Error::not_found("Profile field not set"))
}

async fn set_field(
    s: Arc<Services>,
    req: Ruma<set_profile_field::v3::Request>,
) -> Result<set_profile_field::v3::Response> {
    let user = req.body.user_id;
    if user != req.caller.user_id {
        return Err(Error::forbidden("Cannot set another user's profile"));
    }
    let (field, value) = match req.body.value {
        ProfileFieldValue::DisplayName(d) => (ProfileFieldName::DisplayName, d),
        ProfileFieldValue::AvatarUrl(a) => (ProfileFieldName::AvatarUrl, a.to_string()),
        _ => return Err(Error::unrecognized("Unsupported profile field")),
    };
    check_value(&field, &value)?;
    // An empty value clears the field.
    let value = Some(value).filter(|v| !v.is_empty());
    if field == ProfileFieldName::DisplayName {
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
    Ok(set_profile_field::v3::Response::new())
}
