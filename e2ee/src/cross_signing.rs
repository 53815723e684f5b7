//! Cross-signing rules the server enforces before it publishes a key or a
//! signature: whose key it is, what it is for, which key may sign what, and
//! whether the signature really verifies. Clients re-check all of this, but a
//! server that stores garbage makes every other device of the user distrust a
//! healthy identity, so bad uploads are refused here with the error Synapse
//! gives. Storage and HTTP stay in the server.

use ruma::serde::Base64;
use ruma::signatures::{to_canonical_json_string_for_signing, verify_canonical_json_bytes};
use ruma::{CanonicalJsonValue, SigningKeyAlgorithm};
use serde_json::{Map, Value};

/// Unpadded standard base64, lenient on input as the spec asks.
type B64 = Base64;

/// What a cross-signing key is for (its `usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyUsage {
    Master,
    SelfSigning,
    UserSigning,
}

impl KeyUsage {
    pub const ALL: [KeyUsage; 3] = [
        KeyUsage::Master,
        KeyUsage::SelfSigning,
        KeyUsage::UserSigning,
    ];

    /// The `usage` string, also the storage name of the key.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUsage::Master => "master",
            KeyUsage::SelfSigning => "self_signing",
            KeyUsage::UserSigning => "user_signing",
        }
    }

    /// The field of `/keys/device_signing/upload` that carries this key.
    pub fn upload_field(self) -> &'static str {
        match self {
            KeyUsage::Master => "master_key",
            KeyUsage::SelfSigning => "self_signing_key",
            KeyUsage::UserSigning => "user_signing_key",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CrossSigningError {
    #[error("{0} key belongs to another user")]
    WrongUser(&'static str),
    #[error("{0} key does not have that usage")]
    WrongUsage(&'static str),
    #[error("{0} key must hold exactly one ed25519 public key")]
    BadPublicKey(&'static str),
    #[error("no master key available")]
    NoMasterKey,
    #[error("invalid signature on {0}")]
    InvalidSignature(String),
    #[error("signed key does not match the stored key")]
    KeyMismatch,
}

/// A public ed25519 key as it appears in a key's `keys` or a device's keys:
/// `ed25519:<name>` → unpadded base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// `ed25519:<name>`, the id signatures made with this key are filed under.
    pub key_id: String,
    /// The raw 32-byte key.
    pub bytes: Vec<u8>,
}

impl PublicKey {
    /// The part of the key id after `ed25519:`: for a cross-signing key its
    /// unpadded base64 public key, for a device key the device id.
    pub fn name(&self) -> &str {
        self.key_id.split_once(':').map_or("", |(_, n)| n)
    }

    /// Reads `keys[key_id]` of a device or cross-signing key.
    pub fn from_keys(object: &Value, key_id: &str) -> Option<Self> {
        if !key_id.starts_with("ed25519:") {
            return None;
        }
        let encoded = object.get("keys")?.get(key_id)?.as_str()?;
        let bytes = B64::parse(encoded).ok()?;
        (bytes.as_bytes().len() == 32).then(|| Self {
            key_id: key_id.to_owned(),
            bytes: bytes.as_bytes().to_vec(),
        })
    }
}

/// The keys of one `/keys/device_signing/upload`, or a user's stored keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeySet {
    pub master: Option<Value>,
    pub self_signing: Option<Value>,
    pub user_signing: Option<Value>,
}

impl KeySet {
    pub fn get(&self, usage: KeyUsage) -> Option<&Value> {
        match usage {
            KeyUsage::Master => self.master.as_ref(),
            KeyUsage::SelfSigning => self.self_signing.as_ref(),
            KeyUsage::UserSigning => self.user_signing.as_ref(),
        }
    }

    pub fn set(&mut self, usage: KeyUsage, key: Value) {
        let slot = match usage {
            KeyUsage::Master => &mut self.master,
            KeyUsage::SelfSigning => &mut self.self_signing,
            KeyUsage::UserSigning => &mut self.user_signing,
        };
        *slot = Some(key);
    }

    /// The keys present, master first.
    pub fn iter(&self) -> impl Iterator<Item = (KeyUsage, &Value)> {
        KeyUsage::ALL
            .into_iter()
            .filter_map(|u| self.get(u).map(|k| (u, k)))
    }
}

/// Checks that `key` is `user_id`'s key for `usage` and returns its public
/// key. Like Synapse, `usage` must contain the expected usage.
pub fn check_key(
    key: &Value,
    user_id: &str,
    usage: KeyUsage,
) -> Result<PublicKey, CrossSigningError> {
    if key.get("user_id").and_then(Value::as_str) != Some(user_id) {
        return Err(CrossSigningError::WrongUser(usage.as_str()));
    }
    let usages = key.get("usage").and_then(Value::as_array);
    if !usages.is_some_and(|u| u.iter().any(|u| u.as_str() == Some(usage.as_str()))) {
        return Err(CrossSigningError::WrongUsage(usage.as_str()));
    }
    public_key(key).ok_or(CrossSigningError::BadPublicKey(usage.as_str()))
}

/// The one public key of a cross-signing key.
pub fn public_key(key: &Value) -> Option<PublicKey> {
    let keys = key.get("keys")?.as_object()?;
    match keys.keys().collect::<Vec<_>>()[..] {
        [key_id] => PublicKey::from_keys(key, key_id),
        _ => None,
    }
}

/// Checks an upload against the user's stored master key: the self-signing
/// and user-signing keys must be signed by the uploaded master key, or by the
/// stored one when the upload has none.
pub fn validate_upload(
    user_id: &str,
    stored_master: Option<&Value>,
    upload: &KeySet,
) -> Result<(), CrossSigningError> {
    let master = match &upload.master {
        Some(key) => check_key(key, user_id, KeyUsage::Master)?,
        None => stored_master
            .and_then(public_key)
            .ok_or(CrossSigningError::NoMasterKey)?,
    };
    for usage in [KeyUsage::SelfSigning, KeyUsage::UserSigning] {
        if let Some(key) = upload.get(usage) {
            check_key(key, user_id, usage)?;
            verify_signature(key, user_id, &master).map_err(|_| {
                CrossSigningError::InvalidSignature(format!("{} key", usage.as_str()))
            })?;
        }
    }
    Ok(())
}

/// Whether an upload needs user-interactive auth (spec v1.11, MSC3967): only
/// when a master key exists and the upload brings any key that differs from
/// the stored one, so the first upload and an identical retry pass freely.
pub fn upload_needs_auth(stored: &KeySet, upload: &KeySet) -> bool {
    stored.master.is_some()
        && upload
            .iter()
            .any(|(usage, key)| stored.get(usage) != Some(key))
}

/// Checks `signatures[signer][key.key_id]` on `object` over its canonical
/// JSON without `signatures` and `unsigned`.
pub fn verify_signature(
    object: &Value,
    signer: &str,
    key: &PublicKey,
) -> Result<(), CrossSigningError> {
    let invalid = || CrossSigningError::InvalidSignature(key.key_id.clone());
    let signature = object
        .get("signatures")
        .and_then(|s| s.get(signer))
        .and_then(|s| s.get(&key.key_id))
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    let signature = B64::parse(signature).map_err(|_| invalid())?;
    let CanonicalJsonValue::Object(canonical) =
        CanonicalJsonValue::try_from(object.clone()).map_err(|_| invalid())?
    else {
        return Err(invalid());
    };
    let signed = to_canonical_json_string_for_signing(&canonical).map_err(|_| invalid())?;
    verify_canonical_json_bytes(
        &SigningKeyAlgorithm::Ed25519,
        &key.bytes,
        signature.as_bytes(),
        signed.as_bytes(),
    )
    .map_err(|_| invalid())
}

/// What a signature in `/keys/signatures/upload` is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureTarget {
    /// One of the uploader's own devices.
    OwnDevice,
    /// The uploader's own master key.
    OwnMaster,
    /// Another user's master key.
    OtherMaster,
}

/// Which of the uploader's keys made a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    Device,
    Master,
    SelfSigning,
    UserSigning,
}

/// The chains of trust the spec defines: devices are vouched for by the
/// self-signing key, one's master key by one's devices (and itself), other
/// people's master keys by one's user-signing key. Nothing else is accepted,
/// so a stolen device key cannot vouch for another device.
pub fn may_sign(signer: Signer, target: SignatureTarget) -> bool {
    matches!(
        (signer, target),
        (Signer::SelfSigning, SignatureTarget::OwnDevice)
            | (Signer::Device | Signer::Master, SignatureTarget::OwnMaster)
            | (Signer::UserSigning, SignatureTarget::OtherMaster)
    )
}

fn without_signatures(object: &Value) -> Option<Map<String, Value>> {
    let mut map = object.as_object()?.clone();
    map.remove("signatures");
    map.remove("unsigned");
    Some(map)
}

/// Whether `signed` is `stored` plus signatures: `/keys/signatures/upload`
/// may only add signatures, never change the key itself.
pub fn same_signed_content(signed: &Value, stored: &Value) -> bool {
    match (without_signatures(signed), without_signatures(stored)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The signatures by `signer` on `signed` that `stored` does not carry yet.
pub fn new_signatures<'a>(
    signed: &'a Value,
    stored: &Value,
    signer: &str,
) -> Vec<(&'a str, &'a str)> {
    let Some(given) = signed
        .get("signatures")
        .and_then(|s| s.get(signer))
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    let known = stored.get("signatures").and_then(|s| s.get(signer));
    given
        .iter()
        .filter_map(|(key_id, sig)| Some((key_id.as_str(), sig.as_str()?)))
        .filter(|(key_id, sig)| {
            known.and_then(|k| k.get(*key_id)).and_then(Value::as_str) != Some(sig)
        })
        .collect()
}

/// Adds one signature to a key object. The key's uploader chose what its
/// `signatures` and `signatures.<signer>` hold: anything but an object is
/// replaced (assigning into it by index would panic).
pub fn add_signature(key: &mut Value, signer: &str, key_id: &str, signature: &str) {
    let Some(object) = key.as_object_mut() else {
        return;
    };
    let signatures = object
        .entry("signatures")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(by_signer) = object_entry(signatures, signer) else {
        return;
    };
    if let Some(by_signer) = by_signer.as_object_mut() {
        by_signer.insert(key_id.to_owned(), Value::String(signature.to_owned()));
    }
}

/// `value[field]`, made an object first if `value` or it is not one.
fn object_entry<'a>(value: &'a mut Value, field: &str) -> Option<&'a mut Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    let entry = value
        .as_object_mut()?
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    Some(entry)
}

/// Whether `viewer` may see a signature `signer` made on `owner`'s key.
/// Who verified whom is private (as in Synapse): others see only the owner's
/// own signatures, plus their own.
pub fn signature_visible(owner: &str, signer: &str, viewer: &str) -> bool {
    signer == owner || signer == viewer
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruma::signatures::{sign_json, Ed25519KeyPair};
    use ruma::CanonicalJsonObject;
    use serde_json::json;

    const USER: &str = "@a:x";

    struct Key {
        pair: Ed25519KeyPair,
        public: String,
    }

    fn key() -> Key {
        let der = Ed25519KeyPair::generate();
        let probe = Ed25519KeyPair::from_der(&der, "v".into()).expect("parse");
        let public = B64::new(probe.public_key().to_vec()).encode();
        let pair = Ed25519KeyPair::from_der(&der, public.clone()).expect("parse");
        Key { pair, public }
    }

    fn sign(value: Value, by: &Key) -> Value {
        let mut object: CanonicalJsonObject =
            serde_json::from_value(value).expect("canonical object");
        sign_json(USER, &by.pair, &mut object).expect("sign");
        serde_json::to_value(object).expect("json")
    }

    fn cs_key(k: &Key, usage: &str) -> Value {
        json!({ "user_id": USER, "usage": [usage],
                "keys": { format!("ed25519:{}", k.public): k.public } })
    }

    #[test]
    fn keys_must_belong_to_the_user_and_usage() {
        let m = key();
        assert!(check_key(&cs_key(&m, "master"), USER, KeyUsage::Master).is_ok());
        assert_eq!(
            check_key(&cs_key(&m, "master"), "@b:x", KeyUsage::Master),
            Err(CrossSigningError::WrongUser("master"))
        );
        assert_eq!(
            check_key(&cs_key(&m, "self_signing"), USER, KeyUsage::Master),
            Err(CrossSigningError::WrongUsage("master"))
        );
        let mut two = cs_key(&m, "master");
        two["keys"]["ed25519:other"] = json!(m.public);
        assert_eq!(
            check_key(&two, USER, KeyUsage::Master),
            Err(CrossSigningError::BadPublicKey("master"))
        );
        let short =
            json!({ "user_id": USER, "usage": ["master"], "keys": { "ed25519:x": "AAAA" } });
        assert!(check_key(&short, USER, KeyUsage::Master).is_err());
    }

    #[test]
    fn sub_keys_must_be_signed_by_the_master_key() {
        let (m, s, u, other) = (key(), key(), key(), key());
        let upload = KeySet {
            master: Some(cs_key(&m, "master")),
            self_signing: Some(sign(cs_key(&s, "self_signing"), &m)),
            user_signing: Some(sign(cs_key(&u, "user_signing"), &m)),
        };
        assert_eq!(validate_upload(USER, None, &upload), Ok(()));

        let forged = KeySet {
            self_signing: Some(sign(cs_key(&s, "self_signing"), &other)),
            ..upload.clone()
        };
        assert!(matches!(
            validate_upload(USER, None, &forged),
            Err(CrossSigningError::InvalidSignature(_))
        ));

        // Without a master key in the upload, the stored one must have signed.
        let only_ssk = KeySet {
            self_signing: upload.self_signing.clone(),
            ..KeySet::default()
        };
        assert_eq!(
            validate_upload(USER, None, &only_ssk),
            Err(CrossSigningError::NoMasterKey)
        );
        assert_eq!(
            validate_upload(USER, upload.master.as_ref(), &only_ssk),
            Ok(())
        );
        let stranger = cs_key(&other, "master");
        assert!(validate_upload(USER, Some(&stranger), &only_ssk).is_err());
    }

    #[test]
    fn auth_is_needed_only_to_change_existing_keys() {
        let (m, m2) = (key(), key());
        let first = KeySet {
            master: Some(cs_key(&m, "master")),
            ..KeySet::default()
        };
        assert!(!upload_needs_auth(&KeySet::default(), &first));
        assert!(!upload_needs_auth(&first, &first));
        let replaced = KeySet {
            master: Some(cs_key(&m2, "master")),
            ..KeySet::default()
        };
        assert!(upload_needs_auth(&first, &replaced));
        let new_ssk = KeySet {
            self_signing: Some(sign(cs_key(&m2, "self_signing"), &m)),
            ..KeySet::default()
        };
        assert!(upload_needs_auth(&first, &new_ssk));
    }

    #[test]
    fn tampered_content_fails_verification() {
        let (m, s) = (key(), key());
        let master = PublicKey::from_keys(&cs_key(&m, "master"), &format!("ed25519:{}", m.public))
            .expect("public key");
        let mut signed = sign(cs_key(&s, "self_signing"), &m);
        assert_eq!(verify_signature(&signed, USER, &master), Ok(()));
        // Unsigned data is not covered by the signature.
        signed["unsigned"] = json!({ "x": 1 });
        assert_eq!(verify_signature(&signed, USER, &master), Ok(()));
        signed["usage"] = json!(["master"]);
        assert!(verify_signature(&signed, USER, &master).is_err());
        assert!(verify_signature(&cs_key(&s, "self_signing"), USER, &master).is_err());
    }

    #[test]
    fn only_the_spec_chains_of_trust_may_sign() {
        use SignatureTarget::*;
        assert!(may_sign(Signer::SelfSigning, OwnDevice));
        assert!(may_sign(Signer::Device, OwnMaster));
        assert!(may_sign(Signer::UserSigning, OtherMaster));
        assert!(!may_sign(Signer::Device, OwnDevice));
        assert!(!may_sign(Signer::Master, OwnDevice));
        assert!(!may_sign(Signer::SelfSigning, OtherMaster));
        assert!(!may_sign(Signer::UserSigning, OwnDevice));
    }

    #[test]
    fn signatures_of_any_shape_take_a_new_signature() {
        for signatures in [
            json!("x"),
            json!({ "@b:x": "x" }),
            json!({ "@b:x": [1] }),
            json!(5),
        ] {
            let mut key = json!({ "keys": {}, "signatures": signatures });
            add_signature(&mut key, "@b:x", "ed25519:U", "sig");
            assert_eq!(
                key["signatures"]["@b:x"]["ed25519:U"],
                json!("sig"),
                "{key}"
            );
        }
    }

    #[test]
    fn signatures_upload_may_only_add_signatures() {
        let stored = json!({ "user_id": USER, "keys": { "ed25519:D": "k" },
                             "signatures": { USER: { "ed25519:D": "self" } } });
        let mut signed = stored.clone();
        signed["signatures"] = json!({ USER: { "ed25519:D": "self", "ed25519:S": "new" } });
        signed["unsigned"] = json!({ "device_display_name": "phone" });
        assert!(same_signed_content(&signed, &stored));
        assert_eq!(
            new_signatures(&signed, &stored, USER),
            vec![("ed25519:S", "new")]
        );
        assert!(new_signatures(&signed, &stored, "@b:x").is_empty());
        let mut changed = signed.clone();
        changed["keys"]["ed25519:D"] = json!("other");
        assert!(!same_signed_content(&changed, &stored));

        let mut merged = stored.clone();
        add_signature(&mut merged, "@b:x", "ed25519:U", "sig");
        assert_eq!(merged["signatures"]["@b:x"]["ed25519:U"], json!("sig"));
        assert_eq!(merged["signatures"][USER]["ed25519:D"], json!("self"));
    }

    #[test]
    fn others_see_only_the_owners_signatures_and_their_own() {
        assert!(signature_visible("@a:x", "@a:x", "@c:x"));
        assert!(signature_visible("@a:x", "@c:x", "@c:x"));
        assert!(!signature_visible("@a:x", "@b:x", "@c:x"));
    }
}
