//! Who may call an endpoint, from its ruma authentication scheme, and what
//! the handler learns of the caller. Tokens are settled from the headers
//! alone, before the body is read; a server's X-Matrix signature covers
//! the body too, so it is confirmed once the whole request is in.

use std::future::{ready, Future};
use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use ruma::api::auth_scheme::{
    AccessToken, AccessTokenOptional, AppserviceToken, AppserviceTokenOptional, NoAccessToken,
    NoAuthentication,
};

use super::auth::{token_from_parts, Caller};
use crate::error::{Error, Result};
use crate::services::Services;

pub trait Authenticate {
    /// What the headers establish.
    type Claim: Send + 'static;
    /// What the handler learns.
    type Caller: Send + 'static;

    /// Checks the headers, before the body is read: a request without a
    /// credential is refused without reading its body.
    fn claim(parts: &Parts, services: &Services) -> Result<Self::Claim>;

    /// Confirms the claim against the whole request.
    fn confirm(
        claim: Self::Claim,
        request: &http::Request<Bytes>,
        services: &Arc<Services>,
    ) -> impl Future<Output = Result<Self::Caller>> + Send;
}

/// Schemes the headers settle: the claim is the caller.
macro_rules! settled_by_headers {
    () => {
        fn confirm(
            claim: Self::Claim,
            _: &http::Request<Bytes>,
            _: &Arc<Services>,
        ) -> impl Future<Output = Result<Self::Caller>> + Send {
            ready(Ok(claim))
        }
    };
}

/// An access token is required.
impl Authenticate for AccessToken {
    type Claim = Caller;
    type Caller = Caller;

    fn claim(parts: &Parts, services: &Services) -> Result<Caller> {
        let token = token_from_parts(parts)?.ok_or_else(Error::missing_token)?;
        let caller = services.accounts.authenticate(&token)?;
        super::guests::admit(&caller, &parts.method, parts.uri.path())?;
        Ok(caller)
    }

    settled_by_headers!();
}

/// An access token may be given; when it is, it must be valid.
impl Authenticate for AccessTokenOptional {
    type Claim = Option<Caller>;
    type Caller = Option<Caller>;

    fn claim(parts: &Parts, services: &Services) -> Result<Option<Caller>> {
        token_from_parts(parts)?
            .map(|token| services.accounts.authenticate(&token))
            .transpose()
    }

    settled_by_headers!();
}

/// Public endpoints: any token given is not looked at.
macro_rules! public {
    ($($scheme:ty),*) => {$(
        impl Authenticate for $scheme {
            type Claim = ();
            type Caller = ();

            fn claim(_: &Parts, _: &Services) -> Result<()> {
                Ok(())
            }

            settled_by_headers!();
        }
    )*};
}

// The server has no application services: their tokens authenticate
// nobody, and the endpoints that accept one work without it.
public!(NoAuthentication, AppserviceTokenOptional);

/// Public endpoints a client may call with its token: the token as given,
/// unchecked, for the few that do more for a signed-in caller (a remote
/// server's room directory is fetched only for one, as Synapse does).
impl Authenticate for NoAccessToken {
    type Claim = Option<String>;
    type Caller = Option<String>;

    fn claim(parts: &Parts, _: &Services) -> Result<Option<String>> {
        // A malformed header is no token here: these endpoints need none.
        Ok(token_from_parts(parts).ok().flatten())
    }

    settled_by_headers!();
}

/// Endpoints only application services may call: none is registered, so
/// every call is refused.
impl Authenticate for AppserviceToken {
    type Claim = ();
    type Caller = ();

    fn claim(_: &Parts, _: &Services) -> Result<()> {
        Err(Error::forbidden("No application service is registered"))
    }

    settled_by_headers!();
}
