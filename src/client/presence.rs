//! `/presence/{userId}/status`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use ruma::api::client::presence::{get_presence, set_presence};
use ruma::events::presence::PresenceEventContent;
use ruma::presence::PresenceState;

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::presence::Update;
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new().endpoint(get).endpoint(set)
}

async fn set(
    s: Arc<Services>,
    req: Ruma<set_presence::v3::Request>,
) -> Result<set_presence::v3::Response> {
    let body = req.body;
    if body.user_id != req.caller.user_id {
        return Err(Error::forbidden("Cannot set another user's presence"));
    }
    match body.presence {
        PresenceState::Online | PresenceState::Offline | PresenceState::Unavailable => {}
        _ => {
            return Err(Error::invalid_param(
                "presence must be online, offline or unavailable",
            ))
        }
    }
    let update = Update::Explicit(body.presence.as_str(), body.status_msg);
    if s.presence.update(&body.user_id, update).await? {
        crate::federation::edus::presence_changed(&s, &body.user_id).await;
    }
    Ok(set_presence::v3::Response::new())
}

/// Presence is visible to the user and to those who share a room with them
/// (as in Synapse, which answers 403 to anyone else): it tells when someone
/// is online.
async fn get(
    s: Arc<Services>,
    req: Ruma<get_presence::v3::Request>,
) -> Result<get_presence::v3::Response> {
    let user = req.body.user_id;
    let caller = req.caller.user_id;
    if s.accounts.is_local(&user) && !s.accounts.exists(&user)? {
        return Err(Error::not_found("Unknown user"));
    }
    if user != caller && !s.rooms.share_a_room(&caller, &user)? {
        return Err(Error::forbidden("You may not see this user's presence"));
    }
    let content: PresenceEventContent = serde_json::from_value(s.presence.get(&user).content())?;
    let mut out = get_presence::v3::Response::new(content.presence);
    out.status_msg = content.status_msg;
    out.currently_active = content.currently_active;
    out.last_active_ago = content
        .last_active_ago
        .map(|ms| Duration::from_millis(ms.into()));
    Ok(out)
}
