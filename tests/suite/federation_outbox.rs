//! What a server owes another goes out in transactions of bounded size,
//! and a transaction the destination refuses for good (a 4xx such as 413)
//! is dropped instead of holding up everything behind it.

use serde_json::{json, Value};

use crate::common::rooms::send_text;
use crate::common::{create_room, expect_ok, next_batch, start_federated, sync, Raw, V3};
use crate::federation_gap::hold_back;
use crate::federation_rooms::{has_event, join_via};

fn to_device_edu(sender: &str, user: &str, device: &str, n: u32, bytes: usize) -> Value {
    json!({
        "edu_type": "m.direct_to_device",
        "content": {
            "sender": sender,
            "type": "m.test.blob",
            "message_id": format!("blob-{n}"),
            "messages": { user: { device: { "n": n, "blob": "x".repeat(bytes) } } },
        },
    })
}

#[tokio::test]
async fn big_transactions_are_split_and_a_refused_one_does_not_block_the_rest() {
    let (ours, theirs) = (start_federated().await, start_federated().await);
    let theirs_name = theirs.services.server_name.clone();
    let (alice, alice_id) = Raw::new(&ours).register("alice").await;
    let (bob, bob_id) = Raw::new(&theirs).register("bob").await;
    let room = create_room(&alice, json!({ "preset": "public_chat" })).await;
    let joined = join_via(&bob, &room, ours.services.server_name.as_str()).await;
    assert_eq!(joined.0, 200, "{}", joined.1);
    let whoami = expect_ok(
        bob.call("GET", &format!("{V3}/account/whoami"), None).await,
        "whoami",
    );
    let bob_device = whoami["device_id"].as_str().unwrap().to_owned();
    let mut since = next_batch(&sync(&bob, None, 0).await);

    // Owed while the destination is thought down: two messages of 3 MiB
    // (together over a transaction's size), one of 11 MiB (more than the
    // destination takes in a transaction), then an event of the room.
    hold_back(&ours, theirs_name.as_str()).await;
    let outbox = &ours.services.federation.outbox;
    for (n, size) in [(1, 3 << 20), (2, 3 << 20), (3, 11 << 20)] {
        let edu = to_device_edu(&alice_id, &bob_id, &bob_device, n, size);
        outbox
            .queue_edu(&ours.services, &theirs_name, &edu)
            .await
            .unwrap();
    }
    send_text(&alice, &room, "after", "after the blobs").await;
    matrixos::federation::sender::forget_backoff(&ours.services, &theirs_name)
        .await
        .unwrap();

    let mut blobs = Vec::new();
    let mut message = false;
    for _ in 0..15 {
        let body = sync(&bob, Some(&since), 2000).await;
        for event in body["to_device"]["events"].as_array().into_iter().flatten() {
            if event["type"] == "m.test.blob" {
                blobs.push(event["content"]["n"].as_u64().unwrap());
            }
        }
        message |= has_event(&body, &room, |e| e["content"]["body"] == "after the blobs");
        since = next_batch(&body);
        if message && blobs.len() >= 2 {
            break;
        }
    }
    assert!(message, "the event behind the refused transaction arrived");
    assert_eq!(blobs, [1, 2], "both 3 MiB messages, not the refused one");
    // What was answered is no longer owed (the answer may still be on its
    // way back when Bob's sync shows the event).
    let owed = || {
        matrixos_storage::tables::FEDERATION_OUTBOX
            .scan_prefix(&ours.services.store.db, theirs_name.as_bytes())
            .count()
    };
    for _ in 0..100 {
        if owed() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(owed(), 0, "nothing is left owed");
}
