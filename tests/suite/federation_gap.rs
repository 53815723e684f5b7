//! A gap `/get_missing_events` cannot fill: a server that missed more
//! events of a room than that call brings (as after Synapse's catch-up,
//! which sends a returning server only the newest events) takes the next
//! event with the state before it from `/state_ids`, and its users see
//! it and the room's state it carries.

use matrixos::store::Wake;
use matrixos_storage::records::DestinationRecord;
use matrixos_storage::typed::TextAndTwoU64;
use matrixos_storage::{tables, Batch};
use serde_json::json;

use crate::common::rooms::{send_text, sync_until};
use crate::common::{create_room, enc, next_batch, start_federated, sync, Raw, TestServer, V3};
use crate::federation_rooms::{has_event, join_via};

fn now_ms() -> u64 {
    ruma::MilliSecondsSinceUnixEpoch::now().get().into()
}

/// Makes `server` hold back what it owes `destination` for an hour.
pub async fn hold_back(server: &TestServer, destination: &str) {
    let mut batch = Batch::new();
    let record = DestinationRecord {
        failures: 1,
        retry_at: now_ms() + 3_600_000,
    };
    tables::FEDERATION_DESTINATIONS.put(&mut batch, destination, &record);
    server
        .services
        .store
        .commit(batch, vec![], Wake::none())
        .await
        .unwrap();
}

/// Drops everything `server` owes `destination`: those events never go.
async fn drop_owed(server: &TestServer, destination: &str) -> usize {
    let db = &server.services.store.db;
    let prefix = TextAndTwoU64::prefix(destination, None);
    let mut batch = Batch::new();
    let mut dropped = 0;
    for row in tables::FEDERATION_OUTBOX.scan_prefix(db, &prefix) {
        let (key, _) = row.unwrap();
        tables::FEDERATION_OUTBOX.delete(&mut batch, &key);
        dropped += 1;
    }
    server
        .services
        .store
        .commit(batch, vec![], Wake::none())
        .await
        .unwrap();
    dropped
}

#[tokio::test]
async fn a_server_that_missed_many_events_takes_the_next_with_state_from_state_ids() {
    let (ours, theirs) = (start_federated().await, start_federated().await);
    let theirs_name = theirs.services.server_name.to_string();
    let (alice, _) = Raw::new(&ours).register("alice").await;
    let (bob, _) = Raw::new(&theirs).register("bob").await;
    let room = create_room(&alice, json!({ "preset": "public_chat" })).await;
    let joined = join_via(&bob, &room, ours.services.server_name.as_str()).await;
    assert_eq!(joined.0, 200, "{}", joined.1);

    // Bob's server misses 30 messages and a change of the room's name.
    hold_back(&ours, &theirs_name).await;
    for i in 0..30 {
        send_text(&alice, &room, &format!("missed{i}"), &format!("missed {i}")).await;
    }
    let path = format!("{V3}/rooms/{}/state/m.room.name/", enc(&room));
    let (status, _) = alice.json("PUT", &path, json!({ "name": "Renamed" })).await;
    assert_eq!(status, 200);
    assert!(drop_owed(&ours, &theirs_name).await >= 31);
    matrixos::federation::sender::forget_backoff(&ours.services, &theirs.services.server_name)
        .await
        .unwrap();

    // The next message reaches Bob, with the state before it.
    let bob_since = next_batch(&sync(&bob, None, 0).await);
    send_text(&alice, &room, "after", "after the gap").await;
    sync_until(&bob, &bob_since, "the message after the gap", |s| {
        has_event(s, &room, |e| e["content"]["body"] == "after the gap")
    })
    .await;
    let (status, name) = bob.call("GET", &path, None).await;
    assert_eq!((status, name["name"].as_str()), (200, Some("Renamed")));
    // Bob's messages reach Alice's server again.
    let alice_since = next_batch(&sync(&alice, None, 0).await);
    send_text(&bob, &room, "reply", "bob is back").await;
    sync_until(&alice, &alice_since, "bob's reply", |s| {
        has_event(s, &room, |e| e["content"]["body"] == "bob is back")
    })
    .await;
}
