//! Server-side end-to-end encryption rules: what an upload must look like,
//! which key a claim hands out. Storage and HTTP live in the server; the AI
//! user's own crypto device joins this crate later.

pub mod cross_signing;
pub mod device;

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("device_keys.{0} does not match the uploading device")]
    Mismatch(&'static str),
    #[error("device_keys is missing {0}")]
    Missing(&'static str),
    #[error("invalid key id {0:?}: expected <algorithm>:<id>")]
    BadKeyId(String),
}

/// Checks that uploaded device keys belong to the uploading user and device
/// and carry the fields every client relies on.
pub fn validate_device_keys(keys: &Value, user_id: &str, device_id: &str) -> Result<(), KeyError> {
    match keys.get("user_id").and_then(Value::as_str) {
        Some(u) if u == user_id => {}
        Some(_) => return Err(KeyError::Mismatch("user_id")),
        None => return Err(KeyError::Missing("user_id")),
    }
    match keys.get("device_id").and_then(Value::as_str) {
        Some(d) if d == device_id => {}
        Some(_) => return Err(KeyError::Mismatch("device_id")),
        None => return Err(KeyError::Missing("device_id")),
    }
    if !keys.get("algorithms").is_some_and(Value::is_array) {
        return Err(KeyError::Missing("algorithms"));
    }
    if !keys.get("keys").is_some_and(Value::is_object) {
        return Err(KeyError::Missing("keys"));
    }
    Ok(())
}

/// Splits `signed_curve25519:AAAAHQ` into algorithm and key id.
pub fn split_key_id(key_id: &str) -> Result<(&str, &str), KeyError> {
    match key_id.split_once(':') {
        Some((alg, id)) if !alg.is_empty() && !id.is_empty() => Ok((alg, id)),
        _ => Err(KeyError::BadKeyId(key_id.to_owned())),
    }
}

/// Whether re-uploaded device keys differ in a way other devices must hear
/// about (a change of identity keys or algorithms, not of the display name).
pub fn device_keys_changed(old: Option<&Value>, new: &Value) -> bool {
    let essence = |v: &Value| {
        (
            v.get("keys").cloned(),
            v.get("algorithms").cloned(),
            v.get("signatures").cloned(),
        )
    };
    old.map(essence) != Some(essence(new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys() -> Value {
        json!({"user_id": "@a:x", "device_id": "D", "algorithms": ["m.olm.v1.curve25519-aes-sha2"],
               "keys": {"curve25519:D": "k", "ed25519:D": "e"}, "signatures": {}})
    }

    #[test]
    fn device_keys_must_match_the_device() {
        assert_eq!(validate_device_keys(&keys(), "@a:x", "D"), Ok(()));
        assert_eq!(
            validate_device_keys(&keys(), "@b:x", "D"),
            Err(KeyError::Mismatch("user_id"))
        );
        assert_eq!(
            validate_device_keys(&keys(), "@a:x", "E"),
            Err(KeyError::Mismatch("device_id"))
        );
        assert_eq!(
            validate_device_keys(&json!({"user_id": "@a:x", "device_id": "D"}), "@a:x", "D"),
            Err(KeyError::Missing("algorithms"))
        );
    }

    #[test]
    fn key_ids_split_on_the_first_colon() {
        assert_eq!(
            split_key_id("signed_curve25519:AAAAHQ"),
            Ok(("signed_curve25519", "AAAAHQ"))
        );
        assert!(split_key_id("nocolon").is_err());
        assert!(split_key_id(":x").is_err());
    }

    #[test]
    fn display_name_changes_are_not_key_changes() {
        let mut renamed = keys();
        renamed["unsigned"] = json!({"device_display_name": "phone"});
        assert!(!device_keys_changed(Some(&keys()), &renamed));
        let mut rotated = keys();
        rotated["keys"]["curve25519:D"] = json!("other");
        assert!(device_keys_changed(Some(&keys()), &rotated));
        assert!(device_keys_changed(None, &keys()));
    }
}
