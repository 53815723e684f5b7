//! The AI users' encryption devices (`matrixos_e2ee::device`) wired to the
//! server's key services: keys are published through the same store as any
//! client's upload, room keys arrive in the device's to-device inbox, and
//! outgoing room keys go out as to-device messages. State is pickled into
//! RocksDB (encrypted with a key derived from the server's signing key)
//! after every change.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hmac::{Hmac, Mac};
use matrixos_e2ee::device::{AiDevice, PeerDevice, RoomSettings};
use matrixos_storage::tables::AI_CRYPTO;
use matrixos_storage::Batch;
use ruma::{OwnedDeviceId, OwnedServerName, OwnedUserId, RoomId, UserId};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::services::Services;
use crate::services::Wake;

/// Every AI user's one device.
pub const AI_DEVICE_ID: &str = "MATRIXOSAI";
/// One-time keys kept published.
const ONE_TIME_KEYS: u64 = 50;

#[derive(Default)]
pub struct Devices {
    loaded: parking_lot::Mutex<HashMap<OwnedUserId, Arc<Mutex<AiDevice>>>>,
}

fn pickle_key(s: &Services) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&s.signing_key.to_pkcs8())
        .expect("HMAC takes any key length");
    mac.update(b"matrixos ai device pickle");
    mac.finalize().into_bytes().into()
}

fn device_id() -> OwnedDeviceId {
    AI_DEVICE_ID.into()
}

async fn save(s: &Services, ai: &UserId, device: &AiDevice) -> Result<()> {
    let mut batch = Batch::new();
    AI_CRYPTO.put(&mut batch, ai.as_str(), &device.pickle(&pickle_key(s)));
    s.store.commit(batch, vec![], Wake::none()).await
}

/// The AI user's device: loaded, or created and published on first use.
pub async fn device(s: &Services, ai: &UserId) -> Result<Arc<Mutex<AiDevice>>> {
    if let Some(d) = s.ai.devices.loaded.lock().get(ai) {
        return Ok(d.clone());
    }
    let device = match AI_CRYPTO.get(&s.store.db, ai.as_str())? {
        Some(bytes) => AiDevice::unpickle(&bytes, &pickle_key(s))
            .map_err(|e| Error::internal(format!("AI device of {ai}: {e}")))?,
        None => {
            let mut device = AiDevice::new(ai.as_str(), AI_DEVICE_ID);
            s.accounts
                .add_server_device(ai, &device_id(), "Matrix OS AI")
                .await?;
            let one_time = device.one_time_keys(ONE_TIME_KEYS as usize);
            let fallback = device.fallback_key();
            s.keys
                .upload(
                    ai,
                    &device_id(),
                    Some(device.device_keys()),
                    one_time,
                    fallback,
                )
                .await?;
            device.mark_published();
            save(s, ai, &device).await?;
            tracing::info!(ai = %ai, "AI encryption device created");
            device
        }
    };
    let device = Arc::new(Mutex::new(device));
    Ok(s.ai
        .devices
        .loaded
        .lock()
        .entry(ai.to_owned())
        .or_insert(device)
        .clone())
}

/// Publishes more one-time keys (and a new fallback key) when they run low.
async fn top_up(s: &Services, ai: &UserId, device: &mut AiDevice) -> Result<()> {
    let dev = device_id();
    let left = s
        .keys
        .one_time_key_counts(ai, &dev)?
        .get("signed_curve25519")
        .copied()
        .unwrap_or(0);
    let fallback_missing = s.keys.unused_fallback_types(ai, &dev)?.is_empty();
    if left >= ONE_TIME_KEYS / 2 && !fallback_missing {
        return Ok(());
    }
    let one_time = if left < ONE_TIME_KEYS / 2 {
        device.one_time_keys((ONE_TIME_KEYS - left) as usize)
    } else {
        BTreeMap::new()
    };
    let fallback = if fallback_missing {
        device.fallback_key()
    } else {
        BTreeMap::new()
    };
    s.keys.upload(ai, &dev, None, one_time, fallback).await?;
    device.mark_published();
    Ok(())
}

/// Takes in the room keys waiting in the device's to-device inbox.
async fn read_inbox(s: &Services, ai: &UserId, device: &mut AiDevice) -> Result<()> {
    let dev = device_id();
    let upto = s.store.position();
    let messages = s.keys.take_to_device(ai, &dev, 0, upto).await?;
    if messages.is_empty() {
        return Ok(());
    }
    for message in messages {
        let event = &message.json;
        if event["type"] != "m.room.encrypted" {
            continue;
        }
        let sender = event["sender"].as_str().unwrap_or_default();
        match device.receive_to_device(sender, &event["content"]) {
            Ok(Some(key)) => {
                tracing::debug!(ai = %ai, room = %key.room_id, sender, "room key received")
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(ai = %ai, sender, error = %e, "to-device message not decrypted")
            }
        }
    }
    top_up(s, ai, device).await?;
    save(s, ai, device).await?;
    // Acknowledge (delete) what was read only once the state that came
    // from it is stored.
    s.keys.take_to_device(ai, &dev, upto, upto).await?;
    Ok(())
}

/// Decrypts a room event for the AI user; `None` when no key has arrived
/// for it (logged).
pub async fn decrypt(
    s: &Services,
    ai: &UserId,
    room: &RoomId,
    content: &Value,
) -> Result<Option<Value>> {
    let device = device(s, ai).await?;
    let mut device = device.lock().await;
    read_inbox(s, ai, &mut device).await?;
    match device.decrypt_room_event(room.as_str(), content) {
        Ok(event) => Ok(Some(event)),
        Err(e) => {
            tracing::warn!(ai = %ai, room = %room, error = %e, "room message not decrypted");
            Ok(None)
        }
    }
}

/// The room's `m.room.encryption` content, if it is encrypted.
pub fn encryption_of(s: &Services, room: &RoomId) -> Result<Option<Value>> {
    let (_, record) = s.rooms.record_of(room)?;
    Ok(s.rooms
        .state_event(record.state, "m.room.encryption", "")?
        .map(|e| e.content_value()))
}

/// Every device of the room's joined and invited members except the AI's
/// own, with valid self-signed keys; other servers' users' devices are
/// asked of their servers (one that does not answer is left out).
async fn recipients(s: &Services, ai: &UserId, room: &RoomId) -> Result<Vec<PeerDevice>> {
    let short = s
        .rooms
        .short_room(room)?
        .ok_or_else(|| Error::not_found("Room not found"))?;
    let mut devices: Vec<(OwnedUserId, OwnedDeviceId, Value)> = Vec::new();
    let mut remote: BTreeMap<OwnedServerName, BTreeMap<OwnedUserId, Vec<OwnedDeviceId>>> =
        BTreeMap::new();
    for (user, membership) in s.rooms.members(short)? {
        if !(membership == "join" || membership == "invite") {
            continue;
        }
        if !s.accounts.is_local(&user) {
            remote
                .entry(user.server_name().to_owned())
                .or_default()
                .insert(user, Vec::new());
            continue;
        }
        for (device, keys) in s.keys.query(&user, &[], &BTreeMap::new())? {
            devices.push((user.clone(), device, keys));
        }
    }
    for (server, users) in remote {
        match crate::federation::user_keys::query_remote(s, &server, users).await {
            Ok(answer) => {
                for (user, by_device) in answer.device_keys {
                    for (device, keys) in by_device {
                        if let Ok(keys) = keys.deserialize_as_unchecked::<Value>() {
                            devices.push((user.clone(), device, keys));
                        }
                    }
                }
            }
            Err(e) => tracing::info!(%server, error = %e, "remote devices unknown"),
        }
    }
    let mut out = Vec::new();
    for (user, device, keys) in devices {
        if user == ai && device.as_str() == AI_DEVICE_ID {
            continue;
        }
        match PeerDevice::from_device_keys(&keys) {
            Some(peer) => out.push(peer),
            None => tracing::warn!(user = %user, device = %device, "device keys refused"),
        }
    }
    Ok(out)
}

/// Claims one-time keys, this server's users' here and other servers'
/// users' from their servers: user → device → key id → key.
async fn claim_keys(
    s: &Services,
    claims: Vec<(OwnedUserId, OwnedDeviceId, String)>,
) -> Result<BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, BTreeMap<String, Value>>>> {
    let (local, others): (Vec<_>, Vec<_>) = claims
        .into_iter()
        .partition(|(u, _, _)| s.accounts.is_local(u));
    let mut claimed = s.keys.claim(&local).await?;
    let mut remote: crate::federation::ByServer<OwnedDeviceId, ruma::OneTimeKeyAlgorithm> =
        BTreeMap::new();
    for (user, device, algorithm) in others {
        crate::federation::add_by_server(&mut remote, user, device, algorithm.as_str().into());
    }
    for (server, claims) in remote {
        match crate::federation::user_keys::claim_remote(s, &server, claims).await {
            Ok(keys) => {
                for (user, by_device) in keys {
                    for (device, keys) in by_device {
                        let keys = keys
                            .into_iter()
                            .filter_map(|(id, key)| {
                                Some((id.to_string(), key.deserialize_as_unchecked().ok()?))
                            })
                            .collect();
                        claimed
                            .entry(user.clone())
                            .or_default()
                            .insert(device, keys);
                    }
                }
            }
            Err(e) => tracing::info!(%server, error = %e, "remote one-time keys not claimed"),
        }
    }
    Ok(claimed)
}

/// Encrypts an event the AI sends to an encrypted room, sharing the room
/// key first with every device that does not have it yet.
pub async fn encrypt(
    s: &Services,
    ai: &UserId,
    room: &RoomId,
    settings: &Value,
    event_type: &str,
    content: &Value,
) -> Result<Value> {
    let peers = recipients(s, ai, room).await?;
    let device = device(s, ai).await?;
    let mut device = device.lock().await;
    read_inbox(s, ai, &mut device).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let needs = device.prepare_outbound(
        room.as_str(),
        RoomSettings::from_encryption_content(settings),
        &peers,
        now,
    );
    let claims: Vec<_> = needs
        .iter()
        .filter(|p| !device.has_olm_session(p))
        .filter_map(|p| {
            Some((
                UserId::parse(p.user_id.as_str()).ok()?,
                OwnedDeviceId::from(p.device_id.clone()),
                "signed_curve25519".to_owned(),
            ))
        })
        .collect();
    if !claims.is_empty() {
        let claimed = claim_keys(s, claims).await?;
        for peer in &needs {
            let key = UserId::parse(peer.user_id.as_str()).ok().and_then(|u| {
                let keys = claimed
                    .get(&u)?
                    .iter()
                    .find(|(d, _)| d.as_str() == peer.device_id)?
                    .1;
                keys.values().next().cloned()
            });
            if let Some(key) = key {
                if let Err(e) = device.start_olm_session(peer, &key) {
                    tracing::warn!(user = %peer.user_id, device = %peer.device_id, error = %e, "no Olm session");
                }
            }
        }
    }
    let mut messages = Vec::new();
    let mut shared = Vec::new();
    if let Some(room_key) = device.room_key_content(room.as_str()) {
        let ready: Vec<PeerDevice> = needs
            .iter()
            .filter(|p| device.has_olm_session(p))
            .cloned()
            .collect();
        for peer in &ready {
            match device.encrypt_to_device(peer, "m.room_key", room_key.clone()) {
                Ok(to_device) => {
                    let user = UserId::parse(peer.user_id.as_str())
                        .map_err(|e| Error::internal(e.to_string()))?;
                    messages.push((user, peer.device_id.clone(), to_device));
                    shared.push(peer.clone());
                }
                Err(e) => {
                    tracing::warn!(user = %peer.user_id, error = %e, "room key not encrypted")
                }
            }
        }
    }
    if !messages.is_empty() {
        let txn = crate::random::random_string(16);
        let (local, others): (Vec<_>, Vec<_>) = messages
            .into_iter()
            .partition(|(u, _, _)| s.accounts.is_local(u));
        let messages = local;
        let mut remote: crate::federation::edus::ToDeviceByServer = BTreeMap::new();
        for (user, device, content) in others {
            crate::federation::add_by_server(&mut remote, user, device, content);
        }
        if !remote.is_empty() {
            let message_id = format!("{}.{txn}", ai.localpart());
            crate::federation::edus::send_to_device(s, ai, "m.room.encrypted", &message_id, remote)
                .await?;
        }
        s.keys
            .send_to_device(ai, &device_id(), &txn, "m.room.encrypted", messages, |u| {
                s.accounts.device_ids(u)
            })
            .await?;
        device.mark_shared(room.as_str(), &shared);
    }
    let encrypted = device
        .encrypt_room_event(room.as_str(), event_type, content)
        .map_err(|e| Error::internal(format!("encrypting for {room}: {e}")))?;
    save(s, ai, &device).await?;
    Ok(encrypted)
}
