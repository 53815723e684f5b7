//! Small extractors for handlers that read the body as JSON themselves.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use http::request::Parts;
use serde_json::Value;

use super::auth::{token_from_parts, Caller};
use super::body_guard::read_body;
use crate::error::Error;
use crate::services::Services;

/// The authenticated caller (access token required).
pub struct Auth(pub Caller);

impl FromRequestParts<Arc<Services>> for Auth {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        services: &Arc<Services>,
    ) -> Result<Self, Error> {
        let token = token_from_parts(parts)?.ok_or_else(Error::missing_token)?;
        let caller = services.accounts.authenticate(&token)?;
        super::guests::admit(&caller, &parts.method, parts.uri.path())?;
        Ok(Auth(caller))
    }
}

/// The caller, if an access token was given.
pub struct MaybeAuth(pub Option<Caller>);

impl FromRequestParts<Arc<Services>> for MaybeAuth {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        services: &Arc<Services>,
    ) -> Result<Self, Error> {
        match token_from_parts(parts)? {
            Some(token) => Ok(MaybeAuth(Some(services.accounts.authenticate(&token)?))),
            None => Ok(MaybeAuth(None)),
        }
    }
}

/// The client's address (loopback when unknown).
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
                .unwrap_or(IpAddr::from([127, 0, 0, 1])),
        ))
    }
}

/// A JSON object body, read within the endpoint's size limit (see
/// `body_limit`); an empty body counts as `{}`.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Error;

    async fn from_request(req: Request, _: &S) -> Result<Self, Error> {
        let bytes = read_body(req).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(Value::Object(Default::default())));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v @ Value::Object(_)) => Ok(JsonBody(v)),
            Ok(_) => Err(Error::bad_json("Request body must be a JSON object")),
            Err(e) => Err(Error::not_json(format!("Content not JSON: {e}"))),
        }
    }
}

/// A query parameter's value, if present.
pub fn query_param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Reads an optional string field; present but not a string is M_BAD_JSON.
pub fn opt_str<'a>(body: &'a Value, field: &str) -> Result<Option<&'a str>, Error> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::bad_json(format!("'{field}' must be a string"))),
    }
}

/// Reads a required string field.
pub fn req_str<'a>(body: &'a Value, field: &str) -> Result<&'a str, Error> {
    opt_str(body, field)?.ok_or_else(|| Error::missing_param(format!("Missing '{field}'")))
}

/// Reads an optional boolean field.
pub fn opt_bool(body: &Value, field: &str) -> Result<Option<bool>, Error> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Error::bad_json(format!("'{field}' must be a boolean"))),
    }
}
