//! The first versions of `send_join` and `send_leave`, as older servers
//! call them: the same work as v2, answered as `[200, body]`.

use serde_json::{json, Value};

use crate::common::rooms::sync_until;
use crate::common::{create_room, enc, next_batch, start_federated, sync, Raw};
use crate::federation_adversarial::Peer;
use crate::federation_rooms::has_event;

/// `make_<kind>` for `user`, signed by the peer: the event's id and JSON.
async fn made(peer: &Peer<'_>, kind: &str, room: &str, user: &str) -> (String, Value) {
    let query = if kind == "join" {
        "?ver=12&ver=11&ver=10"
    } else {
        ""
    };
    let path = format!(
        "/_matrix/federation/v1/make_{kind}/{}/{}{query}",
        enc(room),
        enc(user)
    );
    let (status, template) = peer.get(&path).await;
    assert_eq!(status, 200, "make_{kind}: {template}");
    let mut event: ruma::CanonicalJsonObject =
        serde_json::from_value(template["event"].clone()).unwrap();
    let id = peer.sign(room, &mut event);
    (id, serde_json::to_value(event).unwrap())
}

#[tokio::test]
async fn servers_join_and_leave_through_the_first_versions_of_the_endpoints() {
    let (ours, theirs) = (start_federated().await, start_federated().await);
    let (alice, _) = Raw::new(&ours).register("alice").await;
    let (_, carol_id) = Raw::new(&theirs).register("carol").await;
    let room = create_room(&alice, json!({ "preset": "public_chat", "name": "Old" })).await;
    let since = next_batch(&sync(&alice, None, 0).await);
    let peer = Peer {
        us: &theirs,
        target: &ours,
    };

    let (join_id, join) = made(&peer, "join", &room, &carol_id).await;
    let path = format!(
        "/_matrix/federation/v1/send_join/{}/{}",
        enc(&room),
        enc(&join_id)
    );
    let body = serde_json::to_vec(&join).unwrap();
    let (status, answer) = peer.request(http::Method::PUT, &path, body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[0], 200, "v1 shape: {answer}");
    let state = answer[1]["state"].as_array().expect("state");
    assert!(
        state.iter().any(|e| e["type"] == "m.room.name"),
        "the room's state: {answer}"
    );
    assert!(answer[1]["auth_chain"]
        .as_array()
        .is_some_and(|c| !c.is_empty()));
    let is_member = |membership: &'static str| {
        let carol = carol_id.clone();
        move |e: &Value| {
            e["type"] == "m.room.member"
                && e["state_key"] == carol.as_str()
                && e["content"]["membership"] == membership
        }
    };
    let seen = sync_until(&alice, &since, "carol's join", |s| {
        has_event(s, &room, is_member("join"))
    })
    .await;

    let (leave_id, leave) = made(&peer, "leave", &room, &carol_id).await;
    let path = format!(
        "/_matrix/federation/v1/send_leave/{}/{}",
        enc(&room),
        enc(&leave_id)
    );
    let body = serde_json::to_vec(&leave).unwrap();
    let answer = peer.request(http::Method::PUT, &path, body).await;
    assert_eq!(answer, (200, json!([200, {}])));
    sync_until(&alice, &next_batch(&seen), "carol's leave", |s| {
        has_event(s, &room, is_member("leave"))
    })
    .await;

    // A v1 join for an event that is no join is refused as in v2.
    let path = format!(
        "/_matrix/federation/v1/send_join/{}/{}",
        enc(&room),
        enc(&leave_id)
    );
    let (status, _) = peer
        .request(
            http::Method::PUT,
            &path,
            serde_json::to_vec(&leave).unwrap(),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn an_invite_comes_through_the_first_version_of_the_endpoint() {
    use matrixos::rooms::send::EventDraft;
    use ruma::events::StateEventType;

    let (ours, theirs) = (start_federated().await, start_federated().await);
    let (alice, alice_id) = Raw::new(&ours).register("alice").await;
    let (bob, bob_id) = Raw::new(&theirs).register("bob").await;
    let room = create_room(&bob, json!({ "room_version": "1", "name": "Vintage" })).await;
    let since = next_batch(&sync(&alice, None, 0).await);

    // Bob's server builds and signs the invite as an old server would send
    // it: the event itself as the body, stripped state in `unsigned`.
    let draft = EventDraft::state(
        StateEventType::RoomMember,
        alice_id.clone(),
        json!({ "membership": "invite" }),
    );
    let (_, mut event) = theirs
        .services
        .rooms
        .build_unstored(
            &ruma::UserId::parse(&bob_id).unwrap(),
            &ruma::RoomId::parse(&room).unwrap(),
            draft,
        )
        .await
        .unwrap();
    let event_id = event["event_id"]
        .as_str()
        .expect("a v1 event carries its id")
        .to_owned();
    let stripped = json!({ "invite_room_state": [
        { "type": "m.room.name", "state_key": "", "sender": bob_id, "content": { "name": "Vintage" } }
    ] });
    event.insert(
        "unsigned".to_owned(),
        serde_json::from_value(stripped).unwrap(),
    );
    let peer = Peer {
        us: &theirs,
        target: &ours,
    };
    let path = format!(
        "/_matrix/federation/v1/invite/{}/{}",
        enc(&room),
        enc(&event_id)
    );
    let (status, answer) = peer
        .request(
            http::Method::PUT,
            &path,
            serde_json::to_vec(&event).unwrap(),
        )
        .await;
    assert_eq!((status, &answer[0]), (200, &json!(200)), "{answer}");
    let signers = answer[1]["event"]["signatures"]
        .as_object()
        .expect("signatures");
    assert!(
        signers.contains_key(ours.services.server_name.as_str()),
        "countersigned: {answer}"
    );

    // Alice sees the invite, with the room's name.
    sync_until(&alice, &since, "the invite", |s| {
        s["rooms"]["invite"][&room]["invite_state"]["events"]
            .as_array()
            .is_some_and(|events| {
                events
                    .iter()
                    .any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Vintage")
            })
    })
    .await;
}
