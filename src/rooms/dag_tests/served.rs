//! What other servers are served: the PDU exactly as its origin signed it,
//! with no `event_id` (room versions 3 and later) or local fields added,
//! so that its signatures verify and its reference hash is its id.

use matrixos_federation::{event_id_for_pdu, verify_pdu, PublicKeyMap};
use ruma::canonical_json::CanonicalJsonObject;
use ruma::{RoomVersionId, UserId};

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
}

#[tokio::test]
async fn remote_events_are_served_as_their_origin_signed_them() {
    for version in versions() {
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

#[tokio::test]
async fn local_events_are_served_as_signed_in_every_room_version() {
    for n in 1..=12u8 {
        let version = RoomVersionId::try_from(n.to_string()).unwrap();
        let dag = Dag::new(version.clone());
        let creator = UserId::parse("@carol:us.test").unwrap();
        let room = dag
            .rooms
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
            .unwrap();
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
