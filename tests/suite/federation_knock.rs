//! Knocking across servers: a user knocks on a room of another server
//! (`make_knock`/`send_knock`), sees the knock with the room's stripped
//! state, is let in by an invite and joins, or withdraws the knock; with
//! Matrix OS on both sides and with Synapse both ways.

use serde_json::{json, Value};

use crate::common::rooms::{invite, sync_until};
use crate::common::synapse::Synapse;
use crate::common::{create_room, enc, next_batch, start_federated, sync, Raw, V3};

/// A room that takes knocks, named `name`.
async fn knock_room(owner: &Raw, name: &str) -> String {
    create_room(
        owner,
        json!({
            "preset": "private_chat",
            "name": name,
            "room_version": "10",
            "initial_state": [{
                "type": "m.room.join_rules", "state_key": "",
                "content": { "join_rule": "knock" }
            }]
        }),
    )
    .await
}

async fn knock(client: &Raw, room: &str, via: &str) -> (u16, Value) {
    client
        .json(
            "POST",
            &format!("{V3}/knock/{}?via={}", enc(room), enc(via)),
            json!({ "reason": "let me in" }),
        )
        .await
}

async fn membership_of(client: &Raw, room: &str, user: &str) -> Value {
    let path = format!("{V3}/rooms/{}/state/m.room.member/{}", enc(room), enc(user));
    client.call("GET", &path, None).await.1["membership"].clone()
}

/// Waits until `owner`'s server shows `user` with `membership` in `room`.
async fn until_membership(owner: &Raw, room: &str, user: &str, membership: &str) {
    let since = next_batch(&sync(owner, None, 0).await);
    if membership_of(owner, room, user).await == membership {
        return;
    }
    sync_until(owner, &since, membership, |s| {
        s["rooms"]["join"][room]["timeline"]["events"]
            .as_array()
            .is_some_and(|events| {
                events.iter().any(|e| {
                    e["type"] == "m.room.member"
                        && e["state_key"] == user
                        && e["content"]["membership"] == membership
                })
            })
    })
    .await;
}

#[tokio::test]
async fn a_user_knocks_on_a_room_of_another_server_and_is_let_in_or_withdraws() {
    let (ours, theirs) = (start_federated().await, start_federated().await);
    let ours_name = ours.services.server_name.to_string();
    let (alice, _) = Raw::new(&ours).register("alice").await;
    let (bob, bob_id) = Raw::new(&theirs).register("bob").await;
    let bob_since = next_batch(&sync(&bob, None, 0).await);
    let room = knock_room(&alice, "Porch").await;

    let knocked = knock(&bob, &room, &ours_name).await;
    assert_eq!(knocked.0, 200, "{}", knocked.1);
    assert_eq!(knocked.1["room_id"], room.as_str());
    let seen = sync_until(&bob, &bob_since, "the knock on bob's server", |s| {
        s["rooms"]["knock"][&room].is_object()
    })
    .await;
    let state = &seen["rooms"]["knock"][&room]["knock_state"]["events"];
    assert!(
        state
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["content"]["name"] == "Porch")),
        "the knock shows the room's name: {seen}"
    );
    until_membership(&alice, &room, &bob_id, "knock").await;

    // Let in: an invite, then a join.
    invite(&alice, &room, &bob_id).await;
    sync_until(&bob, &next_batch(&seen), "the invite", |s| {
        s["rooms"]["invite"][&room].is_object()
    })
    .await;
    let joined = bob
        .json("POST", &format!("{V3}/join/{}", enc(&room)), json!({}))
        .await;
    assert_eq!(joined.0, 200, "{}", joined.1);
    until_membership(&alice, &room, &bob_id, "join").await;

    // Withdrawn: a leave through the room's server.
    let other = knock_room(&alice, "Side door").await;
    assert_eq!(knock(&bob, &other, &ours_name).await.0, 200);
    until_membership(&alice, &other, &bob_id, "knock").await;
    let left = crate::common::rooms::leave(&bob, &other).await;
    assert_eq!(left.0, 200, "{}", left.1);
    until_membership(&alice, &other, &bob_id, "leave").await;

    // Turned down: the room's server tells Bob's, whose sync shows it.
    let back = knock_room(&alice, "Back door").await;
    assert_eq!(knock(&bob, &back, &ours_name).await.0, 200);
    until_membership(&alice, &back, &bob_id, "knock").await;
    let bob_since = next_batch(&sync(&bob, None, 0).await);
    kick(&alice, &back, &bob_id).await;
    sync_until(&bob, &bob_since, "the knock turned down", |s| {
        s["rooms"]["leave"][&back].is_object()
    })
    .await;

    // A room that takes no knocks refuses one.
    let closed = create_room(&alice, json!({ "preset": "private_chat" })).await;
    let refused = knock(&bob, &closed, &ours_name).await;
    assert_eq!(refused.0, 403, "{}", refused.1);
}

#[tokio::test]
async fn synapse_and_matrix_os_users_knock_on_each_others_rooms() {
    let synapse = Synapse::start().await;
    let ours = start_federated().await;
    let ours_name = ours.services.server_name.to_string();
    let (alice, alice_id) = Raw::new(&ours).register("alice").await;
    let (sam, sam_id) = synapse.register("sam").await;

    // Sam knocks on Alice's room and is let in.
    let room = knock_room(&alice, "Matrix OS porch").await;
    let knocked = knock(&sam, &room, &ours_name).await;
    assert_eq!(knocked.0, 200, "{}\n{}", knocked.1, synapse.log_tail());
    until_membership(&alice, &room, &sam_id, "knock").await;
    let sam_since = next_batch(&sync(&sam, None, 0).await);
    invite(&alice, &room, &sam_id).await;
    sync_until(&sam, &sam_since, "the invite on synapse", |s| {
        s["rooms"]["invite"][&room].is_object()
    })
    .await;
    let joined = sam
        .json("POST", &format!("{V3}/join/{}", enc(&room)), json!({}))
        .await;
    assert_eq!(joined.0, 200, "{}", joined.1);
    until_membership(&alice, &room, &sam_id, "join").await;

    // Alice knocks on Sam's room and is let in.
    let theirs = knock_room(&sam, "Synapse porch").await;
    let knocked = knock(&alice, &theirs, &synapse.server_name).await;
    assert_eq!(knocked.0, 200, "{}\n{}", knocked.1, synapse.log_tail());
    until_membership(&sam, &theirs, &alice_id, "knock").await;
    let alice_since = next_batch(&sync(&alice, None, 0).await);
    invite(&sam, &theirs, &alice_id).await;
    sync_until(&alice, &alice_since, "the invite on matrix os", |s| {
        s["rooms"]["invite"][&theirs].is_object()
    })
    .await;
    let joined = alice
        .json("POST", &format!("{V3}/join/{}", enc(&theirs)), json!({}))
        .await;
    assert_eq!(joined.0, 200, "{}", joined.1);
    until_membership(&sam, &theirs, &alice_id, "join").await;
}

async fn kick(owner: &Raw, room: &str, user: &str) {
    let path = format!("{V3}/rooms/{}/kick", enc(room));
    let kicked = owner.json("POST", &path, json!({ "user_id": user })).await;
    assert_eq!(kicked.0, 200, "{}", kicked.1);
}
