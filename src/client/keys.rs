//! `/keys/upload`, `/keys/query`, `/keys/claim`, `/keys/changes`, `/sendToDevice`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use ruma::api::client::keys::{claim_keys, get_key_changes, get_keys, upload_keys};
use ruma::api::client::to_device::send_event_to_device;
use ruma::serde::Raw;
use ruma::{OneTimeKeyAlgorithm, OwnedDeviceId, OwnedOneTimeKeyId, OwnedUserId, UInt};
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .endpoint(upload)
        .endpoint(query)
        .endpoint(claim)
        .endpoint(changes)
        .endpoint(send_to_device)
}

/// The JSON of a value a client sent, as the key services keep it.
pub(super) fn json_of<T>(raw: &Raw<T>) -> Result<Value> {
    Ok(raw.deserialize_as_unchecked()?)
}

/// Stored JSON as the raw value of a ruma type.
pub(super) fn raw_of<T>(value: &impl Serialize) -> Result<Raw<T>> {
    Ok(Raw::from_json(serde_json::value::to_raw_value(value)?))
}

/// Key ids and their keys, as the key service takes them.
fn key_map<T>(keys: &BTreeMap<OwnedOneTimeKeyId, Raw<T>>) -> Result<BTreeMap<String, Value>> {
    keys.iter()
        .map(|(id, key)| Ok((id.to_string(), json_of(key)?)))
        .collect()
}

async fn upload(
    s: Arc<Services>,
    req: Ruma<upload_keys::v3::Request>,
) -> Result<upload_keys::v3::Response> {
    let (caller, body) = (req.caller, req.body);
    let counts = s
        .keys
        .upload(
            &caller.user_id,
            &caller.device_id,
            body.device_keys.as_ref().map(json_of).transpose()?,
            key_map(&body.one_time_keys)?,
            key_map(&body.fallback_keys)?,
        )
        .await?;
    let counts = counts
        .into_iter()
        .map(|(algorithm, n)| {
            (
                OneTimeKeyAlgorithm::from(algorithm),
                UInt::new_saturating(n),
            )
        })
        .collect();
    Ok(upload_keys::v3::Response::new(counts))
}

/// What `/keys/query` answers for another server's users.
#[derive(Serialize)]
struct RemoteFailure {
    status: u16,
    message: &'static str,
}

async fn query(
    s: Arc<Services>,
    req: Ruma<get_keys::v3::Request>,
) -> Result<get_keys::v3::Response> {
    let mut out = get_keys::v3::Response::new();
    let mut cross_signing = super::cross_signing::QueryKeys::default();
    for (user, only) in req.body.device_keys {
        if !s.accounts.is_local(&user) {
            let failure = RemoteFailure {
                status: 503,
                message: "Federation is not available yet",
            };
            out.failures.insert(
                user.server_name().to_string(),
                serde_json::to_value(failure)?,
            );
            continue;
        }
        let names = s
            .accounts
            .devices(&user)?
            .into_iter()
            .map(|(id, d)| (id, d.display_name))
            .collect();
        let mut keys = s.keys.query(&user, &only, &names)?;
        cross_signing.add(&s, &req.caller.user_id, &user, &mut keys)?;
        let keys = keys
            .iter()
            .map(|(device, k)| Ok((device.clone(), raw_of(k)?)))
            .collect::<Result<_>>()?;
        out.device_keys.insert(user, keys);
    }
    out.master_keys = cross_signing.master_keys;
    out.self_signing_keys = cross_signing.self_signing_keys;
    out.user_signing_keys = cross_signing.user_signing_keys;
    Ok(out)
}

async fn claim(
    s: Arc<Services>,
    req: Ruma<claim_keys::v3::Request>,
) -> Result<claim_keys::v3::Response> {
    let requests: Vec<(OwnedUserId, OwnedDeviceId, String)> = req
        .body
        .one_time_keys
        .into_iter()
        .flat_map(|(user, devices)| {
            devices
                .into_iter()
                .map(move |(device, algorithm)| (user.clone(), device, algorithm.to_string()))
        })
        .collect();
    let mut claimed = BTreeMap::new();
    for (user, devices) in s.keys.claim(&requests).await? {
        let mut by_device = BTreeMap::new();
        for (device, keys) in devices {
            let keys = keys
                .into_iter()
                .map(|(id, key)| {
                    let id = OwnedOneTimeKeyId::try_from(id)
                        .map_err(|e| Error::internal(format!("stored key id: {e}")))?;
                    Ok((id, raw_of(&key)?))
                })
                .collect::<Result<_>>()?;
            by_device.insert(device, keys);
        }
        claimed.insert(user, by_device);
    }
    Ok(claim_keys::v3::Response::new(claimed))
}

async fn changes(
    s: Arc<Services>,
    req: Ruma<get_key_changes::v3::Request>,
) -> Result<get_key_changes::v3::Response> {
    let position = |token: &str, name: &str| -> Result<u64> {
        token
            .parse()
            .map_err(|_| Error::invalid_param(format!("Invalid {name}")))
    };
    let from = position(&req.body.from, "from")?;
    let to = position(&req.body.to, "to")?;
    let mut changed = Vec::new();
    for user in s.keys.changed_users(from, to)? {
        if s.rooms.share_a_room(&req.caller.user_id, &user)? {
            changed.push(user);
        }
    }
    Ok(get_key_changes::v3::Response::new(changed, Vec::new()))
}

async fn send_to_device(
    s: Arc<Services>,
    req: Ruma<send_event_to_device::v3::Request>,
) -> Result<send_event_to_device::v3::Response> {
    let (caller, body) = (req.caller, req.body);
    let mut messages = Vec::new();
    for (user, devices) in body.messages {
        // Federation is not built: another server's users are unreachable,
        // and keeping their messages here would keep them forever.
        if !s.accounts.is_local(&user) {
            continue;
        }
        for (device, content) in devices {
            messages.push((user.clone(), device.to_string(), json_of(&content)?));
        }
    }
    let accounts = &s.accounts;
    s.keys
        .send_to_device(
            &caller.user_id,
            &caller.device_id,
            body.txn_id.as_str(),
            &body.event_type.to_string(),
            messages,
            |u| accounts.device_ids(u),
        )
        .await?;
    Ok(send_event_to_device::v3::Response::new())
}
