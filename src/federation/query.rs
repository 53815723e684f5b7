//! `GET /_matrix/federation/v1/query/profile`: a local user's profile
//! (display name, avatar and other fields), for other servers.

use std::sync::Arc;

use axum::Router;
use ruma::api::federation::query::get_profile_information::v1 as profile;

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::accounts::profile_fields;
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
    let mut response = profile::Response::new();
    for (key, value) in profile_fields(&record) {
        if req.body.field.as_ref().is_none_or(|f| f.as_str() == key) {
            response.set(key, value);
        }
    }
    Ok(response)
}
