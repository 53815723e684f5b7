//! Content hashes, reference hashes and signatures of PDUs.
//!
//! A PDU carries two integrity checks (server-server spec, "Signing events"): the
//! content hash in `hashes.sha256` covers the full event, so a receiver can tell when
//! content was altered; the signatures cover only the redacted event, so they stay valid
//! after a redaction strips the content. Since room version 3 the event id is itself the
//! reference hash of the redacted event, and since room version 12 the room id is the
//! create event's reference hash. Which fields survive redaction and which base64
//! alphabet names an event both depend on the room version, so every function here takes
//! that version's [`RoomVersionRules`].

use ruma::{
    room_version_rules::{EventIdFormatVersion, RoomVersionRules},
    signatures::{hash_and_sign_event, reference_hash, verify_event, PublicKeyMap, Verified},
    CanonicalJsonObject, CanonicalJsonValue, EventId, OwnedEventId, OwnedRoomId, RoomId,
    RoomVersionId, ServerName,
};

use crate::{
    error::{Error, Result},
    signing_key::ServerSigningKey,
};

/// The rules of a room version this server implements.
///
/// ruma knows the rules of every stable room version (and some unstable ones); an
/// unknown version string cannot be hashed or checked, so it is an error here.
pub fn room_version_rules(room_version: &RoomVersionId) -> Result<RoomVersionRules> {
    room_version
        .rules()
        .ok_or_else(|| Error::UnsupportedRoomVersion(room_version.clone()))
}

/// Fills in `hashes.sha256` and then adds this server's signature, in that order,
/// because the signature covers the redacted event, which keeps `hashes`.
pub fn hash_and_sign_pdu(
    server_name: &ServerName,
    key: &ServerSigningKey,
    pdu: &mut CanonicalJsonObject,
    rules: &RoomVersionRules,
) -> Result<()> {
    hash_and_sign_event(server_name.as_str(), key.key_pair(), pdu, &rules.redaction)?;
    Ok(())
}

/// The id of a PDU.
///
/// Room versions 1 and 2 put a server-chosen id in the event's `event_id` field; later
/// versions derive it: `$` + the reference hash, in standard base64 for version 3 and
/// URL-safe base64 from version 4 on (both unpadded). The PDU must already be hashed,
/// since the reference hash covers `hashes`.
pub fn event_id_for_pdu(
    pdu: &CanonicalJsonObject,
    rules: &RoomVersionRules,
) -> Result<OwnedEventId> {
    if rules.event_id_format == EventIdFormatVersion::V1 {
        return match pdu.get("event_id") {
            Some(CanonicalJsonValue::String(id)) => Ok(EventId::parse(id)?),
            _ => Err(Error::MissingField("event_id")),
        };
    }
    let hash = reference_hash(pdu, rules)?;
    Ok(EventId::new_v2_or_v3(&hash)?)
}

/// The room id of a room version 12 room, given the id of its `m.room.create` event.
///
/// MSC4291 drops the server name from room ids: the room id is `!` followed by the
/// create event's reference hash, which is exactly its event id without the `$`. An
/// event id carrying a server name comes from a room version where this does not apply.
pub fn room_id_from_create_event_id(create_event_id: &EventId) -> Result<OwnedRoomId> {
    if create_event_id.server_name().is_some() {
        return Err(Error::WrongRoomVersion(
            "room ids derive from create event ids only when event ids are hashes",
        ));
    }
    Ok(RoomId::new_v2(create_event_id.localpart())?)
}

/// Checks a PDU's signatures and content hash.
///
/// `public_keys` must hold the keys of every server whose signature the room version
/// requires (the sender's server, and for some joins and invites another one); a
/// missing or bad signature is an error, and the event must be rejected. A wrong content
/// hash is *not* an error: the spec says such an event is accepted in redacted form, so
/// the caller gets [`Verified::Signatures`] and must redact before storing.
pub fn verify_pdu(
    public_keys: &PublicKeyMap,
    pdu: &CanonicalJsonObject,
    rules: &RoomVersionRules,
) -> Result<Verified> {
    Ok(verify_event(public_keys, pdu, rules)?)
}

#[cfg(test)]
mod tests {
    use base64::{
        engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD},
        Engine as _,
    };
    use ruma::{event_id, server_name};
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::test_vectors::{self, object};

    fn key() -> ServerSigningKey {
        ServerSigningKey::from_seed(&[42; 32], "k1").unwrap()
    }

    fn rules(version: RoomVersionId) -> RoomVersionRules {
        room_version_rules(&version).unwrap()
    }

    /// A room version 12 create event: no `room_id`, and nothing that redaction removes,
    /// so its reference hash can be computed by hand from the whole event.
    fn v12_create_event() -> CanonicalJsonObject {
        object(serde_json::json!({
            "type": "m.room.create",
            "state_key": "",
            "sender": "@alice:example.org",
            "origin_server_ts": 1_700_000_000_000_u64,
            "depth": 1,
            "prev_events": [],
            "auth_events": [],
            "content": { "room_version": "12" },
            "unsigned": { "age": 5 },
        }))
    }

    fn sha256_of_event_without_signatures(pdu: &CanonicalJsonObject) -> [u8; 32] {
        let mut stripped = pdu.clone();
        stripped.remove("signatures");
        stripped.remove("unsigned");
        Sha256::digest(CanonicalJsonValue::Object(stripped).to_string().as_bytes()).into()
    }

    #[test]
    fn spec_event_signing_vectors() {
        let vectors = test_vectors::load();
        let key = test_vectors::signing_key(&vectors);
        let server = test_vectors::server_name(&vectors);
        let cases = vectors["event_signing"].as_array().unwrap();
        assert!(!cases.is_empty());

        // The appendix predates later redaction changes: its examples use room version 1
        // rules (they keep `origin` and an `event_id` field).
        let rules = rules(RoomVersionId::V1);
        for case in cases {
            let mut pdu = object(case["input"].clone());
            hash_and_sign_pdu(&server, &key, &mut pdu, &rules).unwrap();
            assert_eq!(
                pdu,
                object(case["signed"].clone()),
                "input: {}",
                case["input"]
            );

            // Room version 1 verification wants the server named in `event_id`, which
            // only some vectors have.
            if pdu.contains_key("event_id") {
                let verified = verify_pdu(&key.public_key_map(&server), &pdu, &rules).unwrap();
                assert_eq!(verified, Verified::All);
            }
        }
    }

    #[test]
    fn v12_event_id_is_url_safe_reference_hash_and_room_id_follows() {
        let rules = rules(RoomVersionId::V12);
        let mut pdu = v12_create_event();
        hash_and_sign_pdu(server_name!("example.org"), &key(), &mut pdu, &rules).unwrap();

        let event_id = event_id_for_pdu(&pdu, &rules).unwrap();
        let expected = URL_SAFE_NO_PAD.encode(sha256_of_event_without_signatures(&pdu));
        assert_eq!(event_id.as_str(), format!("${expected}"));

        let room_id = room_id_from_create_event_id(&event_id).unwrap();
        assert_eq!(room_id.as_str(), format!("!{expected}"));
        assert!(room_id.server_name().is_none());
    }

    #[test]
    fn v3_event_id_uses_standard_alphabet() {
        let rules = rules(RoomVersionId::V3);
        let mut pdu = v12_create_event();
        pdu.insert(
            "room_id".into(),
            CanonicalJsonValue::String("!r:example.org".into()),
        );
        // Before room version 11 redaction keeps only `creator` of a create event's
        // content; with nothing else there the whole event is again its redacted form.
        pdu.insert(
            "content".into(),
            object(serde_json::json!({ "creator": "@alice:example.org" })).into(),
        );
        hash_and_sign_pdu(server_name!("example.org"), &key(), &mut pdu, &rules).unwrap();

        let expected = STANDARD_NO_PAD.encode(sha256_of_event_without_signatures(&pdu));
        assert_eq!(
            event_id_for_pdu(&pdu, &rules).unwrap().as_str(),
            format!("${expected}")
        );
    }

    #[test]
    fn event_id_ignores_unsigned_and_signatures_but_not_content_hash() {
        let rules = rules(RoomVersionId::V12);
        let mut pdu = v12_create_event();
        hash_and_sign_pdu(server_name!("example.org"), &key(), &mut pdu, &rules).unwrap();
        let original = event_id_for_pdu(&pdu, &rules).unwrap();

        let mut with_other_unsigned = pdu.clone();
        with_other_unsigned.insert(
            "unsigned".into(),
            CanonicalJsonValue::Object(Default::default()),
        );
        assert_eq!(
            event_id_for_pdu(&with_other_unsigned, &rules).unwrap(),
            original
        );

        let mut other_content = v12_create_event();
        other_content.insert(
            "origin_server_ts".into(),
            CanonicalJsonValue::Integer(1_u32.into()),
        );
        hash_and_sign_pdu(
            server_name!("example.org"),
            &key(),
            &mut other_content,
            &rules,
        )
        .unwrap();
        assert_ne!(event_id_for_pdu(&other_content, &rules).unwrap(), original);
    }

    #[test]
    fn v1_event_id_comes_from_the_event() {
        let rules = rules(RoomVersionId::V1);
        let mut pdu = v12_create_event();
        assert!(matches!(
            event_id_for_pdu(&pdu, &rules),
            Err(Error::MissingField("event_id"))
        ));

        pdu.insert(
            "event_id".into(),
            CanonicalJsonValue::String("$abc:example.org".into()),
        );
        assert_eq!(
            event_id_for_pdu(&pdu, &rules).unwrap(),
            event_id!("$abc:example.org")
        );
    }

    #[test]
    fn room_id_needs_a_hash_event_id() {
        let err = room_id_from_create_event_id(event_id!("$abc:example.org")).unwrap_err();
        assert!(matches!(err, Error::WrongRoomVersion(_)), "{err}");
    }

    #[test]
    fn verify_distinguishes_bad_hash_from_bad_signature() {
        let rules = rules(RoomVersionId::V11);
        let server = server_name!("example.org");
        let key = key();
        let keys = key.public_key_map(server);
        let mut pdu = object(serde_json::json!({
            "type": "m.room.message",
            "room_id": "!r:example.org",
            "sender": "@alice:example.org",
            "origin_server_ts": 1,
            "depth": 2,
            "prev_events": [],
            "auth_events": [],
            "content": { "body": "hello", "msgtype": "m.text" },
        }));
        hash_and_sign_pdu(server, &key, &mut pdu, &rules).unwrap();
        assert_eq!(verify_pdu(&keys, &pdu, &rules).unwrap(), Verified::All);

        // The body is redacted away before signing: only the content hash notices.
        let mut edited_body = pdu.clone();
        edited_body.insert(
            "content".into(),
            object(serde_json::json!({ "body": "bye", "msgtype": "m.text" })).into(),
        );
        assert_eq!(
            verify_pdu(&keys, &edited_body, &rules).unwrap(),
            Verified::Signatures
        );

        // The sender survives redaction, so the signature breaks.
        let mut forged_sender = pdu.clone();
        forged_sender.insert(
            "sender".into(),
            CanonicalJsonValue::String("@mallory:example.org".into()),
        );
        assert!(matches!(
            verify_pdu(&keys, &forged_sender, &rules),
            Err(Error::Verification(_))
        ));

        // Keys of some other server do not count.
        let stranger = ServerSigningKey::from_seed(&[1; 32], "k1").unwrap();
        assert!(verify_pdu(&stranger.public_key_map(server), &pdu, &rules).is_err());
    }

    #[test]
    fn unknown_room_version_is_an_error() {
        let version = RoomVersionId::try_from("org.example.nonexistent").unwrap();
        assert!(matches!(
            room_version_rules(&version),
            Err(Error::UnsupportedRoomVersion(_))
        ));
    }
}
