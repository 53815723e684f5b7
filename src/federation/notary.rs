//! `/_matrix/key/v2/query`: this server as a notary, vouching for the keys
//! of other servers (and its own) with its signature added. Keys are
//! served from what was fetched before while that is valid long enough,
//! else fetched now; a server whose keys cannot be had is left out.

use std::sync::Arc;

use axum::Router;
use ruma::api::federation::discovery::{
    get_remote_server_keys, get_remote_server_keys_batch, ServerSigningKeys,
};
use ruma::serde::Raw;
use ruma::{CanonicalJsonObject, CanonicalJsonValue, ServerName};

use super::server_keys::signed_own_keys;
use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;

/// Most servers one batch may ask about.
const MAX_SERVERS: usize = 100;
/// Most servers one request may make this server fetch keys from: anyone
/// may ask, so a request must not turn into a hundred outbound
/// connections. The others are answered from what is kept, or left out.
const MAX_FETCHES_PER_REQUEST: usize = 5;

pub fn routes() -> Router<Arc<Services>> {
    Router::new().endpoint(query_one).endpoint(query_batch)
}

async fn query_one(
    s: Arc<Services>,
    req: Ruma<get_remote_server_keys::v2::Request>,
) -> Result<get_remote_server_keys::v2::Response> {
    let body = req.body;
    let at = body.minimum_valid_until_ts.get().into();
    let keys = vouch(&s, &body.server_name, at, &mut 1).await?;
    Ok(get_remote_server_keys::v2::Response::new(
        keys.into_iter().collect(),
    ))
}

async fn query_batch(
    s: Arc<Services>,
    req: Ruma<get_remote_server_keys_batch::v2::Request>,
) -> Result<get_remote_server_keys_batch::v2::Response> {
    if req.body.server_keys.len() > MAX_SERVERS {
        return Err(Error::invalid_param(format!(
            "At most {MAX_SERVERS} servers per query"
        )));
    }
    let mut out = Vec::new();
    let mut fetches_left = MAX_FETCHES_PER_REQUEST;
    for (server, criteria) in &req.body.server_keys {
        // The latest answer covers every key id asked for; the strictest
        // validity asked for decides whether it is recent enough.
        let at = criteria
            .values()
            .filter_map(|c| c.minimum_valid_until_ts)
            .map(|ts| u64::from(ts.get()))
            .max()
            .unwrap_or_else(|| ruma::MilliSecondsSinceUnixEpoch::now().get().into());
        out.extend(vouch(&s, server, at, &mut fetches_left).await?);
    }
    Ok(get_remote_server_keys_batch::v2::Response::new(out))
}

/// The keys of `server`, valid until at least `at`, signed by this server;
/// fetched if need be while `fetches_left` allows.
async fn vouch(
    s: &Services,
    server: &ServerName,
    at: u64,
    fetches_left: &mut usize,
) -> Result<Option<Raw<ServerSigningKeys>>> {
    let object = if server == s.server_name {
        signed_own_keys(s)?
    } else {
        let Some(mut object) = known_keys(s, server, at, fetches_left).await? else {
            return Ok(None);
        };
        s.signing_key
            .sign_json(&s.server_name, &mut object)
            .map_err(|e| Error::internal(format!("signing keys as a notary: {e}")))?;
        object
    };
    let json = serde_json::value::to_raw_value(&object)?;
    Ok(Some(Raw::from_json(json)))
}

/// The kept answer of `server` if it is valid until `at`, else a new one
/// while `fetches_left` allows.
async fn known_keys(
    s: &Services,
    server: &ServerName,
    at: u64,
    fetches_left: &mut usize,
) -> Result<Option<CanonicalJsonObject>> {
    let keys = &s.federation.keys;
    if let Some(object) = keys.last_response(server)?.filter(|o| valid_until(o) >= at) {
        return Ok(Some(object));
    }
    if *fetches_left == 0 {
        return Ok(None);
    }
    *fetches_left -= 1;
    if keys.fetch(server).await.is_err() {
        return Ok(None);
    }
    keys.last_response(server)
}

fn valid_until(object: &CanonicalJsonObject) -> u64 {
    match object.get("valid_until_ts") {
        Some(CanonicalJsonValue::Integer(ts)) => u64::try_from(i64::from(*ts)).unwrap_or(0),
        _ => 0,
    }
}
