//! The homeserver's ed25519 signing key.
//!
//! Every PDU we create, every `/_matrix/key/v2/server` answer and every outgoing
//! X-Matrix request carries a signature made with this key, and remote servers pin it by
//! its key id. So the key has to survive restarts (hence PKCS#8 in and out) and keep the
//! same id for as long as it lives.

use std::{collections::BTreeMap, fmt};

use base64::{engine::general_purpose::STANDARD_NO_PAD, Engine as _};
use ruma::{
    serde::Base64,
    signatures::{sign_json, Ed25519KeyPair, PublicKeyMap},
    CanonicalJsonObject, ServerName, ServerSigningKeyVersion,
};

use crate::error::{Error, Result};

/// DER prefix of a PKCS#8 v1 `OneAsymmetricKey` holding an ed25519 private key
/// (RFC 8410 §7): SEQUENCE { version 0, AlgorithmIdentifier { 1.3.101.112 },
/// OCTET STRING { OCTET STRING (32 bytes) } }. The 32-byte seed follows it.
const PKCS8_V1_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// How many characters of the public key go into a generated key version.
const GENERATED_VERSION_SUFFIX_LEN: usize = 4;

/// An ed25519 server signing key together with the PKCS#8 document it came from.
///
/// ruma's [`Ed25519KeyPair`] can sign but cannot give its secret back, so the document
/// is kept alongside it: that is what the server writes to disk.
pub struct ServerSigningKey {
    key_pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl ServerSigningKey {
    /// Creates a fresh key from the operating system's RNG.
    ///
    /// The version is `a_` followed by four alphanumeric characters taken from the
    /// public key (the same shape Synapse uses), so a new key gets a new id without
    /// another source of randomness, and the id can be recomputed from the key itself.
    ///
    /// # Panics
    ///
    /// Only if the operating system cannot provide randomness, in which case no key can
    /// safely be made at all.
    pub fn generate() -> Self {
        let document = Ed25519KeyPair::generate().to_vec();
        let key_pair = Ed25519KeyPair::from_der(&document, String::new())
            .expect("ruma generates a well-formed PKCS#8 document");
        let version = version_from_public_key(&key_pair.public_key());
        let key_pair = Ed25519KeyPair::from_der(&document, version)
            .expect("ruma generates a well-formed PKCS#8 document");
        Self {
            key_pair,
            pkcs8: document,
        }
    }

    /// Loads a key persisted with [`Self::to_pkcs8`] (or any PKCS#8 v1/v2 ed25519
    /// document), under the key version it was published with.
    pub fn from_pkcs8(bytes: &[u8], version: &str) -> Result<Self> {
        validate_version(version)?;
        let key_pair = Ed25519KeyPair::from_der(bytes, version.to_owned())?;
        Ok(Self {
            key_pair,
            pkcs8: bytes.to_vec(),
        })
    }

    /// Builds a key from its raw 32-byte ed25519 seed.
    ///
    /// This is the form the spec's test vectors and Synapse's `*.signing.key` files use
    /// (`ed25519 <version> <base64 seed>`), so it lets an existing Synapse key be
    /// imported.
    pub fn from_seed(seed: &[u8; 32], version: &str) -> Result<Self> {
        let mut document = PKCS8_V1_ED25519_PREFIX.to_vec();
        document.extend_from_slice(seed);
        Self::from_pkcs8(&document, version)
    }

    /// The PKCS#8 DER document to persist; [`Self::from_pkcs8`] reads it back.
    pub fn to_pkcs8(&self) -> Vec<u8> {
        self.pkcs8.clone()
    }

    /// The key version, the part of the key id after `ed25519:`.
    pub fn version(&self) -> &str {
        self.key_pair.version()
    }

    /// The key id remote servers know this key by, e.g. `ed25519:a_AbCd`.
    pub fn key_id(&self) -> String {
        format!("ed25519:{}", self.version())
    }

    /// The raw 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key_pair.public_key()
    }

    /// The public key as published in `verify_keys`: standard base64 without padding.
    pub fn public_key_base64(&self) -> String {
        STANDARD_NO_PAD.encode(self.public_key())
    }

    /// A map containing only this key for `server_name`, the shape
    /// [`ruma::signatures::verify_event`] wants, so the server can check its own
    /// signatures without fetching anything.
    pub fn public_key_map(&self, server_name: &ServerName) -> PublicKeyMap {
        let keys = BTreeMap::from([(self.key_id(), Base64::new(self.public_key().to_vec()))]);
        BTreeMap::from([(server_name.as_str().to_owned(), keys)])
    }

    /// Adds this server's signature to `object` under `signatures.<server_name>`.
    ///
    /// `signatures` and `unsigned` are excluded from what is signed, and existing
    /// signatures from other servers are kept, as the spec's "Signing JSON" requires.
    pub fn sign_json(
        &self,
        server_name: &ServerName,
        object: &mut CanonicalJsonObject,
    ) -> Result<()> {
        sign_json(server_name.as_str(), &self.key_pair, object)?;
        Ok(())
    }

    /// The underlying ruma key pair, for ruma APIs that take a `KeyPair`.
    pub fn key_pair(&self) -> &Ed25519KeyPair {
        &self.key_pair
    }
}

/// Never prints the secret: only what is public anyway.
impl fmt::Debug for ServerSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSigningKey")
            .field("key_id", &self.key_id())
            .field("public_key", &self.public_key_base64())
            .finish_non_exhaustive()
    }
}

/// Rejects versions that would make an invalid key id, before anything gets signed with
/// them and published.
fn validate_version(version: &str) -> Result<()> {
    ServerSigningKeyVersion::parse(version).map_err(|source| Error::InvalidKeyVersion {
        version: version.to_owned(),
        source,
    })?;
    Ok(())
}

/// `a_` plus the first alphanumeric characters of the base64 public key.
fn version_from_public_key(public_key: &[u8; 32]) -> String {
    let suffix: String = STANDARD_NO_PAD
        .encode(public_key)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(GENERATED_VERSION_SUFFIX_LEN)
        .collect();
    format!("a_{suffix}")
}

#[cfg(test)]
mod tests {
    use ruma::{server_name, signatures::verify_json, CanonicalJsonValue};

    use super::*;
    use crate::test_vectors::{self, object};

    const SEED: [u8; 32] = [7; 32];

    #[test]
    fn spec_json_signing_vectors() {
        let vectors = test_vectors::load();
        let key = test_vectors::signing_key(&vectors);
        let server = test_vectors::server_name(&vectors);
        let cases = vectors["json_signing"].as_array().unwrap();
        assert!(!cases.is_empty());
        for case in cases {
            let mut signed = object(case["input"].clone());
            key.sign_json(&server, &mut signed).unwrap();
            assert_eq!(
                signed,
                object(case["signed"].clone()),
                "input: {}",
                case["input"]
            );
            verify_json(&key.public_key_map(&server), &signed).unwrap();
        }
    }

    #[test]
    fn generated_key_id_has_synapse_shape() {
        let key = ServerSigningKey::generate();
        let version = key.version();
        assert!(version.starts_with("a_"), "{version}");
        assert_eq!(version.len(), 2 + GENERATED_VERSION_SUFFIX_LEN);
        assert!(version[2..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(key.key_id(), format!("ed25519:{version}"));
    }

    #[test]
    fn two_generated_keys_differ() {
        let a = ServerSigningKey::generate();
        let b = ServerSigningKey::generate();
        assert_ne!(a.public_key(), b.public_key());
    }

    #[test]
    fn pkcs8_round_trip_keeps_the_key() {
        let key = ServerSigningKey::generate();
        let reloaded = ServerSigningKey::from_pkcs8(&key.to_pkcs8(), key.version()).unwrap();
        assert_eq!(reloaded.public_key(), key.public_key());
        assert_eq!(reloaded.key_id(), key.key_id());
        assert_eq!(reloaded.to_pkcs8(), key.to_pkcs8());
    }

    #[test]
    fn seed_round_trips_through_pkcs8() {
        let key = ServerSigningKey::from_seed(&SEED, "1").unwrap();
        let reloaded = ServerSigningKey::from_pkcs8(&key.to_pkcs8(), "1").unwrap();
        assert_eq!(reloaded.public_key(), key.public_key());
    }

    #[test]
    fn public_key_is_unpadded_standard_base64_of_32_bytes() {
        let key = ServerSigningKey::from_seed(&SEED, "1").unwrap();
        let encoded = key.public_key_base64();
        assert_eq!(encoded.len(), 43);
        assert!(!encoded.contains('='));
        assert_eq!(STANDARD_NO_PAD.decode(&encoded).unwrap(), key.public_key());
    }

    #[test]
    fn garbage_pkcs8_is_an_error() {
        let err = ServerSigningKey::from_pkcs8(b"not a key", "1").unwrap_err();
        assert!(matches!(err, Error::InvalidKey(_)), "{err}");
    }

    #[test]
    fn bad_version_is_an_error() {
        let err = ServerSigningKey::from_seed(&SEED, "has:colon").unwrap_err();
        assert!(matches!(err, Error::InvalidKeyVersion { .. }), "{err}");
        assert!(ServerSigningKey::from_seed(&SEED, "").is_err());
    }

    #[test]
    fn signed_json_verifies_and_keeps_other_signatures() {
        let key = ServerSigningKey::from_seed(&SEED, "abc").unwrap();
        let mut object: CanonicalJsonObject = serde_json::from_str(
            r#"{"method":"GET","signatures":{"other.org":{"ed25519:x":"c2ln"}},"unsigned":{"n":1}}"#,
        )
        .unwrap();
        key.sign_json(server_name!("example.org"), &mut object)
            .unwrap();

        let CanonicalJsonValue::Object(signatures) = &object["signatures"] else {
            panic!("signatures is not an object");
        };
        assert!(signatures.contains_key("other.org"));
        let CanonicalJsonValue::Object(ours) = &signatures["example.org"] else {
            panic!("no signature for example.org");
        };
        assert!(ours.contains_key("ed25519:abc"));
        assert!(object.contains_key("unsigned"));

        object.remove("signatures");
        let mut only_ours = object.clone();
        key.sign_json(server_name!("example.org"), &mut only_ours)
            .unwrap();
        verify_json(&key.public_key_map(server_name!("example.org")), &only_ours).unwrap();

        only_ours.insert("method".into(), CanonicalJsonValue::String("PUT".into()));
        assert!(verify_json(&key.public_key_map(server_name!("example.org")), &only_ours).is_err());
    }

    #[test]
    fn debug_does_not_leak_the_secret() {
        let key = ServerSigningKey::from_seed(&SEED, "1").unwrap();
        let printed = format!("{key:?}");
        assert!(printed.contains("ed25519:1"));
        assert!(!printed.contains(&STANDARD_NO_PAD.encode(SEED)));
    }
}
