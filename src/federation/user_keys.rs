//! End-to-end encryption keys across servers: other servers ask for this
//! server's users' devices (`/user/devices`), device and cross-signing keys
//! (`/user/keys/query`) and one-time keys (`/user/keys/claim`); this
//! server's clients reach other servers' users the same way.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use ruma::api::federation::device::get_devices::v1 as devices;
use ruma::api::federation::keys::{claim_keys::v1 as claim, get_keys::v1 as query};
use ruma::{OneTimeKeyAlgorithm, OwnedDeviceId, OwnedUserId, ServerName, UInt, UserId};

use super::client::Bounds;
use crate::client::cross_signing::QueryKeys;
use crate::client::keys::{claim_local, local_device_keys, ClaimedKeys};
use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;

/// Most users one query or claim names.
const MAX_USERS: usize = 1000;

/// One-time key claims: user → device → algorithm.
pub type Claims = BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, OneTimeKeyAlgorithm>>;

pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .reading(user_devices)
        .reading(keys_query)
        .endpoint(keys_claim)
}

fn check_local(s: &Services, user: &UserId) -> Result<()> {
    if user.server_name() != s.server_name {
        return Err(Error::invalid_param("User is not hosted on this server"));
    }
    Ok(())
}

fn user_devices(s: Arc<Services>, req: Ruma<devices::Request>) -> Result<devices::Response> {
    let user = &req.body.user_id;
    check_local(&s, user)?;
    let mut cross_signing = QueryKeys::default();
    // Another server sees what a stranger would: the owner's signatures.
    let keys = local_device_keys(&s, user, user, &[], &mut cross_signing)?;
    let names: BTreeMap<OwnedDeviceId, Option<String>> = s
        .accounts
        .devices(user)?
        .into_iter()
        .map(|(id, d)| (id, d.display_name))
        .collect();
    let stream_id = UInt::try_from(super::device_lists::stream_id(&s, user)?).unwrap_or_default();
    let mut response = devices::Response::new(user.clone(), stream_id);
    for (device, keys) in keys {
        let mut entry = devices::UserDevice::new(device.clone(), keys);
        entry.device_display_name = names.get(&device).cloned().flatten();
        response.devices.push(entry);
    }
    response.master_key = cross_signing.master_keys.remove(user);
    response.self_signing_key = cross_signing.self_signing_keys.remove(user);
    Ok(response)
}

fn keys_query(s: Arc<Services>, req: Ruma<query::Request>) -> Result<query::Response> {
    if req.body.device_keys.len() > MAX_USERS {
        return Err(Error::bad_json(format!("At most {MAX_USERS} users")));
    }
    let mut response = query::Response::new(BTreeMap::new());
    let mut cross_signing = QueryKeys::default();
    for (user, only) in &req.body.device_keys {
        if user.server_name() != s.server_name {
            continue;
        }
        let keys = local_device_keys(&s, user, user, only, &mut cross_signing)?;
        response.device_keys.insert(user.clone(), keys);
    }
    response.master_keys = cross_signing.master_keys;
    response.self_signing_keys = cross_signing.self_signing_keys;
    Ok(response)
}

async fn keys_claim(s: Arc<Services>, req: Ruma<claim::Request>) -> Result<claim::Response> {
    if req.body.one_time_keys.len() > MAX_USERS {
        return Err(Error::bad_json(format!("At most {MAX_USERS} users")));
    }
    let requests: Vec<(OwnedUserId, OwnedDeviceId, String)> = req
        .body
        .one_time_keys
        .into_iter()
        .filter(|(user, _)| user.server_name() == s.server_name)
        .flat_map(|(user, devices)| {
            devices
                .into_iter()
                .map(move |(device, algorithm)| (user.clone(), device, algorithm.to_string()))
        })
        .collect();
    Ok(claim::Response::new(claim_local(&s, &requests).await?))
}

/// Asks `server` for its users' keys; only the users it hosts are kept.
pub async fn query_remote(
    s: &Services,
    server: &ServerName,
    users: BTreeMap<OwnedUserId, Vec<OwnedDeviceId>>,
) -> Result<query::Response> {
    let mut answer = s
        .federation
        .client
        .send_bounded(server, query::Request::new(users), Bounds::EVENTS)
        .await?;
    answer
        .device_keys
        .retain(|user, _| user.server_name() == server);
    answer
        .master_keys
        .retain(|user, _| user.server_name() == server);
    answer
        .self_signing_keys
        .retain(|user, _| user.server_name() == server);
    Ok(answer)
}

/// Claims one-time keys of `server`'s users' devices.
pub async fn claim_remote(
    s: &Services,
    server: &ServerName,
    claims: Claims,
) -> Result<ClaimedKeys> {
    let mut answer = s
        .federation
        .client
        .send_bounded(server, claim::Request::new(claims), Bounds::EVENTS)
        .await?;
    answer
        .one_time_keys
        .retain(|user, _| user.server_name() == server);
    Ok(answer.one_time_keys)
}
