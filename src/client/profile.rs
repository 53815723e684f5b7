//! Profiles: display name and avatar, mirrored into joined rooms' member events.

use std::sync::Arc;

use axum::Router;
use ruma::api::client::profile::{get_profile, get_profile_field, set_profile_field};
use ruma::api::federation::query::get_profile_information;
use ruma::events::StateEventType;
use ruma::profile::{ProfileFieldName, ProfileFieldValue};
use ruma::{MxcUri, UserId};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::rooms::send::EventDraft;
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

/// A display name and avatar, local or another server's.
struct Profile {
    displayname: Option<String>,
    avatar_url: Option<String>,
}

/// The profile asked for: a local account's, or asked of the user's server.
async fn profile_of(s: &Services, user: &UserId) -> Result<Profile> {
    if user.server_name() == s.server_name {
        let record = s
            .accounts
            .get(user)?
            .ok_or_else(|| Error::not_found("Profile not found"))?;
        return Ok(Profile {
            displayname: record.displayname,
            avatar_url: record.avatar_url,
        });
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
    let text = |field: &str| {
        remote
            .get(field)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    Ok(Profile {
        displayname: text("displayname"),
        avatar_url: text("avatar_url"),
    })
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
    let record = profile_of(&s, &req.body.user_id).await?;
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
    let record = profile_of(&s, &req.body.user_id).await?;
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
