//! History from before a join: a user who joins a room on another server
//! pages back with `/messages` past their join, and their server fetches
//! the older events from the room's other servers (`/backfill`).

use serde_json::{json, Value};

use crate::common::rooms::send_text;
use crate::common::synapse::Synapse;
use crate::common::{create_room, enc, start_federated, Raw, TestServer, V3};
use crate::federation_rooms::join_via;

/// Every event of `room` a client sees paging back from now, `limit` at a
/// time, newest first (at most 30 pages).
async fn page_back(client: &Raw, room: &str, limit: u32) -> Vec<Value> {
    let mut events = Vec::new();
    let mut from = String::new();
    for _ in 0..30 {
        let path = format!(
            "{V3}/rooms/{}/messages?dir=b&limit={limit}{from}",
            enc(room)
        );
        let (status, page) = client.call("GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        events.extend(page["chunk"].as_array().cloned().unwrap_or_default());
        match page["end"].as_str() {
            Some(end) => from = format!("&from={}", enc(end)),
            None => return events,
        }
    }
    panic!("paging back did not end");
}

/// The bodies of the text messages among `events`, oldest first.
fn texts_oldest_first(events: &[Value]) -> Vec<String> {
    let mut texts: Vec<String> = events
        .iter()
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect();
    texts.reverse();
    texts
}

fn has_create(events: &[Value]) -> bool {
    events.iter().any(|e| e["type"] == "m.room.create")
}

/// Two federating servers, Alice on the first in a public room of hers
/// with the history visibility given, Bob on the second: the servers (kept
/// running), the first one's name, Alice's client and id, Bob's client and
/// the room.
async fn two_servers_and_a_room(
    visibility: &str,
) -> ((TestServer, TestServer), String, (Raw, String), Raw, String) {
    let (ours, theirs) = (start_federated().await, start_federated().await);
    let ours_name = ours.services.server_name.to_string();
    let alice = Raw::new(&ours).register("alice").await;
    let (bob, _) = Raw::new(&theirs).register("bob").await;
    let room = create_room(
        &alice.0,
        json!({
            "preset": "public_chat",
            "initial_state": [{
                "type": "m.room.history_visibility", "state_key": "",
                "content": { "history_visibility": visibility }
            }]
        }),
    )
    .await;
    ((ours, theirs), ours_name, alice, bob, room)
}

#[tokio::test]
async fn a_user_pages_back_past_their_join_into_history_from_another_server() {
    let (ours, theirs) = (start_federated().await, start_federated().await);
    let ours_name = ours.services.server_name.to_string();
    let (alice, _) = Raw::new(&ours).register("alice").await;
    let (bob, _) = Raw::new(&theirs).register("bob").await;
    let room = create_room(&alice, json!({ "preset": "public_chat" })).await;
    let sent: Vec<String> = (0..25).map(|i| format!("old {i}")).collect();
    for (i, text) in sent.iter().enumerate() {
        send_text(&alice, &room, &format!("t{i}"), text).await;
    }
    let joined = join_via(&bob, &room, &ours_name).await;
    assert_eq!(joined.0, 200, "{}", joined.1);

    let events = page_back(&bob, &room, 7).await;
    assert_eq!(texts_oldest_first(&events), sent);
    assert!(
        has_create(&events),
        "the room's start is reached: {events:?}"
    );
    // Each event once, in the order the room has them.
    let ids: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    let unique: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "an event came twice: {ids:?}");

    // Paged again, the history is served from this server's own store.
    let again = page_back(&bob, &room, 50).await;
    assert_eq!(texts_oldest_first(&again), sent);

    // And it is searchable there like the rest.
    let query = json!({ "search_categories": { "room_events": { "search_term": "old" } } });
    let mut count = 0;
    for _ in 0..50 {
        let (status, found) = bob
            .json("POST", &format!("{V3}/search"), query.clone())
            .await;
        assert_eq!(status, 200, "{found}");
        count = found["search_categories"]["room_events"]["count"]
            .as_u64()
            .unwrap_or(0);
        if count == 25 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(count, 25, "every fetched message is found");
}

#[tokio::test]
async fn history_fetched_from_a_peer_keeps_the_rooms_visibility() {
    let (_servers, ours_name, (alice, _), bob, room) = two_servers_and_a_room("joined").await;
    for i in 0..12 {
        send_text(&alice, &room, &format!("h{i}"), &format!("hidden {i}")).await;
    }
    let joined = join_via(&bob, &room, &ours_name).await;
    assert_eq!(joined.0, 200, "{}", joined.1);
    send_text(&alice, &room, "a", "after bob joined").await;

    // Small pages: each backfill brings a few events whose oldest builds
    // on events Bob's server does not have, so the room's state there
    // (history visible to members only from their join) must come from the
    // peer, not be guessed from the events' auth events.
    let events = page_back(&bob, &room, 4).await;
    let messages: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .collect();
    assert_eq!(
        messages.len(),
        1,
        "only the message after the join is Bob's to see: {messages:?}"
    );
    assert_eq!(messages[0]["content"]["body"], "after bob joined");
    // Alice, on the room's own server, still sees everything.
    let all = page_back(&alice, &room, 50).await;
    assert_eq!(texts_oldest_first(&all).len(), 13);
}

#[tokio::test]
async fn members_at_a_token_in_fetched_history_are_the_members_then() {
    let (_servers, ours_name, (alice, alice_id), bob, room) =
        two_servers_and_a_room("world_readable").await;
    for i in 0..10 {
        send_text(&alice, &room, &format!("m{i}"), &format!("message {i}")).await;
    }
    let joined = join_via(&bob, &room, &ours_name).await;
    assert_eq!(joined.0, 200, "{}", joined.1);

    // Two pages back: the second ends in history fetched from Alice's server.
    let page = |from: String| {
        let bob = &bob;
        let path = format!("{V3}/rooms/{}/messages?dir=b&limit=4{from}", enc(&room));
        async move {
            let (status, page) = bob.call("GET", &path, None).await;
            assert_eq!(status, 200, "{page}");
            page
        }
    };
    let first = page(String::new()).await;
    let end = first["end"].as_str().expect("more history").to_owned();
    let second = page(format!("&from={}", enc(&end))).await;
    let bodies: Vec<&str> = second["chunk"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["content"]["body"].as_str())
        .collect();
    assert!(!bodies.is_empty(), "the second page is history: {second}");
    let at = second["end"].as_str().expect("more history");
    let path = format!("{V3}/rooms/{}/members?at={}", enc(&room), enc(at));
    let (status, members) = bob.call("GET", &path, None).await;
    assert_eq!(status, 200, "{members}");
    let joined: Vec<&str> = members["chunk"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["content"]["membership"] == "join")
        .filter_map(|m| m["state_key"].as_str())
        .collect();
    assert_eq!(joined, vec![alice_id.as_str()], "{members}");
}

#[tokio::test]
async fn a_matrix_os_user_pages_back_into_a_synapse_rooms_history() {
    let synapse = Synapse::start().await;
    let ours = start_federated().await;
    let (alice, _) = Raw::new(&ours).register("alice").await;
    let (sam, _) = synapse.register("sam").await;
    let room = create_room(&sam, json!({ "preset": "public_chat" })).await;
    let sent: Vec<String> = (0..12).map(|i| format!("before alice {i}")).collect();
    for (i, text) in sent.iter().enumerate() {
        send_text(&sam, &room, &format!("t{i}"), text).await;
    }
    let joined = join_via(&alice, &room, &synapse.server_name).await;
    assert_eq!(joined.0, 200, "{}\n{}", joined.1, synapse.log_tail());

    let events = page_back(&alice, &room, 5).await;
    assert_eq!(texts_oldest_first(&events), sent, "{}", synapse.log_tail());
    assert!(
        has_create(&events),
        "the room's start is reached: {events:?}"
    );
}

#[tokio::test]
async fn other_servers_get_events_from_before_they_could_see_them_redacted() {
    use ruma::api::federation::backfill::get_backfill::v1 as backfill;
    use ruma::api::federation::event::get_event::v1 as get_event;
    use ruma::{OwnedEventId, OwnedRoomId, ServerName, UInt};

    let ((_ours, theirs), ours_name, (alice, _), bob, room) =
        two_servers_and_a_room("joined").await;
    let secret = send_text(&alice, &room, "s", "before bob joined").await;
    let joined = join_via(&bob, &room, &ours_name).await;
    assert_eq!(joined.0, 200, "{}", joined.1);
    let open = send_text(&alice, &room, "o", "after bob joined").await;

    let client = &theirs.services.federation.client;
    let destination = ServerName::parse(&ours_name).unwrap();
    let room_id = OwnedRoomId::try_from(room.as_str()).unwrap();
    let content_of = |pdu: &serde_json::value::RawValue| -> Value {
        serde_json::from_str::<Value>(pdu.get()).unwrap()["content"].clone()
    };
    let event = |id: &str| get_event::Request::new(OwnedEventId::try_from(id).unwrap());
    let hidden = client.send(&destination, event(&secret)).await.unwrap();
    assert_eq!(
        content_of(&hidden.pdu),
        json!({}),
        "redacted: {}",
        hidden.pdu.get()
    );
    let shown = client.send(&destination, event(&open)).await.unwrap();
    assert_eq!(content_of(&shown.pdu)["body"], "after bob joined");

    let history = backfill::Request::new(
        room_id,
        vec![OwnedEventId::try_from(open.as_str()).unwrap()],
        UInt::from(50u32),
    );
    let page = client.send(&destination, history).await.unwrap();
    let bodies: Vec<Value> = page
        .pdus
        .iter()
        .map(|pdu| serde_json::from_str::<Value>(pdu.get()).unwrap())
        .filter(|pdu| pdu["type"] == "m.room.message")
        .map(|pdu| pdu["content"].clone())
        .collect();
    assert_eq!(
        bodies.len(),
        2,
        "both messages are in the history: {bodies:?}"
    );
    assert!(bodies.contains(&json!({})), "{bodies:?}");
    assert!(
        bodies.iter().any(|c| c["body"] == "after bob joined"),
        "{bodies:?}"
    );
    assert!(
        !bodies.iter().any(|c| c["body"] == "before bob joined"),
        "{bodies:?}"
    );
}

#[tokio::test]
async fn jumping_to_a_date_before_the_join_fetches_that_history_from_peers() {
    let (ours, theirs) = (start_federated().await, start_federated().await);
    let ours_name = ours.services.server_name.to_string();
    let (alice, _) = Raw::new(&ours).register("alice").await;
    let (bob, _) = Raw::new(&theirs).register("bob").await;
    let room = create_room(&alice, json!({ "preset": "public_chat" })).await;
    let mut last_early = String::new();
    for i in 0..5 {
        last_early = send_text(&alice, &room, &format!("e{i}"), &format!("early {i}")).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let moment: u64 = ruma::MilliSecondsSinceUnixEpoch::now().get().into();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    // More than one page of history lies between the join and the moment.
    for i in 0..150 {
        send_text(&alice, &room, &format!("l{i}"), &format!("late {i}")).await;
    }
    let joined = join_via(&bob, &room, &ours_name).await;
    assert_eq!(joined.0, 200, "{}", joined.1);

    let path = format!(
        "/_matrix/client/v1/rooms/{}/timestamp_to_event?ts={moment}&dir=b",
        enc(&room)
    );
    let (status, found) = bob.call("GET", &path, None).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["event_id"], json!(last_early), "{found}");
    // The event is now in Bob's server's timeline: he can read around it.
    let context = format!(
        "{V3}/rooms/{}/context/{}?limit=2",
        enc(&room),
        enc(&last_early)
    );
    let (status, around) = bob.call("GET", &context, None).await;
    assert_eq!(status, 200, "{around}");
    assert_eq!(around["event"]["content"]["body"], "early 4");

    // Before the room was made there is nothing, and no endless asking.
    let path = format!(
        "/_matrix/client/v1/rooms/{}/timestamp_to_event?ts=1000&dir=b",
        enc(&room)
    );
    let (status, none) = bob.call("GET", &path, None).await;
    assert_eq!(status, 404, "{none}");
}
