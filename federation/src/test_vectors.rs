//! Access to the Matrix spec's official test vectors, for unit tests.
//!
//! The vectors (canonical JSON examples and the "Cryptographic Test Vectors" appendix)
//! are the closest thing the spec has to a conformance suite for hashing and signing:
//! if our bytes differ from them, other servers will reject what we sign. They live in
//! the shared spec data (`/work/shared/spec/test-vectors.json`, next to the workspace);
//! set `MATRIXOS_TEST_VECTORS` to read them from elsewhere. A missing file fails the
//! tests rather than skipping them.

use std::path::PathBuf;

use base64::{
    alphabet::STANDARD,
    engine::{general_purpose::NO_PAD, GeneralPurpose},
    Engine as _,
};
use ruma::{CanonicalJsonObject, CanonicalJsonValue, OwnedServerName};
use serde_json::Value;

use crate::signing_key::ServerSigningKey;

fn path() -> PathBuf {
    match std::env::var_os("MATRIXOS_TEST_VECTORS") {
        Some(path) => PathBuf::from(path),
        // Read at run time: a shared build directory may hold a test binary
        // compiled from another checkout of the project.
        None => std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
            .join("../../shared/spec/test-vectors.json"),
    }
}

/// The whole vectors file.
pub(crate) fn load() -> Value {
    let path = path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read spec test vectors at {}: {e}", path.display()));
    serde_json::from_str(&text).expect("test vectors are JSON")
}

/// The fixed key the signing vectors were made with: a base64 seed and a key id.
///
/// The spec's seed, `…XA1`, has non-zero bits after its 32 bytes (the appendix was made
/// with Python's lenient decoder), so it is decoded ignoring trailing bits.
pub(crate) fn signing_key(vectors: &Value) -> ServerSigningKey {
    let spec = &vectors["signing_key"];
    let lenient = GeneralPurpose::new(&STANDARD, NO_PAD.with_decode_allow_trailing_bits(true));
    let seed = lenient
        .decode(
            spec["seed_base64"]
                .as_str()
                .expect("seed_base64 is a string"),
        )
        .expect("seed is unpadded base64");
    let seed: [u8; 32] = seed.try_into().expect("seed is 32 bytes");
    let key_id = spec["key_id"].as_str().expect("key_id is a string");
    let version = key_id.strip_prefix("ed25519:").expect("key id is ed25519");
    let key = ServerSigningKey::from_seed(&seed, version).expect("vector seed is a valid key");
    assert_eq!(key.key_id(), key_id);
    key
}

/// The server name the signing vectors sign as.
pub(crate) fn server_name(vectors: &Value) -> OwnedServerName {
    let name = vectors["signing_key"]["server_name"]
        .as_str()
        .expect("server_name is a string");
    OwnedServerName::try_from(name).expect("vector server name is valid")
}

/// Converts a JSON object from the vectors into canonical form.
pub(crate) fn object(value: Value) -> CanonicalJsonObject {
    match CanonicalJsonValue::try_from(value).expect("vector is canonical JSON") {
        CanonicalJsonValue::Object(object) => object,
        other => panic!("expected an object, got {other:?}"),
    }
}
