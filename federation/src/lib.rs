//! Server-to-server cryptography for Matrix OS.
//!
//! Everything another homeserver checks about us before it believes us lives here: the
//! server's ed25519 signing key, canonical JSON, signing of JSON objects (key responses,
//! X-Matrix requests), and hashing, signing, identifying and verifying PDUs. The room
//! core in `src/` calls these; this crate knows nothing about storage or HTTP routing,
//! so it can be tested against the spec's own vectors in isolation.

pub mod canonical;
pub mod error;
pub mod pdu_hashing;
pub mod signing_key;

#[cfg(test)]
mod test_vectors;

pub use canonical::{parse_canonical_object, parse_canonical_value, to_canonical_json};
pub use error::{Error, Result};
pub use pdu_hashing::{
    event_id_for_pdu, hash_and_sign_pdu, room_id_from_create_event_id, room_version_rules,
    verify_pdu,
};
/// Re-exported so callers of [`verify_pdu`] need not name `ruma::signatures` themselves.
pub use ruma::signatures::{PublicKeyMap, PublicKeySet, Verified};
pub use signing_key::ServerSigningKey;
