//! A local account and its devices.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub password_hash: Option<String>,
    pub displayname: Option<String>,
    pub avatar_url: Option<String>,
    #[serde(default)]
    pub deactivated: bool,
    #[serde(default)]
    pub admin: bool,
    /// A guest account (`kind=guest`): no password, no AI user, only the
    /// endpoints open to guests.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub guest: bool,
    pub created_ms: u64,
    /// Stream position at which the user, deactivating, asked for their
    /// content to be erased: those who join their rooms later are served
    /// their events redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<u64>,
    /// Profile fields besides the display name and avatar (`m.tz`, custom
    /// ones), each any JSON value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profile_fields: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub display_name: Option<String>,
    /// Hex sha256 of its access token.
    pub token_hash: Option<String>,
    pub last_seen_ts: Option<u64>,
    pub last_seen_ip: Option<String>,
    /// Hex sha256 of the access token a refresh replaced, valid until it
    /// expires (requests already sent with it still succeed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_token_hash: Option<String>,
    /// Hex sha256 of the refresh token issued with the access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_hash: Option<String>,
    /// Hex sha256 of the refresh token used last: valid until the new
    /// access or refresh token is used, so a client that lost the answer
    /// can ask again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_refresh_hash: Option<String>,
}

/// An access token that expires (one issued with a refresh token).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenExpiry {
    /// Milliseconds since the epoch after which it is refused.
    pub expires_ms: u64,
    /// Hex sha256 of the refresh token its first use revokes (the one
    /// refreshed to get it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revokes: Option<String>,
}
