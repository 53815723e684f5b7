//! `POST /refresh`: a new access token for a refresh token.

use std::sync::Arc;

use ruma::api::client::session::refresh_token;

use crate::error::Result;
use crate::http::endpoint::Ruma;
use crate::services::Services;

/// Answers with a new access token (expiring after the configured
/// lifetime) and a new refresh token; an unknown, revoked or superseded
/// refresh token gets 401 `M_UNKNOWN_TOKEN`.
pub(super) async fn refresh(
    s: Arc<Services>,
    req: Ruma<refresh_token::v3::Request>,
) -> Result<refresh_token::v3::Response> {
    let lifetime = s.config.refreshable_token_lifetime();
    let session = s
        .accounts
        .refresh(&req.body.refresh_token, lifetime)
        .await?;
    let mut out = refresh_token::v3::Response::new(session.access_token);
    out.refresh_token = session.refresh_token;
    out.expires_in_ms = session.expires_in;
    Ok(out)
}
