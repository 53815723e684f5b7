//! Three Matrix OS servers share one room: joins, power changes, kicks,
//! bans, state and messages converge on all three; one of them (the real
//! binary in a child process) is killed with SIGKILL mid-conversation,
//! restarted later, and catches up, with nothing lost on any side.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{json, Value};

use super::federation_rooms::join_via;
use crate::common::process::ServerProcess;
use crate::common::rooms::send_text;
use crate::common::{create_room, enc, expect_ok, start_federated, Raw, V3};

/// A server's view of a room: its state (type and state key to event id)
/// and the bodies of the messages in its timeline.
#[derive(Debug, PartialEq)]
struct View {
    state: BTreeMap<(String, String), String>,
    messages: BTreeSet<String>,
}

async fn view(client: &Raw, room: &str) -> View {
    let state = state_events(client, room)
        .await
        .into_iter()
        .map(|(key, e)| (key, e["event_id"].as_str().unwrap_or_default().to_owned()))
        .collect();
    let (status, page) = client
        .call(
            "GET",
            &format!("{V3}/rooms/{}/messages?dir=b&limit=200", enc(room)),
            None,
        )
        .await;
    assert_eq!(status, 200, "messages: {page}");
    let messages = page["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect();
    View { state, messages }
}

/// Waits (bounded) until every client sees the same state and the same
/// messages, all of `expected` among them; returns that view.
async fn converged(clients: &[&Raw], room: &str, expected: &[&str]) -> View {
    let mut views = Vec::new();
    for _ in 0..80 {
        views.clear();
        for client in clients {
            views.push(view(client, room).await);
        }
        let complete = expected
            .iter()
            .all(|body| views[0].messages.contains(*body));
        if complete && views.iter().all(|v| *v == views[0]) {
            return views.swap_remove(0);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the servers never converged on {expected:?}: {views:#?}");
}

fn membership(view: &View, state: &BTreeMap<(String, String), Value>, user: &str) -> String {
    assert!(view
        .state
        .contains_key(&("m.room.member".to_owned(), user.to_owned())));
    state[&("m.room.member".to_owned(), user.to_owned())]["membership"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The room's state events as `client`'s server has them, by type and
/// state key.
async fn state_events(client: &Raw, room: &str) -> BTreeMap<(String, String), Value> {
    let (status, state) = client
        .call("GET", &format!("{V3}/rooms/{}/state", enc(room)), None)
        .await;
    assert_eq!(status, 200, "state: {state}");
    state
        .as_array()
        .expect("state events")
        .iter()
        .map(|e| {
            let key = (
                e["type"].as_str().unwrap_or_default().to_owned(),
                e["state_key"].as_str().unwrap_or_default().to_owned(),
            );
            (key, e.clone())
        })
        .collect()
}

/// The contents of the room's state as `client`'s server has it.
async fn state_contents(client: &Raw, room: &str) -> BTreeMap<(String, String), Value> {
    state_events(client, room)
        .await
        .into_iter()
        .map(|(key, e)| (key, e["content"].clone()))
        .collect()
}

async fn put_state(client: &Raw, room: &str, kind: &str, content: Value) {
    let path = format!("{V3}/rooms/{}/state/{kind}/", enc(room));
    expect_ok(client.json("PUT", &path, content).await, kind);
}

async fn moderate(client: &Raw, room: &str, action: &str, user: &str) {
    let path = format!("{V3}/rooms/{}/{action}", enc(room));
    expect_ok(
        client.json("POST", &path, json!({ "user_id": user })).await,
        action,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_converge_and_one_killed_mid_conversation_catches_up() {
    let (a, b) = (start_federated().await, start_federated().await);
    let mut c = ServerProcess::start_federated().await;
    let a_name = a.services.server_name.to_string();
    let (alice, _) = Raw::new(&a).register("alice").await;
    let (bob, bob_id) = Raw::new(&b).register("bob").await;
    let (dan, dan_id) = Raw::new(&b).register("dan").await;
    let (carol, carol_id) = c.client().register("carol").await;
    let (eve, eve_id) = c.client().register("eve").await;

    let room = create_room(&alice, json!({ "preset": "public_chat", "name": "Three" })).await;
    // A server sends an event only to the servers it knows to be in the
    // room (as Synapse does): once every server knows the first joins,
    // Dan's and Eve's reach all three. (One a server missed would only
    // come with a later event naming it.)
    for (pair, joiners) in [
        [(&bob, "bob"), (&carol, "carol")],
        [(&dan, "dan"), (&eve, "eve")],
    ]
    .iter()
    .enumerate()
    {
        for (client, who) in joiners {
            let joined = join_via(client, &room, &a_name).await;
            assert_eq!(joined.0, 200, "{who} joins (pair {pair}): {}", joined.1);
        }
        converged(&[&alice, &bob, &carol], &room, &[]).await;
    }
    send_text(&alice, &room, "a1", "a1").await;
    send_text(&bob, &room, "b1", "b1").await;
    send_text(&carol, &room, "c1", "c1").await;
    converged(&[&alice, &bob, &carol], &room, &["a1", "b1", "c1"]).await;

    // Bob becomes a moderator on Alice's word; on his own server he then
    // kicks Dan, and Alice bans Eve.
    let mut levels = state_contents(&alice, &room).await
        [&("m.room.power_levels".to_owned(), String::new())]
        .clone();
    levels["users"][&bob_id] = json!(50);
    put_state(&alice, &room, "m.room.power_levels", levels).await;
    converged(&[&alice, &bob, &carol], &room, &[]).await;
    moderate(&bob, &room, "kick", &dan_id).await;
    moderate(&alice, &room, "ban", &eve_id).await;
    send_text(&carol, &room, "c2", "c2").await;
    let settled = converged(&[&alice, &bob, &carol], &room, &["c2"]).await;
    let contents = state_contents(&carol, &room).await;
    assert_eq!(membership(&settled, &contents, &dan_id), "leave");
    assert_eq!(membership(&settled, &contents, &eve_id), "ban");
    assert_eq!(membership(&settled, &contents, &carol_id), "join");
    assert_eq!(
        contents[&("m.room.power_levels".to_owned(), String::new())]["users"][&bob_id],
        json!(50)
    );

    // Carol speaks and her server dies at once (SIGKILL); the other two
    // go on talking and change the topic while it is down.
    send_text(&carol, &room, "c3", "c3 just before the crash").await;
    c.kill9();
    for n in 0..5 {
        send_text(
            &alice,
            &room,
            &format!("a-down-{n}"),
            &format!("a-down-{n}"),
        )
        .await;
        send_text(&bob, &room, &format!("b-down-{n}"), &format!("b-down-{n}")).await;
    }
    put_state(
        &alice,
        &room,
        "m.room.topic",
        json!({ "topic": "while c was down" }),
    )
    .await;

    // Carol's server comes back; it receives what it missed, and what it
    // acknowledged before the crash reaches the others.
    c.restart().await;
    send_text(&carol, &room, "c4", "c4 after the restart").await;
    let mut expected = vec!["c3 just before the crash", "c4 after the restart"];
    let down: Vec<String> = (0..5)
        .flat_map(|n| [format!("a-down-{n}"), format!("b-down-{n}")])
        .collect();
    expected.extend(down.iter().map(String::as_str));
    let last = converged(&[&alice, &bob, &carol], &room, &expected).await;
    let contents = state_contents(&carol, &room).await;
    assert_eq!(
        contents[&("m.room.topic".to_owned(), String::new())]["topic"],
        json!("while c was down")
    );
    assert_eq!(membership(&last, &contents, &carol_id), "join");
    assert_eq!(last.messages.len(), 6 + 10, "{:?}", last.messages);
}
