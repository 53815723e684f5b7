//! Access-token authentication.

use http::request::Parts;
use ruma::{OwnedDeviceId, OwnedUserId};

use crate::error::Error;

/// An authenticated local user and the device the token belongs to.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: OwnedUserId,
    pub device_id: OwnedDeviceId,
    /// A guest account (`kind=guest` registration): only the endpoints
    /// `guests` lists are open to it.
    pub guest: bool,
}

impl Caller {
    /// Who is looking at an event: for `transaction_id` in `unsigned`.
    pub fn viewer(&self) -> Option<(&ruma::UserId, &ruma::DeviceId)> {
        Some((&self.user_id, &self.device_id))
    }
}

/// Reads the access token from `Authorization: Bearer …`, or the deprecated
/// `access_token` query parameter.
pub fn token_from_parts(parts: &Parts) -> Result<Option<String>, Error> {
    if let Some(token) = bearer_token(&parts.headers)? {
        return Ok(Some(token));
    }
    Ok(token_in_query(&parts.uri))
}

/// The token of an `Authorization: Bearer …` header, if there is one.
pub fn bearer_token(headers: &http::HeaderMap) -> Result<Option<String>, Error> {
    let Some(header) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = header.to_str().map_err(|_| Error::unknown_token())?.trim();
    match value.strip_prefix("Bearer ") {
        Some(token) => Ok(Some(token.trim().to_owned())),
        None => Err(Error::missing_token()),
    }
}

/// The `access_token` query parameter, if there is one.
pub fn token_in_query(uri: &http::Uri) -> Option<String> {
    let query = uri.query().unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned())
}
