//! Requests of endpoints with user-interactive auth. Their `auth` dict is
//! taken out of the body as the client sent it before ruma parses the
//! rest: the UIA service judges it, so an incomplete or unknown stage
//! (`auth: {}`, a token stage without its token, password auth naming the
//! user the old way) gets the 401 challenge Synapse answers with, where
//! ruma's parser would refuse the whole request. The rest of the body is
//! parsed but judged by the handler: Synapse refuses a malformed body
//! before the challenge on most of these endpoints, after it on the
//! password change.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use ruma::api::IncomingRequest;
use serde_json::Value;

use super::body_guard::read_body_of;
use super::endpoint::{authenticated, Authenticate, CallerOf, ParsedRequest, Ruma};
use crate::error::{Error, Result};
use crate::services::Services;

/// Endpoint `R`'s request without its `auth` (or why it could not be
/// parsed), and the `auth` dict as sent.
pub struct UiaRequest<R: IncomingRequest>
where
    R::Authentication: Authenticate,
{
    pub caller: CallerOf<R>,
    pub ip: IpAddr,
    pub body: Result<R>,
    pub auth: Option<Value>,
}

impl<R: IncomingRequest> UiaRequest<R>
where
    R::Authentication: Authenticate,
{
    /// The parsed request and the `auth` dict, for endpoints that refuse
    /// a malformed body before user-interactive auth.
    pub fn parsed(self) -> Result<(Ruma<R>, Option<Value>)> {
        let req = Ruma {
            body: self.body?,
            caller: self.caller,
            ip: self.ip,
        };
        Ok((req, self.auth))
    }
}

impl<R> FromRequest<Arc<Services>> for UiaRequest<R>
where
    R: IncomingRequest + Send + 'static,
    R::Authentication: Authenticate,
{
    type Rejection = Error;

    async fn from_request(request: Request, services: &Arc<Services>) -> Result<Self> {
        let (parts, body) = request.into_parts();
        let bytes = read_body_of(&parts, body).await?;
        let (bytes, auth) = take_auth(bytes)?;
        let request = Request::from_parts(parts, Body::from(bytes));
        let (caller, ip, body) = authenticated::<R>(request, services).await?;
        Ok(Self {
            caller,
            ip,
            body,
            auth,
        })
    }
}

impl<R> ParsedRequest for UiaRequest<R>
where
    R: IncomingRequest + Send + 'static,
    R::Authentication: Authenticate,
{
    type Endpoint = R;
}

/// The body without `auth`, and `auth` (an object, or absent or null).
/// Bodies that are not JSON objects pass through for the request parser
/// to refuse.
fn take_auth(bytes: Bytes) -> Result<(Bytes, Option<Value>)> {
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok((bytes, None));
    };
    let auth = match body.remove("auth") {
        None => return Ok((bytes, None)),
        Some(Value::Null) => None,
        Some(auth @ Value::Object(_)) => Some(auth),
        Some(_) => return Err(Error::bad_json("'auth' must be an object")),
    };
    Ok((Bytes::from(serde_json::to_vec(&body)?), auth))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn auth_is_taken_out_as_sent() {
        let body = json!({ "new_password": "p", "auth": { "session": "s" } });
        let (rest, auth) = take_auth(Bytes::from(body.to_string())).unwrap();
        assert_eq!(auth, Some(json!({ "session": "s" })));
        let rest: Value = serde_json::from_slice(&rest).unwrap();
        assert_eq!(rest, json!({ "new_password": "p" }));

        let plain = Bytes::from_static(br#"{"devices":[]}"#);
        assert_eq!(take_auth(plain.clone()).unwrap(), (plain, None));
        let null = Bytes::from_static(br#"{"auth":null}"#);
        assert_eq!(take_auth(null).unwrap().1, None);
        let not_json = Bytes::from_static(b"{nope");
        assert_eq!(take_auth(not_json.clone()).unwrap().0, not_json);
        let err = take_auth(Bytes::from_static(br#"{"auth":"dummy"}"#)).unwrap_err();
        assert_eq!(err.errcode, "M_BAD_JSON");
    }
}
