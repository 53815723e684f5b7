//! An uploaded file's record; its bytes are a file of their own.

use ruma::OwnedUserId;
use serde::{Deserialize, Serialize};

/// What the server knows of an uploaded file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRecord {
    pub content_type: String,
    pub filename: Option<String>,
    pub size: u64,
    pub uploader: OwnedUserId,
    pub created_ts: u64,
}
