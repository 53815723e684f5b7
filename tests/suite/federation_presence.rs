//! Presence across servers (`m.presence` EDUs): a user's presence and
//! status message reach the syncs and `/presence` of the people on other
//! servers who share a room with them; Matrix OS with Matrix OS and with
//! Synapse, both ways.

use serde_json::{json, Value};

use crate::common::rooms::sync_until;
use crate::common::synapse::Synapse;
use crate::common::{create_room, enc, expect_ok, next_batch, start_federated, sync, Raw, V3};
use crate::federation_rooms::join_via;

async fn set_presence(client: &Raw, user: &str, presence: &str, status: &str) {
    let path = format!("{V3}/presence/{}/status", enc(user));
    let body = json!({ "presence": presence, "status_msg": status });
    expect_ok(client.json("PUT", &path, body).await, "set presence");
}

/// Whether a sync carries `user`'s presence with status message `status`.
fn shows_status(sync: &Value, user: &str, status: &str) -> bool {
    sync["presence"]["events"].as_array().is_some_and(|events| {
        events
            .iter()
            .any(|e| e["sender"] == user && e["content"]["status_msg"] == status)
    })
}

/// `user`'s presence as `viewer`'s server tells it.
async fn presence_of(viewer: &Raw, user: &str) -> Value {
    let path = format!("{V3}/presence/{}/status", enc(user));
    let (status, body) = viewer.call("GET", &path, None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// `a` and `b` (of different servers) in one room of `a`'s server.
async fn share_a_room(a: &Raw, b: &Raw, a_server: &str) {
    let room = create_room(a, json!({ "preset": "public_chat" })).await;
    let joined = join_via(b, &room, a_server).await;
    assert_eq!(joined.0, 200, "{}", joined.1);
}

#[tokio::test]
async fn presence_crosses_between_matrix_os_servers() {
    let (ours, theirs) = (start_federated().await, start_federated().await);
    let (alice, alice_id) = Raw::new(&ours).register("alice").await;
    let (bob, bob_id) = Raw::new(&theirs).register("bob").await;
    share_a_room(&alice, &bob, ours.services.server_name.as_ref()).await;

    let bob_since = next_batch(&sync(&bob, None, 0).await);
    set_presence(&alice, &alice_id, "online", "gardening").await;
    sync_until(&bob, &bob_since, "alice's presence on bob's server", |s| {
        shows_status(s, &alice_id, "gardening")
    })
    .await;
    let seen = presence_of(&bob, &alice_id).await;
    assert_eq!(seen["presence"], "online", "{seen}");

    let alice_since = next_batch(&sync(&alice, None, 0).await);
    set_presence(&bob, &bob_id, "unavailable", "away for lunch").await;
    sync_until(
        &alice,
        &alice_since,
        "bob's presence on alice's server",
        |s| shows_status(s, &bob_id, "away for lunch"),
    )
    .await;
    assert_eq!(
        presence_of(&alice, &bob_id).await["presence"],
        "unavailable"
    );
}

#[tokio::test]
async fn presence_crosses_between_synapse_and_matrix_os() {
    let synapse = Synapse::start().await;
    let ours = start_federated().await;
    let (alice, alice_id) = Raw::new(&ours).register("alice").await;
    let (sam, sam_id) = synapse.register("sam").await;
    share_a_room(&alice, &sam, ours.services.server_name.as_ref()).await;

    let sam_since = next_batch(&sync(&sam, None, 0).await);
    set_presence(&alice, &alice_id, "online", "writing rust").await;
    sync_until(&sam, &sam_since, "alice's presence on synapse", |s| {
        shows_status(s, &alice_id, "writing rust")
    })
    .await;

    let alice_since = next_batch(&sync(&alice, None, 0).await);
    set_presence(&sam, &sam_id, "online", "reading python").await;
    sync_until(&alice, &alice_since, "sam's presence on matrix os", |s| {
        shows_status(s, &sam_id, "reading python")
    })
    .await;
}
