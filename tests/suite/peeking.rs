//! Peeking via `/sync` (MSC2753): a device peeks into a world-readable
//! room with `peek_room`, follows it under `rooms.peek` of its own syncs,
//! and sees it in `leave` once the peek ends (unpeek, the room closing);
//! joining moves it to `join`. Refusals as the MSC gives them.

use serde_json::{json, Value};

use crate::common::rooms::{join, send_text};
use crate::common::{create_room, enc, expect_error, expect_ok, start, start_with, sync, Raw, V3};

const PEEK: &str = "/_matrix/client/unstable/org.matrix.msc2753/peek_room";

fn unpeek_path(room: &str) -> String {
    format!(
        "/_matrix/client/unstable/org.matrix.msc2753/rooms/{}/unpeek",
        enc(room)
    )
}

/// A public, world-readable room named `name` created by `creator`.
async fn world_readable_room(creator: &Raw, name: &str) -> String {
    create_room(
        creator,
        json!({
            "name": name,
            "preset": "public_chat",
            "initial_state": [{
                "type": "m.room.history_visibility",
                "state_key": "",
                "content": { "history_visibility": "world_readable" }
            }]
        }),
    )
    .await
}

fn bodies(section: &Value) -> Vec<String> {
    crate::common::rooms::text_bodies(&section["timeline"]["events"])
}

fn has_state(section: &Value, kind: &str) -> bool {
    section["state"]["events"]
        .as_array()
        .is_some_and(|events| events.iter().any(|e| e["type"] == kind))
}

fn next_batch(body: &Value) -> String {
    body["next_batch"].as_str().expect("next_batch").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_follows_a_peeked_room_in_its_sync_until_it_unpeeks() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("pk_alice").await;
    let (bob, _) = anon.register("pk_bob").await;
    let bob_phone = anon.login("pk_bob").await;
    let room = world_readable_room(&alice, "Peekable").await;
    send_text(&alice, &room, "p1", "before the peek").await;

    let versions = expect_ok(
        anon.call("GET", "/_matrix/client/versions", None).await,
        "versions",
    );
    assert_eq!(
        versions["unstable_features"]["org.matrix.msc2753"], true,
        "{versions}"
    );

    let first = sync(&bob, None, 0).await;
    let phone_since = next_batch(&sync(&bob_phone, None, 0).await);
    let peeked = expect_ok(
        bob.json("POST", PEEK, json!({ "room": room })).await,
        "peek",
    );
    assert_eq!(peeked["room_id"], room.as_str());
    let expiry = peeked["peek_expiry_ts"].as_u64().expect("peek_expiry_ts");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(expiry > now, "the peek lapses in the future: {peeked}");

    // The next sync has the room under `peek`, with its whole state.
    let body = sync(&bob, Some(&next_batch(&first)), 0).await;
    let section = &body["rooms"]["peek"][&room];
    assert!(
        has_state(section, "m.room.create"),
        "the room's state: {body}"
    );
    assert_eq!(bodies(section), ["before the peek"], "{body}");
    assert!(
        body["rooms"]["join"].get(&room).is_none(),
        "not joined: {body}"
    );

    // New events arrive in later syncs; nothing new, no entry.
    let since = next_batch(&body);
    send_text(&alice, &room, "p2", "during the peek").await;
    let body = sync(&bob, Some(&since), 5000).await;
    let section = &body["rooms"]["peek"][&room];
    assert_eq!(bodies(section), ["during the peek"], "{body}");
    assert!(
        !has_state(section, "m.room.create"),
        "no state resent: {body}"
    );
    let since = next_batch(&body);
    let quiet = sync(&bob, Some(&since), 0).await;
    assert!(quiet["rooms"]["peek"].get(&room).is_none(), "{quiet}");

    // Renewing keeps the peek as it is: no second full state.
    let renewed = expect_ok(
        bob.json("POST", PEEK, json!({ "room": room })).await,
        "renew",
    );
    assert!(renewed["peek_expiry_ts"].as_u64().expect("expiry") >= expiry);
    send_text(&alice, &room, "p3", "after renewing").await;
    let body = sync(&bob, Some(&next_batch(&quiet)), 5000).await;
    let section = &body["rooms"]["peek"][&room];
    assert_eq!(bodies(section), ["after renewing"], "{body}");
    assert!(!has_state(section, "m.room.create"), "{body}");

    // A peek is the device's own: the phone sees nothing of the room.
    let phone = sync(&bob_phone, Some(&phone_since), 0).await;
    assert!(!phone.to_string().contains(&room), "{phone}");

    // Unpeeking puts the room in `leave` with what happened meanwhile.
    let since = next_batch(&body);
    send_text(&alice, &room, "p4", "just before the unpeek").await;
    expect_ok(
        bob.json("POST", &unpeek_path(&room), json!({})).await,
        "unpeek",
    );
    let body = sync(&bob, Some(&since), 0).await;
    assert!(body["rooms"]["peek"].get(&room).is_none(), "{body}");
    let left = &body["rooms"]["leave"][&room];
    assert_eq!(bodies(left), ["just before the unpeek"], "{body}");
    let res = bob.json("POST", &unpeek_path(&room), json!({})).await;
    expect_error(&res, 400, "M_BAD_STATE", "unpeeking twice");

    // Then the room is gone from the device's syncs.
    send_text(&alice, &room, "p5", "nobody peeks").await;
    let after = sync(&bob, Some(&next_batch(&body)), 0).await;
    assert!(!after.to_string().contains(&room), "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peek_ends_when_the_room_closes_and_gives_way_to_a_join() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("pe_alice").await;
    let (bob, _) = anon.register("pe_bob").await;
    let closing = world_readable_room(&alice, "Closing").await;
    let joining = world_readable_room(&alice, "Joining").await;
    let since = next_batch(&sync(&bob, None, 0).await);
    for room in [&closing, &joining] {
        expect_ok(
            bob.json("POST", PEEK, json!({ "room": room })).await,
            "peek",
        );
    }
    let body = sync(&bob, Some(&since), 0).await;
    assert!(body["rooms"]["peek"].get(&closing).is_some(), "{body}");
    assert!(body["rooms"]["peek"].get(&joining).is_some(), "{body}");

    // The room stops being world-readable: the peek ends.
    let path = format!(
        "{V3}/rooms/{}/state/m.room.history_visibility/",
        enc(&closing)
    );
    expect_ok(
        alice
            .json("PUT", &path, json!({ "history_visibility": "shared" }))
            .await,
        "close the room",
    );
    let body = sync(&bob, Some(&next_batch(&body)), 0).await;
    assert!(body["rooms"]["peek"].get(&closing).is_none(), "{body}");
    assert!(body["rooms"]["leave"].get(&closing).is_some(), "{body}");
    let res = bob.json("POST", PEEK, json!({ "room": closing })).await;
    expect_error(&res, 403, "M_FORBIDDEN", "peeking a closed room");

    // Joining a peeked room moves it to `join`; the peek is over.
    join(&bob, &joining).await;
    let body = sync(&bob, Some(&next_batch(&body)), 0).await;
    assert!(body["rooms"]["join"].get(&joining).is_some(), "{body}");
    assert!(body["rooms"]["peek"].get(&joining).is_none(), "{body}");
    assert!(body["rooms"]["leave"].get(&joining).is_none(), "{body}");
    let res = bob.json("POST", &unpeek_path(&joining), json!({})).await;
    expect_error(&res, 400, "M_BAD_STATE", "unpeeking a joined room");
    let res = bob.json("POST", PEEK, json!({ "room": joining })).await;
    expect_error(&res, 400, "M_BAD_STATE", "peeking a joined room");
}

#[tokio::test]
async fn peek_requests_get_the_mscs_errors() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("px_alice").await;
    let (bob, _) = anon.register("px_bob").await;
    let private = create_room(&alice, json!({ "preset": "public_chat" })).await;
    // (who asks, body, status, errcode, what)
    let cases = [
        (
            &bob,
            json!({ "room": private }).to_string(),
            403,
            "M_FORBIDDEN",
            "not world-readable",
        ),
        (
            &bob,
            json!({ "room": "!nowhere:localhost" }).to_string(),
            404,
            "M_NOT_FOUND",
            "unknown room",
        ),
        (
            &bob,
            json!({ "room": "#nowhere:localhost" }).to_string(),
            404,
            "M_NOT_FOUND",
            "unknown alias",
        ),
        (&bob, "{}".to_owned(), 400, "M_MISSING_PARAM", "no room"),
        (
            &bob,
            json!({ "room": 5 }).to_string(),
            400,
            "M_BAD_JSON",
            "room not a string",
        ),
        (
            &bob,
            json!({ "room": "lobby" }).to_string(),
            400,
            "M_INVALID_PARAM",
            "room not an id",
        ),
        (
            &bob,
            json!({ "room": private, "servers": "x" }).to_string(),
            400,
            "M_BAD_JSON",
            "servers not a list",
        ),
        (
            &alice,
            json!({ "room": private }).to_string(),
            400,
            "M_BAD_STATE",
            "already joined",
        ),
        (
            &anon,
            json!({ "room": private }).to_string(),
            401,
            "M_MISSING_TOKEN",
            "no token",
        ),
        (&bob, "{not json".to_owned(), 400, "M_NOT_JSON", "not JSON"),
    ];
    for (who, body, status, errcode, what) in cases {
        let res = who.call("POST", PEEK, Some(&body)).await;
        expect_error(&res, status, errcode, what);
    }
    let res = bob.json("POST", &unpeek_path(&private), json!({})).await;
    expect_error(&res, 400, "M_BAD_STATE", "unpeeking a room not peeked");
    let res = bob.json("POST", &unpeek_path("lobby"), json!({})).await;
    expect_error(&res, 400, "M_INVALID_PARAM", "unpeeking no room id");
    // Nothing was started by the refusals.
    let body = sync(&bob, None, 0).await;
    assert!(body["rooms"].get("peek").is_none(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_peeks_through_its_sync() {
    let server = start_with(|c| c.allow_guest_access = true).await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("pg_alice").await;
    let room = world_readable_room(&alice, "Open to all").await;
    send_text(&alice, &room, "g1", "hello visitors").await;
    let guest = expect_ok(
        anon.json("POST", &format!("{V3}/register?kind=guest"), json!({}))
            .await,
        "guest registration",
    );
    let guest = anon.with_token(guest["access_token"].as_str().expect("token"));
    let since = next_batch(&sync(&guest, None, 0).await);
    expect_ok(
        guest.json("POST", PEEK, json!({ "room": room })).await,
        "guest peek",
    );
    let body = sync(&guest, Some(&since), 0).await;
    assert_eq!(
        bodies(&body["rooms"]["peek"][&room]),
        ["hello visitors"],
        "{body}"
    );
    expect_ok(
        guest.json("POST", &unpeek_path(&room), json!({})).await,
        "guest unpeek",
    );
}
