//! Device keys, one-time and fallback keys, key-change tracking and
//! to-device messages.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use matrixos_e2ee::{device_keys_changed, split_key_id, validate_device_keys, KeyError};
use matrixos_storage::tables::{
    DEVICE_KEYS, FALLBACK_KEYS, KEY_CHANGES, ONE_TIME_KEYS, TO_DEVICE, TO_DEVICE_TXNS,
};
use matrixos_storage::typed::Parts;
use matrixos_storage::{Batch, CountGuard, Direction};
use parking_lot::Mutex;
use ruma::{DeviceId, OwnedDeviceId, OwnedUserId, UserId};
use serde_json::{json, Value};

use super::Store;
use crate::error::{Error, Result};
use crate::services::Wake;

pub struct E2eeKeys {
    store: Store,
    /// Serialises claims so each one-time key is handed out exactly once.
    claim_lock: tokio::sync::Mutex<()>,
    /// Serialises uploads per server (cheap; uploads are rare).
    upload_lock: Mutex<()>,
}

/// The record of a to-device transaction a device sent.
fn to_device_txn(sender: &UserId, device: &DeviceId, txn_id: &str) -> [String; 4] {
    [
        sender.to_string(),
        device.to_string(),
        "to_device".to_owned(),
        txn_id.to_owned(),
    ]
}

fn dev_key(user: &UserId, device: &DeviceId) -> (String, String) {
    (user.to_string(), device.to_string())
}

/// The key of a device's record named `name` (a key id, an algorithm).
fn dev_part(user: &UserId, device: &DeviceId, name: &str) -> [String; 3] {
    [user.to_string(), device.to_string(), name.to_owned()]
}

fn dev_prefix(user: &UserId, device: &DeviceId) -> Vec<u8> {
    Parts::prefix(&[user.as_str(), device.as_str()])
}

/// A to-device message waiting for its device.
pub struct ToDeviceMessage {
    pub json: Value,
    /// Its stream position.
    pub count: u64,
}

impl E2eeKeys {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            claim_lock: tokio::sync::Mutex::new(()),
            upload_lock: Mutex::new(()),
        }
    }

    /// Records in the batch that `user`'s device list changed.
    pub fn mark_changed(&self, batch: &mut Batch, user: &UserId) -> CountGuard {
        let position = self.store.db.reserve_count(batch);
        KEY_CHANGES.put(batch, &(position.get(), user.to_string()), &());
        position
    }

    /// Records that `user`'s device list changed with no key change (a new
    /// or renamed device), waking those who share a room with them.
    pub async fn note_device_list_change(&self, user: &UserId) -> Result<()> {
        let mut batch = Batch::new();
        let position = self.mark_changed(&mut batch, user);
        let wake = Wake::sharers(&self.store.db, user)?;
        self.store.commit(batch, vec![position], wake).await
    }

    pub fn device_keys(&self, user: &UserId, device: &DeviceId) -> Result<Option<Value>> {
        Ok(DEVICE_KEYS.get(&self.store.db, &dev_key(user, device))?)
    }

    /// Stores uploaded keys; answers the one-time key counts.
    pub async fn upload(
        &self,
        user: &UserId,
        device: &DeviceId,
        device_keys: Option<Value>,
        one_time_keys: BTreeMap<String, Value>,
        fallback_keys: BTreeMap<String, Value>,
    ) -> Result<BTreeMap<String, u64>> {
        let mut batch = Batch::new();
        let mut positions = Vec::new();
        {
            let _guard = self.upload_lock.lock();
            if let Some(dk) = device_keys {
                // Keys of another user or device are a wrong parameter;
                // keys missing a field are not device keys at all.
                validate_device_keys(&dk, user.as_str(), device.as_str()).map_err(|e| match e {
                    KeyError::Mismatch(_) => Error::invalid_param(e.to_string()),
                    _ => Error::bad_json(e.to_string()),
                })?;
                let old = self.device_keys(user, device)?;
                if device_keys_changed(old.as_ref(), &dk) {
                    DEVICE_KEYS.put(&mut batch, &dev_key(user, device), &dk);
                    positions.push(self.mark_changed(&mut batch, user));
                }
            }
            for (key_id, key) in one_time_keys {
                split_key_id(&key_id).map_err(|e| Error::invalid_param(e.to_string()))?;
                ONE_TIME_KEYS.put(&mut batch, &dev_part(user, device, &key_id), &key);
            }
            for (key_id, key) in fallback_keys {
                let (alg, _) =
                    split_key_id(&key_id).map_err(|e| Error::invalid_param(e.to_string()))?;
                let record = json!({ "key_id": key_id, "key": key, "used": false });
                FALLBACK_KEYS.put(&mut batch, &dev_part(user, device, alg), &record);
            }
        }
        // New device keys concern everyone sharing a room; new one-time
        // keys only the uploader's own sync (their counts).
        let wake = if positions.is_empty() {
            Wake::user(user)
        } else {
            Wake::sharers(&self.store.db, user)?
        };
        self.store.commit(batch, positions, wake).await?;
        self.one_time_key_counts(user, device)
    }

    pub fn one_time_key_counts(
        &self,
        user: &UserId,
        device: &DeviceId,
    ) -> Result<BTreeMap<String, u64>> {
        let prefix = dev_prefix(user, device);
        let mut counts = BTreeMap::new();
        for item in ONE_TIME_KEYS.scan_prefix(&self.store.db, &prefix) {
            let (parts, _) = item?;
            let Some(key_id) = parts.get(2) else {
                continue;
            };
            if let Ok((alg, _)) = split_key_id(key_id) {
                *counts.entry(alg.to_owned()).or_insert(0) += 1;
            }
        }
        counts.entry("signed_curve25519".to_owned()).or_insert(0);
        Ok(counts)
    }

    pub fn unused_fallback_types(&self, user: &UserId, device: &DeviceId) -> Result<Vec<String>> {
        let prefix = dev_prefix(user, device);
        let mut out = Vec::new();
        for item in FALLBACK_KEYS.scan_prefix(&self.store.db, &prefix) {
            let (mut parts, record) = item?;
            if record.get("used") != Some(&Value::Bool(true)) && parts.len() == 3 {
                out.extend(parts.pop());
            }
        }
        Ok(out)
    }

    /// All device keys of `user` (or of the listed devices).
    pub fn query(
        &self,
        user: &UserId,
        only: &[OwnedDeviceId],
        names: &BTreeMap<OwnedDeviceId, Option<String>>,
    ) -> Result<BTreeMap<OwnedDeviceId, Value>> {
        let prefix = Parts::prefix(&[user.as_str()]);
        let mut out = BTreeMap::new();
        for item in DEVICE_KEYS.scan_prefix(&self.store.db, &prefix) {
            let ((_, device), mut keys) = item?;
            let device: OwnedDeviceId = device.into();
            if !only.is_empty() && !only.contains(&device) {
                continue;
            }
            if let Some(Some(name)) = names.get(&device) {
                keys["unsigned"] = json!({ "device_display_name": name });
            }
            out.insert(device, keys);
        }
        Ok(out)
    }

    /// Hands out one key per requested device: a one-time key if any is left
    /// (and deletes it), else the fallback key (marked used).
    pub async fn claim(
        &self,
        requests: &[(OwnedUserId, OwnedDeviceId, String)],
    ) -> Result<BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, BTreeMap<String, Value>>>> {
        let _guard = self.claim_lock.lock().await;
        let mut batch = Batch::new();
        let mut out: BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, BTreeMap<String, Value>>> =
            BTreeMap::new();
        for (user, device, algorithm) in requests {
            let prefix =
                Parts::prefix_within(&[user.as_str(), device.as_str()], &format!("{algorithm}:"));
            let found = ONE_TIME_KEYS
                .scan_prefix(&self.store.db, &prefix)
                .next()
                .transpose()?;
            let claimed = if let Some((mut parts, key)) = found {
                ONE_TIME_KEYS.delete(&mut batch, &parts);
                parts.pop().map(|key_id| (key_id, key))
            } else {
                let fk = dev_part(user, device, algorithm);
                match FALLBACK_KEYS.get(&self.store.db, &fk)? {
                    Some(mut record) => {
                        let key_id = record["key_id"].as_str().unwrap_or_default().to_owned();
                        let key = record["key"].clone();
                        record["used"] = json!(true);
                        FALLBACK_KEYS.put(&mut batch, &fk, &record);
                        Some((key_id, key))
                    }
                    None => None,
                }
            };
            if let Some((key_id, key)) = claimed {
                out.entry(user.clone())
                    .or_default()
                    .entry(device.clone())
                    .or_default()
                    .insert(key_id, key);
            }
        }
        self.store.commit(batch, vec![], Wake::none()).await?;
        Ok(out)
    }

    /// Users whose device lists changed in (from, to].
    pub fn changed_users(&self, from: u64, to: u64) -> Result<Vec<OwnedUserId>> {
        let start = (from + 1, String::new());
        let mut out = Vec::new();
        for item in KEY_CHANGES.scan(&self.store.db, b"", &start, Direction::Forward) {
            let ((count, user), ()) = item?;
            if count > to {
                break;
            }
            if let Ok(user) = UserId::parse(user) {
                if !out.contains(&user) {
                    out.push(user);
                }
            }
        }
        Ok(out)
    }

    /// Removes every key of the listed devices, in the caller's batch.
    pub fn delete_device_keys_into(
        &self,
        batch: &mut Batch,
        user: &UserId,
        device: &DeviceId,
    ) -> Result<CountGuard> {
        DEVICE_KEYS.delete(batch, &dev_key(user, device));
        let prefix = dev_prefix(user, device);
        for table in [ONE_TIME_KEYS, FALLBACK_KEYS] {
            for item in table.scan_prefix(&self.store.db, &prefix) {
                table.delete(batch, &item?.0);
            }
        }
        for item in TO_DEVICE.scan_prefix(&self.store.db, &prefix) {
            TO_DEVICE.delete(batch, &item?.0);
        }
        Ok(self.mark_changed(batch, user))
    }

    /// Queues to-device messages; `*` means every device of the user.
    /// Whether a to-device transaction was already taken.
    pub fn to_device_sent(&self, sender: &UserId, device: &DeviceId, txn_id: &str) -> Result<bool> {
        Ok(TO_DEVICE_TXNS.contains(&self.store.db, &to_device_txn(sender, device, txn_id))?)
    }

    /// Idempotent per sender device and transaction id. Messages for a
    /// device `devices_of` does not list (an unknown user or device) are
    /// dropped, as Synapse does: nobody would ever collect them.
    pub async fn send_to_device(
        &self,
        sender: &UserId,
        sender_device: &DeviceId,
        txn_id: &str,
        kind: &str,
        messages: Vec<(OwnedUserId, String, Value)>,
        devices_of: impl Fn(&UserId) -> Result<Vec<OwnedDeviceId>>,
    ) -> Result<()> {
        let txn_key = to_device_txn(sender, sender_device, txn_id);
        if TO_DEVICE_TXNS.contains(&self.store.db, &txn_key)? {
            return Ok(());
        }
        let mut batch = Batch::new();
        let mut positions = Vec::new();
        let mut known: HashMap<OwnedUserId, Vec<OwnedDeviceId>> = HashMap::new();
        for (user, device, content) in messages {
            let devices = match known.entry(user.clone()) {
                Entry::Occupied(seen) => seen.into_mut(),
                Entry::Vacant(new) => new.insert(devices_of(&user)?),
            };
            let targets: Vec<&OwnedDeviceId> = if device == "*" {
                devices.iter().collect()
            } else {
                devices.iter().filter(|d| d.as_str() == device).collect()
            };
            if targets.is_empty() {
                continue;
            }
            let json = json!({ "sender": sender, "type": kind, "content": content });
            for target in targets {
                let position = self.store.db.reserve_count(&mut batch);
                let key = (user.to_string(), target.to_string(), position.get());
                TO_DEVICE.put(&mut batch, &key, &json);
                positions.push(position);
            }
        }
        TO_DEVICE_TXNS.put(&mut batch, &txn_key, &());
        let wake = Wake::users(known.into_keys());
        self.store.commit(batch, positions, wake).await
    }

    /// Deletes messages the device acknowledged (position ≤ `acked`) and
    /// returns the rest up to `upto`.
    pub async fn take_to_device(
        &self,
        user: &UserId,
        device: &DeviceId,
        acked: u64,
        upto: u64,
    ) -> Result<Vec<ToDeviceMessage>> {
        let prefix = dev_prefix(user, device);
        let mut batch = Batch::new();
        let mut out = Vec::new();
        for item in TO_DEVICE.scan_prefix(&self.store.db, &prefix) {
            let (key, json) = item?;
            let count = key.2;
            if count <= acked {
                TO_DEVICE.delete(&mut batch, &key);
            } else if count <= upto {
                out.push(ToDeviceMessage { json, count });
            }
        }
        if !batch.is_empty() {
            self.store.commit(batch, vec![], Wake::none()).await?;
        }
        Ok(out)
    }
}
