//! End-to-end encryption keys across servers: a user's device keys and
//! one-time keys reach a user of another server through `/keys/query` and
//! `/keys/claim`, to-device messages go both ways as EDUs, and a device
//! change reaches the users of other servers who share a room.

use serde_json::{json, Value};

use crate::common::rooms::sync_until;
use matrixos_storage::tables;
use matrixos_storage::typed::TextAndTwoU64;

use crate::common::{
    create_room, expect_ok, next_batch, start_federated, sync, Raw, TestServer, V3,
};
use crate::cross_signing::upload_device_keys;
use crate::federation_gap::hold_back;
use crate::federation_rooms::join_via;

async fn device_of(raw: &Raw) -> String {
    let me = expect_ok(
        raw.call("GET", &format!("{V3}/account/whoami"), None).await,
        "whoami",
    );
    me["device_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn keys_and_to_device_messages_cross_servers() {
    let (ours, theirs) = (start_federated().await, start_federated().await);
    let (alice, alice_id) = Raw::new(&ours).register("alice").await;
    let (bob, bob_id) = Raw::new(&theirs).register("bob").await;
    let alice_device = device_of(&alice).await;
    // They share a room, so Bob's server hears of Alice's device changes.
    let room = create_room(&alice, json!({ "preset": "public_chat" })).await;
    let joined = join_via(&bob, &room, ours.services.server_name.as_str()).await;
    assert_eq!(joined.0, 200, "{}", joined.1);
    let bob_before_keys = next_batch(&sync(&bob, None, 0).await);

    let keys = json!({
        "user_id": alice_id,
        "device_id": alice_device,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": { format!("curve25519:{alice_device}"): "curve-key", format!("ed25519:{alice_device}"): "ed-key" },
        "signatures": { &alice_id: { format!("ed25519:{alice_device}"): "sig" } },
    });
    let otks = json!({
        "signed_curve25519:AAAAAQ": { "key": "otk-1", "signatures": {} },
        "signed_curve25519:AAAAAg": { "key": "otk-2", "signatures": {} },
    });
    let uploaded = alice
        .json(
            "POST",
            &format!("{V3}/keys/upload"),
            json!({ "device_keys": keys, "one_time_keys": otks }),
        )
        .await;
    expect_ok(uploaded, "keys/upload");
    sees_keys_change(&bob, &bob_before_keys, &alice_id, "alice's device change").await;

    // New cross-signing keys reach Bob's server too, and his queries show
    // Alice's master key.
    let bob_before_identity = next_batch(&sync(&bob, None, 0).await);
    let identity = crate::cross_signing::Identity::new();
    let uploaded = alice
        .json(
            "POST",
            &format!("{V3}/keys/device_signing/upload"),
            identity.upload_body(&alice_id),
        )
        .await;
    expect_ok(uploaded, "cross-signing keys");
    sees_keys_change(
        &bob,
        &bob_before_identity,
        &alice_id,
        "alice's new identity",
    )
    .await;

    // Bob's server asks Alice's.
    let queried = expect_ok(
        bob.json(
            "POST",
            &format!("{V3}/keys/query"),
            json!({ "device_keys": { &alice_id: [] } }),
        )
        .await,
        "remote keys/query",
    );
    let device = &queried["device_keys"][&alice_id][&alice_device];
    assert_eq!(
        device["keys"][format!("curve25519:{alice_device}")],
        "curve-key",
        "{queried}"
    );
    assert!(
        queried["failures"].as_object().is_none_or(|f| f.is_empty()),
        "{queried}"
    );

    let claimed = expect_ok(
        bob.json(
            "POST",
            &format!("{V3}/keys/claim"),
            json!({ "one_time_keys": { &alice_id: { &alice_device: "signed_curve25519" } } }),
        )
        .await,
        "remote keys/claim",
    );
    let keys: Vec<&Value> = claimed["one_time_keys"][&alice_id][&alice_device]
        .as_object()
        .map(|k| k.values().collect())
        .unwrap_or_default();
    assert_eq!(keys.len(), 1, "{claimed}");
    assert!(
        keys[0]["key"] == "otk-1" || keys[0]["key"] == "otk-2",
        "{claimed}"
    );

    // A server that is down is a failure, not an error.
    let gone = expect_ok(
        bob.json(
            "POST",
            &format!("{V3}/keys/query"),
            json!({ "device_keys": { "@nobody:127.0.0.1:9": [] } }),
        )
        .await,
        "keys/query of a server that is down",
    );
    assert!(gone["failures"]["127.0.0.1:9"].is_object(), "{gone}");

    // A to-device message from Bob to Alice's device, and back.
    let alice_since = next_batch(&sync(&alice, None, 0).await);
    let sent = bob
        .json(
            "PUT",
            &format!("{V3}/sendToDevice/m.test.ping/txn1"),
            json!({ "messages": { &alice_id: { &alice_device: { "ping": 1 } } } }),
        )
        .await;
    expect_ok(sent, "remote sendToDevice");
    let got = to_device_until(&alice, &alice_since, "m.test.ping").await;
    assert_eq!(got["sender"], json!(bob_id));
    assert_eq!(got["content"]["ping"], 1);

    let bob_since = next_batch(&sync(&bob, None, 0).await);
    let sent = alice
        .json(
            "PUT",
            &format!("{V3}/sendToDevice/m.test.pong/txn1"),
            json!({ "messages": { &bob_id: { "*": { "pong": 2 } } } }),
        )
        .await;
    expect_ok(sent, "sendToDevice to all of a remote user's devices");
    let got = to_device_until(&bob, &bob_since, "m.test.pong").await;
    assert_eq!(got["sender"], json!(alice_id));
}

/// Syncs `raw` from `since` until `user` is in `device_lists.changed`.
async fn sees_keys_change(raw: &Raw, since: &str, user: &str, what: &str) {
    sync_until(raw, since, what, |s| {
        s["device_lists"]["changed"]
            .as_array()
            .is_some_and(|users| users.iter().any(|u| u == user))
    })
    .await;
}

/// The first to-device event of `kind` in syncs from `since` (bounded).
async fn to_device_until(raw: &Raw, since: &str, kind: &str) -> Value {
    let mut since = since.to_owned();
    for _ in 0..10 {
        let body = sync(raw, Some(&since), 2000).await;
        if let Some(found) = body["to_device"]["events"]
            .as_array()
            .and_then(|events| events.iter().find(|e| e["type"] == kind))
        {
            return found.clone();
        }
        since = next_batch(&body);
    }
    panic!("no {kind} to-device message in 10 syncs");
}

/// The device list updates `server` owes `destination`, oldest first.
fn owed_device_list_updates(server: &TestServer, destination: &str) -> Vec<Value> {
    let prefix = TextAndTwoU64::prefix(destination, None);
    tables::FEDERATION_OUTBOX
        .scan_prefix(&server.services.store.db, &prefix)
        .map(|row| row.unwrap())
        .filter(|(key, _)| key.2 == tables::OUTBOX_EDU)
        .map(|(_, edu)| serde_json::from_slice::<Value>(&edu).unwrap())
        .filter(|edu| edu["edu_type"] == "m.device_list_update")
        .map(|edu| edu["content"].clone())
        .collect()
}

#[tokio::test]
async fn device_list_updates_name_the_update_before_them() {
    use ruma::api::federation::device::get_devices::v1 as user_devices;

    let (ours, theirs) = (start_federated().await, start_federated().await);
    let (ours_name, theirs_name) = (
        ours.services.server_name.clone(),
        theirs.services.server_name.to_string(),
    );
    let (alice, alice_id) = Raw::new(&ours).register("alice").await;
    let (bob, _) = Raw::new(&theirs).register("bob").await;
    let room = create_room(&alice, json!({ "preset": "public_chat" })).await;
    let joined = join_via(&bob, &room, ours_name.as_str()).await;
    assert_eq!(joined.0, 200, "{}", joined.1);

    hold_back(&ours, &theirs_name).await;
    upload_device_keys(&alice, &alice_id).await;
    let login = json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": "alice" },
        "password": "secret-pw",
    });
    let second = expect_ok(
        Raw::new(&ours)
            .json("POST", &format!("{V3}/login"), login)
            .await,
        "second login",
    );
    let alice_phone = alice.with_token(second["access_token"].as_str().unwrap());
    upload_device_keys(&alice_phone, &alice_id).await;

    let updates = owed_device_list_updates(&ours, &theirs_name);
    assert_eq!(updates.len(), 2, "{updates:?}");
    let (first, next) = (&updates[0], &updates[1]);
    assert_eq!(first["prev_id"], json!([]), "the first update names none");
    assert_eq!(next["prev_id"], json!([first["stream_id"]]), "{updates:?}");
    assert!(next["stream_id"].as_u64() > first["stream_id"].as_u64());

    // Fetched whole, the list answers the stream id of its last update.
    let alice_user = ruma::OwnedUserId::try_from(alice_id.as_str()).unwrap();
    let list = theirs
        .services
        .federation
        .client
        .send(&ours_name, user_devices::Request::new(alice_user))
        .await
        .unwrap();
    assert_eq!(Some(u64::from(list.stream_id)), next["stream_id"].as_u64());
    assert_eq!(list.devices.len(), 2);
}
