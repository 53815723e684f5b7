//! Cross-signing keys and the signatures users add to keys.
//!
//! Keys are stored as uploaded. Signatures added later by
//! `/keys/signatures/upload` live in their own table rather than inside the
//! key JSON: device keys belong to [`E2eeKeys`] and are rewritten whenever a
//! device re-uploads them, and a signature must outlive that. Each stored
//! signature remembers the content it was made over, so a device that comes
//! back with other keys does not show a stale signature.
//!
//! Every change here is a device-list change of the key's owner, recorded in
//! the same batch, so other users' `/sync` and `/keys/changes` re-fetch it.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use http::StatusCode;
use matrixos_e2ee::cross_signing::{
    add_signature, may_sign, new_signatures, public_key, same_signed_content, signature_visible,
    upload_needs_auth, validate_upload, verify_signature, CrossSigningError, KeySet, KeyUsage,
    PublicKey, SignatureTarget, Signer,
};
use matrixos_storage::tables::{CROSS_SIGNING_KEYS, KEY_SIGNATURES};
use matrixos_storage::typed::Parts;
use matrixos_storage::Batch;
use ruma::{OwnedDeviceId, OwnedUserId, UserId};
use serde_json::{json, Value};

use super::e2ee_keys::E2eeKeys;
use super::Store;
use crate::error::{Error, Result};
use crate::services::Wake;

/// `KeySignatures` kinds: what the target key name names.
const DEVICE: &str = "device";
const MASTER: &str = "master";

/// Per target user, per key name: why signatures on it were refused.
pub type Failures = BTreeMap<OwnedUserId, BTreeMap<String, Value>>;

pub struct CrossSigning {
    store: Store,
    /// Serialises uploads from first read to durable write, so the auth
    /// decision and the signature checks see the keys the write replaces.
    /// Uploads are rare; one lock per server is enough.
    lock: tokio::sync::Mutex<()>,
}

/// A signature accepted for storage.
struct Accepted {
    key: [String; 5],
    record: Value,
}

fn key_key(user: &UserId, usage: KeyUsage) -> (String, String) {
    (user.to_string(), usage.as_str().to_owned())
}

fn to_error(e: CrossSigningError) -> Error {
    let errcode = match e {
        CrossSigningError::WrongUser(_)
        | CrossSigningError::WrongUsage(_)
        | CrossSigningError::BadPublicKey(_) => "M_INVALID_PARAM",
        CrossSigningError::NoMasterKey => "M_MISSING_PARAM",
        CrossSigningError::InvalidSignature(_) => "M_INVALID_SIGNATURE",
        // Synapse answers a changed key with a plain 400.
        CrossSigningError::KeyMismatch => "M_UNKNOWN",
    };
    Error::new(StatusCode::BAD_REQUEST, errcode, e.to_string())
}

fn invalid_signature(message: impl Into<String>) -> Error {
    Error::new(StatusCode::BAD_REQUEST, "M_INVALID_SIGNATURE", message)
}

/// What a signature covers: the key without `signatures` and `unsigned`.
fn signed_content(key: &Value) -> Value {
    let mut content = key.clone();
    if let Some(object) = content.as_object_mut() {
        object.remove("signatures");
        object.remove("unsigned");
    }
    content
}

/// How a refused signature is reported in `failures`.
fn failure_json(e: &Error) -> Value {
    json!({ "status": e.status.as_u16(), "errcode": e.errcode, "error": e.message })
}

impl CrossSigning {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// `user`'s stored key for `usage`, without added signatures.
    pub fn key(&self, user: &UserId, usage: KeyUsage) -> Result<Option<Value>> {
        Ok(CROSS_SIGNING_KEYS.get(&self.store.db, &key_key(user, usage))?)
    }

    /// All of `user`'s stored keys, without added signatures.
    pub fn stored(&self, user: &UserId) -> Result<KeySet> {
        let mut set = KeySet::default();
        for usage in KeyUsage::ALL {
            if let Some(key) = self.key(user, usage)? {
                set.set(usage, key);
            }
        }
        Ok(set)
    }

    /// Publishes uploaded keys. `authorize` (user-interactive auth) runs
    /// only when the upload would change keys already in place.
    pub async fn upload<F, Fut>(
        &self,
        e2ee: &E2eeKeys,
        user: &UserId,
        upload: KeySet,
        authorize: F,
    ) -> Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let _guard = self.lock.lock().await;
        let stored = self.stored(user)?;
        validate_upload(user.as_str(), stored.master.as_ref(), &upload).map_err(to_error)?;
        for (_, key) in upload.iter() {
            let name = public_key(key).map(|k| k.name().to_owned());
            if let Some(name) = name {
                let device: OwnedDeviceId = name.as_str().into();
                if e2ee.device_keys(user, &device)?.is_some() {
                    return Err(Error::forbidden("Key ID in use"));
                }
            }
        }
        if upload_needs_auth(&stored, &upload) {
            authorize().await?;
        }
        let mut batch = Batch::new();
        for (usage, key) in upload.iter() {
            if stored.get(usage) != Some(key) {
                CROSS_SIGNING_KEYS.put(&mut batch, &key_key(user, usage), key);
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        let position = e2ee.mark_changed(&mut batch, user);
        tracing::info!(user = %user, "cross-signing keys updated");
        let wake = Wake::sharers(&self.store.db, user)?;
        self.store.commit(batch, vec![position], wake).await
    }

    /// Stores the signatures `signer` adds to keys; answers the refused ones.
    pub async fn upload_signatures(
        &self,
        e2ee: &E2eeKeys,
        signer: &UserId,
        signed: Vec<(OwnedUserId, String, Value)>,
    ) -> Result<Failures> {
        let _guard = self.lock.lock().await;
        let own = self.stored(signer)?;
        let mut batch = Batch::new();
        let mut changed = BTreeSet::new();
        let mut failures = Failures::new();
        for (target, name, object) in signed {
            match self.check_signatures(e2ee, signer, &own, &target, &name, &object) {
                Ok(accepted) => {
                    if !accepted.is_empty() {
                        changed.insert(target);
                    }
                    for a in accepted {
                        KEY_SIGNATURES.put(&mut batch, &a.key, &a.record);
                    }
                }
                Err(e) if e.status.is_server_error() => return Err(e),
                Err(e) => {
                    failures
                        .entry(target)
                        .or_default()
                        .insert(name, failure_json(&e));
                }
            }
        }
        if !batch.is_empty() {
            let positions = changed
                .iter()
                .map(|user| e2ee.mark_changed(&mut batch, user))
                .collect();
            let mut wake = Wake::none();
            for user in &changed {
                wake.merge(Wake::sharers(&self.store.db, user)?);
            }
            self.store.commit(batch, positions, wake).await?;
        }
        Ok(failures)
    }

    /// Checks the new signatures `signer` put on `target`'s key `name`.
    fn check_signatures(
        &self,
        e2ee: &E2eeKeys,
        signer: &UserId,
        own: &KeySet,
        target: &UserId,
        name: &str,
        signed: &Value,
    ) -> Result<Vec<Accepted>> {
        let (kind, target_kind, mut stored) =
            self.signature_target(e2ee, signer, own, target, name)?;
        for (by, key_id, signature) in self.added_signatures(target, kind, name, &stored)? {
            add_signature(&mut stored, &by, &key_id, &signature);
        }
        if !same_signed_content(signed, &stored) {
            return Err(to_error(CrossSigningError::KeyMismatch));
        }
        let has_any = signed
            .get("signatures")
            .and_then(|s| s.get(signer.as_str()))
            .and_then(Value::as_object)
            .is_some_and(|s| !s.is_empty());
        if !has_any {
            return Err(invalid_signature("No signature"));
        }
        let mut accepted = Vec::new();
        for (key_id, signature) in new_signatures(signed, &stored, signer.as_str()) {
            let (who, public) = self
                .signing_key(e2ee, signer, own, key_id)?
                .ok_or_else(|| invalid_signature(format!("Unknown signing key {key_id}")))?;
            if !may_sign(who, target_kind) {
                return Err(invalid_signature(format!("{key_id} may not sign this key")));
            }
            verify_signature(signed, signer.as_str(), &public).map_err(to_error)?;
            accepted.push(Accepted {
                key: [
                    target.to_string(),
                    kind.to_owned(),
                    name.to_owned(),
                    signer.to_string(),
                    key_id.to_owned(),
                ],
                record: json!({ "signature": signature, "signed": signed_content(&stored) }),
            });
        }
        Ok(accepted)
    }

    /// What `name` of `target` is, and the key the server holds for it:
    /// the signer's own master key or device, or another user's master key.
    fn signature_target(
        &self,
        e2ee: &E2eeKeys,
        signer: &UserId,
        own: &KeySet,
        target: &UserId,
        name: &str,
    ) -> Result<(&'static str, SignatureTarget, Value)> {
        if target == signer {
            if let Some(master) = &own.master {
                if public_key(master).is_some_and(|k| k.name() == name) {
                    return Ok((MASTER, SignatureTarget::OwnMaster, master.clone()));
                }
            }
            let device: OwnedDeviceId = name.into();
            return match e2ee.device_keys(signer, &device)? {
                Some(keys) => Ok((DEVICE, SignatureTarget::OwnDevice, keys)),
                None => Err(Error::not_found("Unknown device")),
            };
        }
        let master = self
            .key(target, KeyUsage::Master)?
            .ok_or_else(|| Error::not_found("No master key for user"))?;
        if public_key(&master).is_none_or(|k| k.name() != name) {
            return Err(Error::not_found("Unknown key"));
        }
        Ok((MASTER, SignatureTarget::OtherMaster, master))
    }

    /// Which of `signer`'s keys `key_id` names, and its public key.
    fn signing_key(
        &self,
        e2ee: &E2eeKeys,
        signer: &UserId,
        own: &KeySet,
        key_id: &str,
    ) -> Result<Option<(Signer, PublicKey)>> {
        for (usage, who) in [
            (KeyUsage::Master, Signer::Master),
            (KeyUsage::SelfSigning, Signer::SelfSigning),
            (KeyUsage::UserSigning, Signer::UserSigning),
        ] {
            if let Some(public) = own.get(usage).and_then(public_key) {
                if public.key_id == key_id {
                    return Ok(Some((who, public)));
                }
            }
        }
        let Some(("ed25519", device)) = key_id.split_once(':') else {
            return Ok(None);
        };
        let device: OwnedDeviceId = device.into();
        Ok(e2ee
            .device_keys(signer, &device)?
            .and_then(|keys| PublicKey::from_keys(&keys, key_id))
            .map(|public| (Signer::Device, public)))
    }

    /// Signatures stored for `target`'s key `name` of `kind` that were made
    /// over the key's current content: (signer, key id, signature).
    fn added_signatures(
        &self,
        target: &UserId,
        kind: &str,
        name: &str,
        current: &Value,
    ) -> Result<Vec<(String, String, String)>> {
        let prefix = Parts::prefix(&[target.as_str(), kind, name]);
        let mut out = Vec::new();
        for item in KEY_SIGNATURES.scan_prefix(&self.store.db, &prefix) {
            let (parts, record) = item?;
            let [_, _, _, by, key_id] = &parts[..] else {
                continue;
            };
            if !record
                .get("signed")
                .is_some_and(|signed| same_signed_content(signed, current))
            {
                continue;
            }
            if let Some(signature) = record.get("signature").and_then(Value::as_str) {
                out.push((by.clone(), key_id.clone(), signature.to_owned()));
            }
        }
        Ok(out)
    }

    /// `user`'s keys as `viewer` may see them in `/keys/query`: the master
    /// key with the signatures visible to the viewer, the self-signing key,
    /// and the user-signing key only for the user themself.
    pub fn keys_for(&self, user: &UserId, viewer: &UserId) -> Result<KeySet> {
        let mut set = self.stored(user)?;
        if user != viewer {
            set.user_signing = None;
        }
        if let Some(master) = set.master.as_mut() {
            if let Some(public) = public_key(master) {
                let added = self.added_signatures(user, MASTER, public.name(), master)?;
                for (by, key_id, signature) in added {
                    if signature_visible(user.as_str(), &by, viewer.as_str()) {
                        add_signature(master, &by, &key_id, &signature);
                    }
                }
            }
        }
        Ok(set)
    }

    /// Adds the signatures stored for `user`'s devices to their keys.
    pub fn add_device_signatures(
        &self,
        user: &UserId,
        devices: &mut BTreeMap<OwnedDeviceId, Value>,
    ) -> Result<()> {
        for (device, device_keys) in devices.iter_mut() {
            let added = self.added_signatures(user, DEVICE, device.as_str(), device_keys)?;
            for (by, key_id, signature) in added {
                // Only the owner's self-signing key signs devices.
                if by == user.as_str() {
                    add_signature(device_keys, &by, &key_id, &signature);
                }
            }
        }
        Ok(())
    }
}
