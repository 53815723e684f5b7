//! `POST /user/{userId}/openid/request_token`: a token a third party can
//! check with this server to learn who the user is.

use std::sync::Arc;

use axum::Router;
use ruma::api::client::account::request_openid_token::v3 as request_token;
use ruma::authentication::TokenType;

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::openid::LIFETIME;
use crate::services::Services;

pub fn routes() -> Router<Arc<Services>> {
    Router::new().endpoint(request)
}

async fn request(
    s: Arc<Services>,
    req: Ruma<request_token::Request>,
) -> Result<request_token::Response> {
    let user = &req.caller.user_id;
    if req.body.user_id != *user {
        return Err(Error::forbidden(
            "You may only ask for an OpenID token for yourself",
        ));
    }
    let token = s.openid.issue(user);
    Ok(request_token::Response::new(
        token,
        TokenType::Bearer,
        s.server_name.clone(),
        LIFETIME,
    ))
}
