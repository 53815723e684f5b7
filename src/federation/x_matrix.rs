//! Requests from other servers. The X-Matrix `Authorization` header names
//! the origin, one of its keys and a signature over the method, the URI as
//! sent, origin, destination and body; the origin's key is fetched when it
//! is not known. A header for another destination, an unknown key or a
//! bad signature is `401 M_UNAUTHORIZED`, before the handler runs.

use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use ruma::api::federation::authentication::{ServerSignatures, XMatrix};
use ruma::{MilliSecondsSinceUnixEpoch, OwnedServerName};

use crate::error::{Error, Result};
use crate::http::authenticate::Authenticate;
use crate::services::Services;

/// The server a request came from, its signature checked.
#[derive(Debug, Clone)]
pub struct Origin(pub OwnedServerName);

impl Authenticate for ServerSignatures {
    type Claim = XMatrix;
    type Caller = Origin;

    fn claim(parts: &Parts, _: &Services) -> Result<XMatrix> {
        let header = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .ok_or_else(|| Error::unauthorized("Missing Authorization header"))?;
        XMatrix::try_from(header)
            .map_err(|e| Error::unauthorized(format!("Invalid X-Matrix header: {e}")))
    }

    async fn confirm(
        claim: XMatrix,
        request: &http::Request<Bytes>,
        services: &Arc<Services>,
    ) -> Result<Origin> {
        let ours = &services.server_name;
        if claim.destination.as_ref().is_some_and(|d| d != ours) {
            return Err(Error::unauthorized("Request is for another server"));
        }
        if &claim.origin == ours {
            return Err(Error::unauthorized(
                "Request claims to come from this server",
            ));
        }
        let now = MilliSecondsSinceUnixEpoch::now().get().into();
        let keys = services
            .federation
            .keys
            .key_map(&claim.origin, &[claim.key.to_string()], now)
            .await?;
        claim.verify_request(request, ours, &keys).map_err(|e| {
            tracing::info!(origin = %claim.origin, error = %e, "X-Matrix signature refused");
            Error::unauthorized("Invalid X-Matrix signature")
        })?;
        Ok(Origin(claim.origin))
    }
}
