//! A version of a user's server-side key backup.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupVersionRecord {
    pub algorithm: String,
    pub auth_data: Value,
    /// Changes whenever the version's keys change.
    pub etag: u64,
    #[serde(default)]
    pub deleted: bool,
}
