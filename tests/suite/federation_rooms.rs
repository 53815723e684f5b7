//! Rooms across servers: a user joins a room on another server through
//! `make_join`/`send_join`, and messages, state, typing and receipts flow
//! both ways through transactions; Matrix OS with Matrix OS and with a
//! real Synapse.

use serde_json::{json, Value};

use crate::common::rooms::{send_text, sync_until};
use crate::common::synapse::Synapse;
use crate::common::{create_room, enc, expect_ok, next_batch, start_federated, sync, Raw, V3};

/// Joins `room` on `server` as `client`.
pub async fn join_via(client: &Raw, room: &str, server: &str) -> (u16, Value) {
    client
        .json(
            "POST",
            &format!("{V3}/join/{}?server_name={}", enc(room), enc(server)),
            json!({}),
        )
        .await
}

/// Whether a sync shows a timeline event of `room` matching `pred`.
pub fn has_event(sync: &Value, room: &str, pred: impl Fn(&Value) -> bool) -> bool {
    sync["rooms"]["join"][room]["timeline"]["events"]
        .as_array()
        .is_some_and(|events| events.iter().any(pred))
}

fn is_text(text: &'static str) -> impl Fn(&Value) -> bool {
    move |e: &Value| e["content"]["body"] == text
}

#[tokio::test]
async fn a_user_joins_a_room_on_another_matrix_os_server_and_they_talk() {
    let (ours, theirs) = (start_federated().await, start_federated().await);
    let ours_name = ours.services.server_name.to_string();
    let (alice, alice_id) = Raw::new(&ours).register("alice").await;
    let (bob, bob_id) = Raw::new(&theirs).register("bob").await;
    let room = create_room(&alice, json!({ "preset": "public_chat", "name": "Garden" })).await;
    send_text(&alice, &room, "t1", "before bob").await;
    let alice_since = next_batch(&sync(&alice, None, 0).await);

    let joined = join_via(&bob, &room, &ours_name).await;
    assert_eq!(joined.0, 200, "{}", joined.1);

    // Bob's server has the room: its name, and Alice's history.
    let first = sync(&bob, None, 0).await;
    let state = &first["rooms"]["join"][&room];
    assert!(state.is_object(), "bob's sync has the room: {first}");
    let (status, name) = bob
        .call(
            "GET",
            &format!("{V3}/rooms/{}/state/m.room.name/", enc(&room)),
            None,
        )
        .await;
    assert_eq!((status, name["name"].as_str()), (200, Some("Garden")));
    let bob_since = next_batch(&first);

    // Alice's server relays nothing back to Bob's: it sees his join.
    sync_until(&alice, &alice_since, "bob's join on alice's server", |s| {
        has_event(s, &room, |e| {
            e["type"] == "m.room.member"
                && e["state_key"] == bob_id
                && e["content"]["membership"] == "join"
        })
    })
    .await;

    // Messages both ways.
    send_text(&alice, &room, "t2", "hello bob").await;
    let seen = sync_until(&bob, &bob_since, "alice's message on bob's server", |s| {
        has_event(s, &room, is_text("hello bob"))
    })
    .await;
    let bob_since = next_batch(&seen);
    send_text(&bob, &room, "t3", "hello alice").await;
    sync_until(
        &alice,
        &alice_since,
        "bob's message on alice's server",
        |s| has_event(s, &room, is_text("hello alice")),
    )
    .await;

    // State: a topic change by Alice reaches Bob's server's state.
    let topic = alice
        .json(
            "PUT",
            &format!("{V3}/rooms/{}/state/m.room.topic/", enc(&room)),
            json!({ "topic": "flowers" }),
        )
        .await;
    expect_ok(topic, "topic");
    sync_until(&bob, &bob_since, "the topic on bob's server", |s| {
        has_event(s, &room, |e| e["type"] == "m.room.topic")
    })
    .await;
    let (status, topic) = bob
        .call(
            "GET",
            &format!("{V3}/rooms/{}/state/m.room.topic/", enc(&room)),
            None,
        )
        .await;
    assert_eq!((status, topic["topic"].as_str()), (200, Some("flowers")));

    // Typing from Bob shows on Alice's side.
    let typing = bob
        .json(
            "PUT",
            &format!("{V3}/rooms/{}/typing/{}", enc(&room), enc(&bob_id)),
            json!({ "typing": true, "timeout": 10000 }),
        )
        .await;
    expect_ok(typing, "typing");
    sync_until(&alice, &alice_since, "bob typing on alice's server", |s| {
        s["rooms"]["join"][&room]["ephemeral"]["events"]
            .as_array()
            .is_some_and(|events| {
                events.iter().any(|e| {
                    e["type"] == "m.typing"
                        && e["content"]["user_ids"]
                            .as_array()
                            .is_some_and(|u| u.iter().any(|u| u == &json!(bob_id)))
                })
            })
    })
    .await;

    // Bob leaves; Alice's server sees it.
    let left = crate::common::rooms::leave(&bob, &room).await;
    expect_ok(left, "leave");
    sync_until(&alice, &alice_since, "bob's leave on alice's server", |s| {
        has_event(s, &room, |e| {
            e["type"] == "m.room.member"
                && e["state_key"] == bob_id
                && e["content"]["membership"] == "leave"
        })
    })
    .await;
    let _ = alice_id;
}

#[tokio::test]
async fn synapse_user_joins_a_matrix_os_room_and_they_talk() {
    let synapse = Synapse::start().await;
    let ours = start_federated().await;
    let ours_name = ours.services.server_name.to_string();
    let (alice, _) = Raw::new(&ours).register("alice").await;
    let (sam, sam_id) = synapse.register("sam").await;
    let room = create_room(&alice, json!({ "preset": "public_chat", "name": "Garden" })).await;
    send_text(&alice, &room, "t1", "before sam").await;
    let alice_since = next_batch(&sync(&alice, None, 0).await);

    let joined = join_via(&sam, &room, &ours_name).await;
    assert_eq!(joined.0, 200, "{}\n{}", joined.1, synapse.log_tail());
    sync_until(&alice, &alice_since, "sam's join", |s| {
        has_event(s, &room, |e| {
            e["type"] == "m.room.member" && e["state_key"] == sam_id
        })
    })
    .await;

    let sam_since = next_batch(&sync(&sam, None, 0).await);
    send_text(&alice, &room, "t2", "hello sam").await;
    sync_until(&sam, &sam_since, "alice's message on synapse", |s| {
        has_event(s, &room, is_text("hello sam"))
    })
    .await;
    send_text(&sam, &room, "t3", "hello alice").await;
    sync_until(&alice, &alice_since, "sam's message on matrix os", |s| {
        has_event(s, &room, is_text("hello alice"))
    })
    .await;
}

#[tokio::test]
async fn matrix_os_user_joins_a_synapse_room_and_they_talk() {
    let synapse = Synapse::start().await;
    let ours = start_federated().await;
    let (alice, alice_id) = Raw::new(&ours).register("alice").await;
    let (sam, _) = synapse.register("sam").await;
    for version in ["12", "10"] {
        let room = create_room(
            &sam,
            json!({ "preset": "public_chat", "room_version": version }),
        )
        .await;
        send_text(&sam, &room, "t1", "before alice").await;
        let sam_since = next_batch(&sync(&sam, None, 0).await);

        let joined = join_via(&alice, &room, &synapse.server_name).await;
        assert_eq!(
            joined.0,
            200,
            "v{version}: {}\n{}",
            joined.1,
            synapse.log_tail()
        );
        let alice_since = next_batch(&sync(&alice, None, 0).await);
        sync_until(&sam, &sam_since, "alice's join on synapse", |s| {
            has_event(s, &room, |e| {
                e["type"] == "m.room.member" && e["state_key"] == alice_id
            })
        })
        .await;

        send_text(&sam, &room, "t2", "hello alice").await;
        sync_until(&alice, &alice_since, "sam's message on matrix os", |s| {
            has_event(s, &room, is_text("hello alice"))
        })
        .await;
        send_text(&alice, &room, "t3", "hello sam").await;
        sync_until(&sam, &sam_since, "alice's message on synapse", |s| {
            has_event(s, &room, is_text("hello sam"))
        })
        .await;

        // Alice leaves and joins again, through Synapse.
        let left = crate::common::rooms::leave(&alice, &room).await;
        assert_eq!(left.0, 200, "{}", left.1);
        send_text(&sam, &room, "t4", "while alice was away").await;
        let joined = join_via(&alice, &room, &synapse.server_name).await;
        assert_eq!(joined.0, 200, "v{version} rejoin: {}", joined.1);
        send_text(&alice, &room, "t5", "alice is back").await;
        sync_until(&sam, &sam_since, "alice's message after rejoining", |s| {
            has_event(s, &room, is_text("alice is back"))
        })
        .await;
    }
}

/// Whether a sync shows an invite to `room`.
fn invited_to(sync: &Value, room: &str) -> bool {
    sync["rooms"]["invite"][room].is_object()
}

#[tokio::test]
async fn invites_cross_servers_and_can_be_accepted_or_rejected() {
    let (ours, theirs) = (start_federated().await, start_federated().await);
    let (alice, _) = Raw::new(&ours).register("alice").await;
    let (bob, bob_id) = Raw::new(&theirs).register("bob").await;
    let bob_since = next_batch(&sync(&bob, None, 0).await);

    // Accepted: Bob sees the invite with the room's name, and joins by id
    // alone (through the inviter's server).
    let room = create_room(
        &alice,
        json!({ "preset": "private_chat", "name": "Secret" }),
    )
    .await;
    let invited = alice
        .json(
            "POST",
            &format!("{V3}/rooms/{}/invite", enc(&room)),
            json!({ "user_id": bob_id }),
        )
        .await;
    expect_ok(invited, "remote invite");
    let seen = sync_until(&bob, &bob_since, "the invite on bob's server", |s| {
        invited_to(s, &room)
    })
    .await;
    let names: Vec<&Value> = seen["rooms"]["invite"][&room]["invite_state"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m.room.name")
        .collect();
    assert_eq!(names.len(), 1, "{seen}");
    assert_eq!(names[0]["content"]["name"], "Secret");
    let joined = bob
        .json("POST", &format!("{V3}/join/{}", enc(&room)), json!({}))
        .await;
    assert_eq!(joined.0, 200, "{}", joined.1);
    send_text(&bob, &room, "t1", "thanks for the invite").await;
    let (status, members) = alice
        .call(
            "GET",
            &format!("{V3}/rooms/{}/joined_members", enc(&room)),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(members["joined"][&bob_id].is_object(), "{members}");

    // Rejected: the leave goes through Alice's server and shows on both.
    let other = create_room(&alice, json!({ "preset": "private_chat" })).await;
    let invited = alice
        .json(
            "POST",
            &format!("{V3}/rooms/{}/invite", enc(&other)),
            json!({ "user_id": bob_id }),
        )
        .await;
    expect_ok(invited, "second remote invite");
    let seen = sync_until(&bob, &bob_since, "the second invite", |s| {
        invited_to(s, &other)
    })
    .await;
    let rejected = crate::common::rooms::leave(&bob, &other).await;
    assert_eq!(rejected.0, 200, "{}", rejected.1);
    sync_until(
        &bob,
        &next_batch(&seen),
        "the rejection on bob's server",
        |s| s["rooms"]["leave"][&other].is_object(),
    )
    .await;
    let (_, member) = alice
        .call(
            "GET",
            &format!(
                "{V3}/rooms/{}/state/m.room.member/{}",
                enc(&other),
                enc(&bob_id)
            ),
            None,
        )
        .await;
    assert_eq!(member["membership"], "leave", "{member}");

    // Nobody invites a user of another server who does not exist.
    let third = create_room(&alice, json!({ "preset": "private_chat" })).await;
    let nobody = format!("@nobody:{}", theirs.services.server_name);
    let refused = alice
        .json(
            "POST",
            &format!("{V3}/rooms/{}/invite", enc(&third)),
            json!({ "user_id": nobody }),
        )
        .await;
    assert_eq!(refused.0, 403, "{}", refused.1);
}

#[tokio::test]
async fn synapse_and_matrix_os_users_invite_each_other() {
    let synapse = Synapse::start().await;
    let ours = start_federated().await;
    let (alice, alice_id) = Raw::new(&ours).register("alice").await;
    let (sam, sam_id) = synapse.register("sam").await;

    // Sam on Synapse opens a DM with Alice.
    let alice_since = next_batch(&sync(&alice, None, 0).await);
    let dm = create_room(
        &sam,
        json!({ "preset": "trusted_private_chat", "is_direct": true, "invite": [alice_id] }),
    )
    .await;
    sync_until(&alice, &alice_since, "synapse's invite", |s| {
        invited_to(s, &dm)
    })
    .await;
    let joined = alice
        .json("POST", &format!("{V3}/join/{}", enc(&dm)), json!({}))
        .await;
    assert_eq!(joined.0, 200, "{}\n{}", joined.1, synapse.log_tail());
    let alice_since = next_batch(&sync(&alice, None, 0).await);
    send_text(&sam, &dm, "t1", "hi alice").await;
    sync_until(&alice, &alice_since, "sam's DM message", |s| {
        has_event(s, &dm, is_text("hi alice"))
    })
    .await;

    // Alice invites Sam to a room on Matrix OS.
    let sam_since = next_batch(&sync(&sam, None, 0).await);
    let room = create_room(&alice, json!({ "preset": "private_chat" })).await;
    let invited = alice
        .json(
            "POST",
            &format!("{V3}/rooms/{}/invite", enc(&room)),
            json!({ "user_id": sam_id }),
        )
        .await;
    assert_eq!(invited.0, 200, "{}\n{}", invited.1, synapse.log_tail());
    sync_until(&sam, &sam_since, "alice's invite on synapse", |s| {
        invited_to(s, &room)
    })
    .await;
    let joined = sam
        .json("POST", &format!("{V3}/join/{}", enc(&room)), json!({}))
        .await;
    assert_eq!(joined.0, 200, "{}\n{}", joined.1, synapse.log_tail());
    let sam_since = next_batch(&sync(&sam, None, 0).await);
    send_text(&alice, &room, "t2", "welcome sam").await;
    sync_until(&sam, &sam_since, "alice's message on synapse", |s| {
        has_event(s, &room, is_text("welcome sam"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synapse_user_dms_an_ai_user_on_matrix_os() {
    crate::common::init_logging();
    let synapse = Synapse::start().await;
    let llm = crate::common::llm::ScriptedLlm::start().await;
    let base = llm.base.clone();
    let ours = crate::common::start_federated_with(move |c| {
        crate::ai_user::with_model(c, "anthropic", base)
    })
    .await;
    let ours_name = ours.services.server_name.to_string();
    let (_alice, _) = Raw::new(&ours).register("alice").await;
    let ai = format!("@alice_ai:{ours_name}");
    let (sam, _) = synapse.register("sam").await;

    let dm = create_room(
        &sam,
        json!({ "preset": "trusted_private_chat", "is_direct": true, "invite": [ai] }),
    )
    .await;
    let since = next_batch(&sync(&sam, None, 0).await);
    sync_until(&sam, &since, "the AI joins from matrix os", |s| {
        has_event(s, &dm, |e| {
            e["type"] == "m.room.member"
                && e["state_key"] == ai
                && e["content"]["membership"] == "join"
        })
    })
    .await;
    llm.push(crate::common::llm::text(
        "Hello Sam, from Alice's assistant.",
    ));
    let since = next_batch(&sync(&sam, None, 0).await);
    send_text(&sam, &dm, "t1", "alice_ai: hello there").await;
    let seen = sync_until(&sam, &since, "the AI's answer on synapse", |s| {
        has_event(s, &dm, |e| {
            e["sender"] == ai && e["type"] == "m.room.message"
        })
    })
    .await;
    let answer = seen["rooms"]["join"][&dm]["timeline"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["sender"] == ai && e["type"] == "m.room.message")
        .unwrap()
        .clone();
    assert_eq!(
        answer["content"]["body"],
        "Hello Sam, from Alice's assistant."
    );
    // Sam is an outsider: his run had the public context and no tools.
    let asked = llm.requests();
    let system = asked[0]["system"].as_str().unwrap_or_default();
    assert!(system.contains("public profile"), "{system}");
    assert_eq!(asked[0]["tools"], json!([]));
}

#[tokio::test]
async fn a_user_leaves_a_room_of_another_server_and_is_invited_back() {
    let (ours, theirs) = (start_federated().await, start_federated().await);
    let ours_name = ours.services.server_name.to_string();
    let (alice, _) = Raw::new(&ours).register("alice").await;
    let (bob, bob_id) = Raw::new(&theirs).register("bob").await;
    let room = create_room(&alice, json!({ "preset": "public_chat", "name": "Old" })).await;
    let joined = join_via(&bob, &room, &ours_name).await;
    assert_eq!(joined.0, 200, "{}", joined.1);
    let left = crate::common::rooms::leave(&bob, &room).await;
    assert_eq!(left.0, 200, "{}", left.1);

    // While Bob's server is out, the room changes.
    let name = format!("{V3}/rooms/{}/state/m.room.name/", enc(&room));
    assert_eq!(
        alice.json("PUT", &name, json!({ "name": "New" })).await.0,
        200
    );
    let rules = format!("{V3}/rooms/{}/state/m.room.join_rules/", enc(&room));
    let invite_only = json!({ "join_rule": "invite" });
    assert_eq!(alice.json("PUT", &rules, invite_only).await.0, 200);
    send_text(&alice, &room, "t1", "while bob was away").await;

    // Invited back, Bob joins through Alice's server and sees the room as
    // it is now.
    let bob_since = next_batch(&sync(&bob, None, 0).await);
    let invited = alice
        .json(
            "POST",
            &format!("{V3}/rooms/{}/invite", enc(&room)),
            json!({ "user_id": bob_id }),
        )
        .await;
    expect_ok(invited, "invite back");
    sync_until(&bob, &bob_since, "the second invite", |s| {
        invited_to(s, &room)
    })
    .await;
    let joined = bob
        .json("POST", &format!("{V3}/join/{}", enc(&room)), json!({}))
        .await;
    assert_eq!(joined.0, 200, "{}", joined.1);
    let (status, now) = bob.call("GET", &name, None).await;
    assert_eq!((status, now["name"].as_str()), (200, Some("New")));
    let alice_since = next_batch(&sync(&alice, None, 0).await);
    send_text(&bob, &room, "t2", "back again").await;
    sync_until(&alice, &alice_since, "bob's message after rejoining", |s| {
        has_event(s, &room, is_text("back again"))
    })
    .await;
}
