//! Another device as its uploaded, self-signed device keys describe it.

use serde_json::Value;
use vodozemac::{Curve25519PublicKey, Ed25519PublicKey};

use super::signing::verify_object;

#[derive(Debug, Clone)]
pub struct PeerDevice {
    pub user_id: String,
    pub device_id: String,
    pub curve25519: Curve25519PublicKey,
    pub ed25519: Ed25519PublicKey,
}

impl PeerDevice {
    /// Reads device keys, refusing any that are not signed by their own
    /// ed25519 key or that support no Megolm.
    pub fn from_device_keys(keys: &Value) -> Option<Self> {
        let user_id = keys["user_id"].as_str()?.to_owned();
        let device_id = keys["device_id"].as_str()?.to_owned();
        let supports_megolm = keys["algorithms"]
            .as_array()?
            .iter()
            .any(|a| a == "m.megolm.v1.aes-sha2");
        let curve = keys["keys"][format!("curve25519:{device_id}")].as_str()?;
        let ed = keys["keys"][format!("ed25519:{device_id}")].as_str()?;
        let curve25519 = Curve25519PublicKey::from_base64(curve).ok()?;
        let ed25519 = Ed25519PublicKey::from_base64(ed).ok()?;
        if !supports_megolm || !verify_object(keys, &user_id, &device_id, &ed25519) {
            return None;
        }
        Some(Self {
            user_id,
            device_id,
            curve25519,
            ed25519,
        })
    }

    /// "user|device", how shared-with sets name a device.
    pub fn label(&self) -> String {
        format!("{}|{}", self.user_id, self.device_id)
    }
}
