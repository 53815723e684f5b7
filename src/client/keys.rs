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
        .merge(crate::http::body_check::before_parsing(
            Router::new().endpoint(query),
            device_keys_as_synapse,
        ))
        .endpoint(claim)
        .endpoint(changes)
        .endpoint(send_to_device)
}

/// Synapse's answer on a `/keys/query` body without a `device_keys`
/// object, which ruma calls a missing parameter: a malformed body.
fn device_keys_as_synapse(body: &[u8]) -> Result<Option<Vec<u8>>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(body)) if !body.get("device_keys").is_some_and(Value::is_object) => {
            Err(Error::bad_json("'device_keys' must be a JSON object"))
        }
        _ => Ok(None),
    }
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
    let device_keys = body.device_keys.as_ref().map(json_of).transpose()?;
    let new_keys = match &device_keys {
        Some(keys) => {
            s.keys
                .device_keys(&caller.user_id, &caller.device_id)?
                .as_ref()
                != Some(keys)
        }
        None => false,
    };
    let counts = s
        .keys
        .upload(
            &caller.user_id,
            &caller.device_id,
            device_keys.clone(),
            key_map(&body.one_time_keys)?,
            key_map(&body.fallback_keys)?,
        )
        .await?;
    if new_keys {
        crate::federation::device_lists::send_update(
            &s,
            &caller.user_id,
            &caller.device_id,
            device_keys,
        )
        .await?;
    }
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
struct RemoteFailure<'a> {
    status: u16,
    message: &'a str,
}

/// The device keys of a local user (or of the listed devices) as `viewer`
/// may see them, their cross-signing keys added to `cross_signing`.
pub(crate) fn local_device_keys<T>(
    s: &Services,
    viewer: &ruma::UserId,
    user: &ruma::UserId,
    only: &[OwnedDeviceId],
    cross_signing: &mut super::cross_signing::QueryKeys,
) -> Result<BTreeMap<OwnedDeviceId, Raw<T>>> {
    let names = s
        .accounts
        .devices(user)?
        .into_iter()
        .map(|(id, d)| (id, d.display_name))
        .collect();
    let mut keys = s.keys.query(user, only, &names)?;
    cross_signing.add(s, viewer, user, &mut keys)?;
    keys.iter()
        .map(|(device, k)| Ok((device.clone(), raw_of(k)?)))
        .collect()
}

async fn query(
    s: Arc<Services>,
    req: Ruma<get_keys::v3::Request>,
) -> Result<get_keys::v3::Response> {
    let mut out = get_keys::v3::Response::new();
    let mut cross_signing = super::cross_signing::QueryKeys::default();
    let mut remote: BTreeMap<ruma::OwnedServerName, BTreeMap<OwnedUserId, Vec<OwnedDeviceId>>> =
        BTreeMap::new();
    for (user, only) in req.body.device_keys {
        if !s.accounts.is_local(&user) {
            remote
                .entry(user.server_name().to_owned())
                .or_default()
                .insert(user, only);
            continue;
        }
        let keys = local_device_keys(&s, &req.caller.user_id, &user, &only, &mut cross_signing)?;
        out.device_keys.insert(user, keys);
    }
    out.master_keys = cross_signing.master_keys;
    out.self_signing_keys = cross_signing.self_signing_keys;
    out.user_signing_keys = cross_signing.user_signing_keys;
    for (server, users) in remote {
        match crate::federation::user_keys::query_remote(&s, &server, users).await {
            Ok(answer) => {
                out.device_keys.extend(answer.device_keys);
                out.master_keys.extend(answer.master_keys);
                out.self_signing_keys.extend(answer.self_signing_keys);
            }
            Err(e) => {
                let failure = RemoteFailure {
                    status: e.status.as_u16(),
                    message: &e.message,
                };
                out.failures
                    .insert(server.to_string(), serde_json::to_value(failure)?);
            }
        }
    }
    Ok(out)
}

/// Claims one-time keys of local users' devices.
pub(crate) async fn claim_local(
    s: &Services,
    requests: &[(OwnedUserId, OwnedDeviceId, String)],
) -> Result<ClaimedKeys> {
    let mut claimed = BTreeMap::new();
    for (user, devices) in s.keys.claim(requests).await? {
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
    Ok(claimed)
}

/// Claimed one-time keys: user → device → key id → key.
pub(crate) type ClaimedKeys = BTreeMap<
    OwnedUserId,
    BTreeMap<OwnedDeviceId, BTreeMap<OwnedOneTimeKeyId, Raw<ruma::encryption::OneTimeKey>>>,
>;

async fn claim(
    s: Arc<Services>,
    req: Ruma<claim_keys::v3::Request>,
) -> Result<claim_keys::v3::Response> {
    let mut local = Vec::new();
    let mut remote: crate::federation::ByServer<OwnedDeviceId, OneTimeKeyAlgorithm> =
        BTreeMap::new();
    for (user, devices) in req.body.one_time_keys {
        for (device, algorithm) in devices {
            if s.accounts.is_local(&user) {
                local.push((user.clone(), device, algorithm.to_string()));
            } else {
                crate::federation::add_by_server(&mut remote, user.clone(), device, algorithm);
            }
        }
    }
    let mut response = claim_keys::v3::Response::new(claim_local(&s, &local).await?);
    for (server, claims) in remote {
        match crate::federation::user_keys::claim_remote(&s, &server, claims).await {
            Ok(keys) => response.one_time_keys.extend(keys),
            Err(e) => {
                let failure = RemoteFailure {
                    status: e.status.as_u16(),
                    message: &e.message,
                };
                response
                    .failures
                    .insert(server.to_string(), serde_json::to_value(failure)?);
            }
        }
    }
    Ok(response)
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
    let caller = &req.caller.user_id;
    let mut changed = std::collections::BTreeSet::new();
    for user in s.keys.changed_users(from, to)? {
        if user == *caller || s.rooms.share_a_room(caller, &user)? {
            changed.insert(user);
        }
    }
    let sharing = crate::sync::sharing::sharing_changes(&s, caller, from, to)?;
    changed.extend(sharing.started);
    Ok(get_key_changes::v3::Response::new(
        changed.into_iter().collect(),
        sharing.stopped.into_iter().collect(),
    ))
}

async fn send_to_device(
    s: Arc<Services>,
    req: Ruma<send_event_to_device::v3::Request>,
) -> Result<send_event_to_device::v3::Response> {
    let (caller, body) = (req.caller, req.body);
    let txn = body.txn_id.as_str();
    if s.keys
        .to_device_sent(&caller.user_id, &caller.device_id, txn)?
    {
        return Ok(send_event_to_device::v3::Response::new());
    }
    let mut messages = Vec::new();
    let mut remote: crate::federation::edus::ToDeviceByServer = BTreeMap::new();
    for (user, devices) in body.messages {
        for (device, content) in devices {
            let content = json_of(&content)?;
            if s.accounts.is_local(&user) {
                messages.push((user.clone(), device.to_string(), content));
            } else {
                crate::federation::add_by_server(
                    &mut remote,
                    user.clone(),
                    device.to_string(),
                    content,
                );
            }
        }
    }
    if !remote.is_empty() {
        // The same transaction always gets the same message id, so that a
        // retry is recognised by the receiving servers.
        let message_id = format!("{}.{}.{txn}", caller.user_id.localpart(), caller.device_id);
        crate::federation::edus::send_to_device(
            &s,
            &caller.user_id,
            &body.event_type.to_string(),
            &message_id,
            remote,
        )
        .await?;
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
