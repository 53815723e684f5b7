//! The records of files: uploaded here, or copied from another server;
//! their bytes are files of their own.

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
    /// Reserved by `/v1/media/create`, its bytes not uploaded yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// Uploaded while authenticated media was on: the unauthenticated
    /// `/_matrix/media/v3/` paths do not serve it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub authenticated: bool,
}

/// What the server knows of its copy of another server's file. The copy's
/// bytes are in a file named by `file`, an id made here (never the remote
/// media id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteMediaRecord {
    pub file: String,
    pub content_type: String,
    pub filename: Option<String>,
    pub size: u64,
    pub fetched_ts: u64,
    /// Fetched while authenticated media was on: the unauthenticated
    /// `/_matrix/media/v3/` paths do not serve it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub authenticated: bool,
}
