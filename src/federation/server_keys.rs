//! `GET /_matrix/key/v2/server`: this server's signing key, self-signed,
//! as other servers and notaries fetch it. The key is made once and kept
//! (`Services::open`); each answer is valid for a day, as Synapse's are, so
//! that a peer asks again within a day and would learn of a new key.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use ruma::api::federation::discovery::get_server_keys::v2 as server_keys;
use ruma::serde::Raw;
use ruma::{CanonicalJsonObject, MilliSecondsSinceUnixEpoch};
use serde_json::json;

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;

/// How long a peer may use an answer before asking again.
pub const VALIDITY: Duration = Duration::from_secs(24 * 60 * 60);

pub fn routes() -> Router<Arc<Services>> {
    Router::new().reading(own_keys)
}

fn own_keys(s: Arc<Services>, _: Ruma<server_keys::Request>) -> Result<server_keys::Response> {
    let object = signed_own_keys(&s)?;
    let json = serde_json::value::to_raw_value(&object)?;
    Ok(server_keys::Response::new(Raw::from_json(json)))
}

/// This server's key object, signed by itself.
pub fn signed_own_keys(s: &Services) -> Result<CanonicalJsonObject> {
    let key = &s.signing_key;
    let now: u64 = MilliSecondsSinceUnixEpoch::now().get().into();
    let valid_until = now + VALIDITY.as_secs() * 1000;
    let value = json!({
        "server_name": s.server_name,
        "verify_keys": { (key.key_id()): { "key": key.public_key_base64() } },
        "old_verify_keys": {},
        "valid_until_ts": valid_until,
    });
    let mut object: CanonicalJsonObject = serde_json::from_value(value)?;
    key.sign_json(&s.server_name, &mut object)
        .map_err(|e| Error::internal(format!("signing the server keys: {e}")))?;
    Ok(object)
}
