//! A pusher: where to send a user's notifications when they are away.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pusher {
    pub app_id: String,
    pub pushkey: String,
    pub kind: String,
    pub app_display_name: String,
    pub device_display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_tag: Option<String>,
    pub lang: String,
    pub data: Value,
    /// When the pushkey was set, in seconds.
    #[serde(default)]
    pub pushkey_ts: u64,
    /// The device that registered it: the pusher goes when the device goes.
    #[serde(default)]
    pub device_id: String,
}

impl Pusher {
    /// The gateway URL of an `http` pusher.
    pub fn url(&self) -> Option<&str> {
        self.data.get("url").and_then(Value::as_str)
    }

    /// Whether the gateway wants only ids, not contents.
    pub fn event_id_only(&self) -> bool {
        self.data.get("format").and_then(Value::as_str) == Some("event_id_only")
    }

    /// What `GET /pushers` shows (no device id).
    pub fn client_json(&self) -> Value {
        let mut out = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(obj) = out.as_object_mut() {
            obj.remove("device_id");
            obj.remove("pushkey_ts");
        }
        out
    }
}
