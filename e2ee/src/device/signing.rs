//! Signing and checking JSON objects the Matrix way: over the canonical
//! form without `signatures` and `unsigned`.

use serde_json::Value;
use vodozemac::{Ed25519PublicKey, Ed25519Signature};

fn canonical_without_signatures(object: &Value) -> Option<String> {
    let mut copy = object.clone();
    let map = copy.as_object_mut()?;
    map.remove("signatures");
    map.remove("unsigned");
    ruma::canonical_json::to_canonical_value(&copy)
        .ok()
        .map(|v| v.to_string())
}

/// Adds `signatures.<user>.ed25519:<device>` made by `sign`.
pub fn sign_object(
    object: &mut Value,
    user: &str,
    device: &str,
    sign: impl FnOnce(&str) -> Ed25519Signature,
) {
    let Some(canonical) = canonical_without_signatures(object) else {
        return;
    };
    let signature = sign(&canonical).to_base64();
    object["signatures"][user][format!("ed25519:{device}")] = Value::String(signature);
}

/// Whether `object` carries a valid signature by `key` under `user`'s
/// `ed25519:<key_name>`.
pub fn verify_object(object: &Value, user: &str, key_name: &str, key: &Ed25519PublicKey) -> bool {
    let Some(signature) = object["signatures"][user][format!("ed25519:{key_name}")].as_str() else {
        return false;
    };
    let (Some(canonical), Ok(signature)) = (
        canonical_without_signatures(object),
        Ed25519Signature::from_base64(signature),
    ) else {
        return false;
    };
    key.verify(canonical.as_bytes(), &signature).is_ok()
}
