//! Device keys, one-time and fallback keys, key-change tracking and
//! to-device messages.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use matrixos_e2ee::{device_keys_changed, split_key_id, validate_device_keys};
use matrixos_storage::{keys, Batch, CountGuard, Table};
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

fn dev_key(user: &UserId, device: &DeviceId) -> Vec<u8> {
    keys::join(&[user.as_bytes(), device.as_bytes()])
}

fn dev_prefix(user: &UserId, device: &DeviceId) -> Vec<u8> {
    keys::prefix(&[user.as_bytes(), device.as_bytes()])
}

/// A to-device message waiting for its device.
pub struct ToDeviceMessage {
    pub json: Value,
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
        let mut key = position.get().to_be_bytes().to_vec();
        key.extend_from_slice(user.as_bytes());
        batch.put(Table::KeyChanges, key, Vec::new());
        position
    }

    pub fn device_keys(&self, user: &UserId, device: &DeviceId) -> Result<Option<Value>> {
        match self
            .store
            .db
            .get(Table::DeviceKeys, &dev_key(user, device))?
        {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
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
                validate_device_keys(&dk, user.as_str(), device.as_str())
                    .map_err(|e| Error::invalid_param(e.to_string()))?;
                let old = self.device_keys(user, device)?;
                if device_keys_changed(old.as_ref(), &dk) {
                    batch.put(
                        Table::DeviceKeys,
                        dev_key(user, device),
                        serde_json::to_vec(&dk)?,
                    );
                    positions.push(self.mark_changed(&mut batch, user));
                }
            }
            for (key_id, key) in one_time_keys {
                split_key_id(&key_id).map_err(|e| Error::invalid_param(e.to_string()))?;
                let mut k = dev_prefix(user, device);
                k.extend_from_slice(key_id.as_bytes());
                batch.put(Table::OneTimeKeys, k, serde_json::to_vec(&key)?);
            }
            for (key_id, key) in fallback_keys {
                let (alg, _) =
                    split_key_id(&key_id).map_err(|e| Error::invalid_param(e.to_string()))?;
                let mut k = dev_prefix(user, device);
                k.extend_from_slice(alg.as_bytes());
                let record = json!({ "key_id": key_id, "key": key, "used": false });
                batch.put(Table::FallbackKeys, k, serde_json::to_vec(&record)?);
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
        for item in self.store.db.scan_prefix(Table::OneTimeKeys, &prefix) {
            let (k, _) = item?;
            let key_id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            if let Ok((alg, _)) = split_key_id(&key_id) {
                *counts.entry(alg.to_owned()).or_insert(0) += 1;
            }
        }
        counts.entry("signed_curve25519".to_owned()).or_insert(0);
        Ok(counts)
    }

    pub fn unused_fallback_types(&self, user: &UserId, device: &DeviceId) -> Result<Vec<String>> {
        let prefix = dev_prefix(user, device);
        let mut out = Vec::new();
        for item in self.store.db.scan_prefix(Table::FallbackKeys, &prefix) {
            let (k, v) = item?;
            let record: Value = serde_json::from_slice(&v)?;
            if record.get("used") != Some(&Value::Bool(true)) {
                out.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
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
        let prefix = keys::prefix(&[user.as_bytes()]);
        let mut out = BTreeMap::new();
        for item in self.store.db.scan_prefix(Table::DeviceKeys, &prefix) {
            let (k, v) = item?;
            let device: OwnedDeviceId = String::from_utf8_lossy(&k[prefix.len()..])
                .into_owned()
                .into();
            if !only.is_empty() && !only.contains(&device) {
                continue;
            }
            let mut keys: Value = serde_json::from_slice(&v)?;
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
            let mut prefix = dev_prefix(user, device);
            prefix.extend_from_slice(algorithm.as_bytes());
            prefix.push(b':');
            let found = self
                .store
                .db
                .scan_prefix(Table::OneTimeKeys, &prefix)
                .next()
                .transpose()?;
            let claimed = if let Some((k, v)) = found {
                batch.delete(Table::OneTimeKeys, k.to_vec());
                let key_id =
                    String::from_utf8_lossy(&k[dev_prefix(user, device).len()..]).into_owned();
                Some((key_id, serde_json::from_slice(&v)?))
            } else {
                let mut fk = dev_prefix(user, device);
                fk.extend_from_slice(algorithm.as_bytes());
                match self.store.db.get(Table::FallbackKeys, &fk)? {
                    Some(v) => {
                        let mut record: Value = serde_json::from_slice(&v)?;
                        let key_id = record["key_id"].as_str().unwrap_or_default().to_owned();
                        let key = record["key"].clone();
                        record["used"] = json!(true);
                        batch.put(Table::FallbackKeys, fk, serde_json::to_vec(&record)?);
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
        let start = (from + 1).to_be_bytes();
        let mut out = Vec::new();
        for item in self.store.db.scan_from(
            Table::KeyChanges,
            b"",
            &start,
            matrixos_storage::Direction::Forward,
        ) {
            let (k, _) = item?;
            let Some(count) = keys::read_u64(&k) else {
                continue;
            };
            if count > to {
                break;
            }
            if let Ok(user) = UserId::parse(String::from_utf8_lossy(&k[8..]).as_ref()) {
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
        batch.delete(Table::DeviceKeys, dev_key(user, device));
        let prefix = dev_prefix(user, device);
        for table in [Table::OneTimeKeys, Table::FallbackKeys, Table::ToDevice] {
            for item in self.store.db.scan_prefix(table, &prefix) {
                batch.delete(table, item?.0.to_vec());
            }
        }
        Ok(self.mark_changed(batch, user))
    }

    /// Queues to-device messages; `*` means every device of the user.
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
        let txn_key = keys::join(&[
            sender.as_bytes(),
            sender_device.as_bytes(),
            b"to_device",
            txn_id.as_bytes(),
        ]);
        if self.store.db.exists(Table::Transactions, &txn_key)? {
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
            let json =
                serde_json::to_vec(&json!({ "sender": sender, "type": kind, "content": content }))?;
            for target in targets {
                let position = self.store.db.reserve_count(&mut batch);
                let mut key = dev_prefix(&user, target);
                key.extend_from_slice(&position.get().to_be_bytes());
                batch.put(Table::ToDevice, key, json.clone());
                positions.push(position);
            }
        }
        batch.put(Table::Transactions, txn_key, Vec::new());
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
        for item in self.store.db.scan_prefix(Table::ToDevice, &prefix) {
            let (k, v) = item?;
            let count = keys::read_u64(&k[prefix.len()..]).unwrap_or(0);
            if count <= acked {
                batch.delete(Table::ToDevice, k.to_vec());
            } else if count <= upto {
                out.push(ToDeviceMessage {
                    json: serde_json::from_slice(&v)?,
                });
            }
        }
        if !batch.is_empty() {
            self.store.commit(batch, vec![], Wake::none()).await?;
        }
        Ok(out)
    }
}
