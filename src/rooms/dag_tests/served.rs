//! What other servers are served: the PDU exactly as its origin signed it,
//! with no `event_id` (room versions 3 and later) or local fields added,
//! so that its signatures verify and its reference hash is its id.

use matrixos_federation::{event_id_for_pdu, verify_pdu, PublicKeyMap};
use ruma::canonical_json::{CanonicalJsonObject, CanonicalJsonValue};
use ruma::room_version_rules::EventsReferenceFormatVersion;
use ruma::{EventId, RoomVersionId, UserId};

use super::*;
use crate::rooms::create::{CreateRoom, Preset};

/// Checks a served PDU against the keys that signed it and its id.
fn check_served(dag: &Dag, version: &RoomVersionId, keys: &PublicKeyMap, short: u64) {
    let served = dag.rooms.signed_pdu(short).unwrap();
    let pdu = dag.rooms.pdu_by_short(short).unwrap();
    let object: CanonicalJsonObject = serde_json::from_slice(&served).unwrap();
    let rules = version.rules().unwrap();
    assert_eq!(
        object.contains_key("event_id"),
        version.rules().unwrap().event_id_format
            == ruma::room_version_rules::EventIdFormatVersion::V1,
        "{version}: event_id on the wire only in room versions 1 and 2"
    );
    verify_pdu(keys, &object, &rules).unwrap_or_else(|e| panic!("{version}: {e}"));
    assert_eq!(event_id_for_pdu(&object, &rules).unwrap(), pdu.event_id);
    for field in ["prev_events", "auth_events"] {
        check_references(dag, version, &object[field]);
    }
}

/// Room versions 1 and 2 name prev and auth events with their reference
/// hashes, `[id, {"sha256": hash}]`; later versions by id.
fn check_references(dag: &Dag, version: &RoomVersionId, refs: &CanonicalJsonValue) {
    let rules = version.rules().unwrap();
    let CanonicalJsonValue::Array(refs) = refs else {
        panic!("{version}: references are not an array: {refs:?}");
    };
    for reference in refs {
        let with_hash = rules.events_reference_format == EventsReferenceFormatVersion::V1;
        let id = match reference {
            CanonicalJsonValue::String(id) if !with_hash => id,
            CanonicalJsonValue::Array(pair) if with_hash => {
                let [CanonicalJsonValue::String(id), CanonicalJsonValue::Object(hashes)] =
                    pair.as_slice()
                else {
                    panic!("{version}: reference {pair:?}");
                };
                let short = dag.rooms.short_event(&EventId::parse(id).unwrap()).unwrap();
                let referenced: CanonicalJsonObject =
                    serde_json::from_slice(&dag.rooms.signed_pdu(short.unwrap()).unwrap()).unwrap();
                let hash = ruma::signatures::reference_hash(&referenced, &rules).unwrap();
                assert_eq!(
                    hashes.get("sha256"),
                    Some(&CanonicalJsonValue::String(hash)),
                    "{version}: the reference hash of {id}"
                );
                id
            }
            other => panic!("{version}: reference in the wrong form: {other:?}"),
        };
        assert!(id.starts_with('$'), "{version}: {id}");
    }
}

#[tokio::test]
async fn remote_events_are_served_as_their_origin_signed_them() {
    let older = [RoomVersionId::V1, RoomVersionId::V2, RoomVersionId::V3];
    for version in older.into_iter().chain(versions()) {
        let mut dag = Dag::new(version.clone());
        let base = Base::start(&mut dag, 0).await;
        let mut keys = dag.a.key.public_key_map(&dag.a.name);
        keys.extend(dag.b.key.public_key_map(&dag.b.name));
        for event in [&base.create, &base.power, &base.bob_join] {
            let short = dag.rooms.short_event(event.event_id()).unwrap().unwrap();
            check_served(&dag, &version, &keys, short);
        }
    }
}

/// A public room named "served" in `version`, created by carol.
async fn create(dag: &Dag, version: &RoomVersionId) -> ruma::OwnedRoomId {
    let creator = UserId::parse("@carol:us.test").unwrap();
    dag.rooms
        .create_room(
            &creator,
            CreateRoom {
                version: version.clone(),
                preset: Preset::PublicChat,
                name: Some("served".into()),
                topic: None,
                alias: None,
                invite: vec![],
                is_direct: false,
                creation_content: Default::default(),
                power_level_override: None,
                initial_state: vec![],
                creator_profile: Default::default(),
            },
        )
        .await
        .unwrap()
}

/// In room version 12 the room id is the create event's hash: one person
/// creating the same room twice within a millisecond still gets two.
#[tokio::test]
async fn rooms_created_at_once_are_distinct() {
    let dag = Dag::new(RoomVersionId::V12);
    let mut rooms = std::collections::HashSet::new();
    for _ in 0..20 {
        assert!(rooms.insert(create(&dag, &RoomVersionId::V12).await));
    }
}

#[tokio::test]
async fn local_events_are_served_as_signed_in_every_room_version() {
    for n in 1..=12u8 {
        let version = RoomVersionId::try_from(n.to_string()).unwrap();
        let dag = Dag::new(version.clone());
        let room = create(&dag, &version).await;
        let keys = dag.rooms.signing_key.public_key_map(&dag.rooms.server_name);
        let short_room = dag.rooms.short_room(&room).unwrap().unwrap();
        let events = dag
            .rooms
            .timeline(
                short_room,
                crate::rooms::timeline::TimelinePos::EARLIEST,
                matrixos_storage::Direction::Forward,
                100,
                None,
            )
            .unwrap();
        assert!(events.len() >= 5, "{version}: {} events", events.len());
        for entry in events {
            check_served(&dag, &version, &keys, entry.short);
        }
    }
}
