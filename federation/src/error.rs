//! The crate's single error type.
//!
//! Everything in this crate fails for one of a handful of reasons (a bad key, JSON that
//! is not canonical, a PDU that cannot be hashed, a signature that does not check out).
//! Keeping them in one enum lets the server map federation failures to Matrix error
//! responses in exactly one place, at the HTTP edge.

use ruma::{
    signatures::{Ed25519KeyPairParseError, JsonError, VerificationError},
    CanonicalJsonError, IdParseError, RoomVersionId,
};

/// Why a federation crypto operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A signing key could not be loaded (corrupt PKCS#8, wrong algorithm, bad seed).
    #[error("invalid signing key: {0}")]
    InvalidKey(#[from] Ed25519KeyPairParseError),

    /// A signing key version is not `[a-zA-Z0-9_]+`, so it cannot appear in a key id.
    #[error("invalid signing key version {version:?}: {source}")]
    InvalidKeyVersion {
        /// The rejected version.
        version: String,
        /// Why it was rejected.
        #[source]
        source: IdParseError,
    },

    /// The input is not JSON at all.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),

    /// The input is JSON but has no canonical form (fractional numbers, integers out of
    /// the interoperable range).
    #[error("not canonical JSON: {0}")]
    NotCanonical(#[from] CanonicalJsonError),

    /// Signed JSON (events, requests, key responses) is always an object; this was not.
    #[error("expected a JSON object")]
    NotAnObject,

    /// Hashing, redacting or signing failed: a required field is missing or has the
    /// wrong type, or the PDU exceeds 65535 bytes.
    #[error("cannot hash or sign: {0}")]
    Signing(#[from] JsonError),

    /// A signature is missing, malformed or does not verify.
    #[error("signature verification failed: {0}")]
    Verification(#[from] VerificationError),

    /// A field that must hold a Matrix identifier holds something else.
    #[error("invalid identifier: {0}")]
    InvalidId(#[from] IdParseError),

    /// A field the operation needs is absent or not of the expected JSON type.
    #[error("field `{0}` is missing or has the wrong type")]
    MissingField(&'static str),

    /// The room version is not one whose rules this server knows.
    #[error("unsupported room version {0}")]
    UnsupportedRoomVersion(RoomVersionId),

    /// The room version's rules make the operation meaningless (for example deriving a
    /// room id from a create event id in a room version whose ids carry a server name).
    #[error("not possible in this room version: {0}")]
    WrongRoomVersion(&'static str),
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
