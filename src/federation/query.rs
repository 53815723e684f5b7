//! `GET /_matrix/federation/v1/query/profile`: a local user's display name
//! and avatar, for other servers.

use std::sync::Arc;

use axum::Router;
use ruma::api::federation::query::get_profile_information::v1 as profile;
use ruma::profile::ProfileFieldName;
use serde_json::json;

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;

pub fn routes() -> Router<Arc<Services>> {
    Router::new().reading(query_profile)
}

fn query_profile(s: Arc<Services>, req: Ruma<profile::Request>) -> Result<profile::Response> {
    let user = &req.body.user_id;
    if user.server_name() != s.server_name {
        return Err(Error::invalid_param("User is not hosted on this server"));
    }
    let record = s
        .accounts
        .get(user)?
        .filter(|r| !r.deactivated)
        .ok_or_else(|| Error::not_found("Profile not found"))?;
    let wanted = |name: ProfileFieldName| req.body.field.as_ref().is_none_or(|f| *f == name);
    let mut response = profile::Response::new();
    if let Some(name) = record
        .displayname
        .filter(|_| wanted(ProfileFieldName::DisplayName))
    {
        response.set("displayname".to_owned(), json!(name));
    }
    if let Some(avatar) = record
        .avatar_url
        .filter(|_| wanted(ProfileFieldName::AvatarUrl))
    {
        response.set("avatar_url".to_owned(), json!(avatar));
    }
    Ok(response)
}
