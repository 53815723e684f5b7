//! `GET /_matrix/federation/v1/openid/userinfo`: whose OpenID token this
//! is. Asked by third parties with the token itself (no server signature).

use std::sync::Arc;

use axum::Router;
use http::StatusCode;
use ruma::api::federation::openid::get_openid_userinfo::v1 as userinfo;

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;

pub fn routes() -> Router<Arc<Services>> {
    Router::new().endpoint(user_info)
}

async fn user_info(s: Arc<Services>, req: Ruma<userinfo::Request>) -> Result<userinfo::Response> {
    match s.openid.user_of(&req.body.access_token) {
        Some(user) => Ok(userinfo::Response::new(user)),
        None => Err(Error::new(
            StatusCode::UNAUTHORIZED,
            "M_UNKNOWN_TOKEN",
            "Unknown or expired OpenID token",
        )),
    }
}
