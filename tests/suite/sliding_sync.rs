//! Simplified sliding sync (MSC4186) over raw HTTP: lists ordered by
//! activity and cut to ranges, rooms caught up without a gap after being
//! out of range, positions that survive a retry, `M_UNKNOWN_POS`, invites,
//! filters, subscriptions, extensions (to-device exactly once, e2ee counts,
//! account data, receipts, typing), long-polling, bad input, and the switch
//! that turns it off.

use serde_json::{json, Value};

use crate::common::rooms::{invite, join, send_text};
use crate::common::{create_room, enc, expect_error, expect_ok, start, start_with, Raw, V3};

const PATH: &str = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync";

async fn ss(raw: &Raw, pos: Option<&str>, timeout_ms: u64, body: &Value) -> (u16, Value) {
    let mut path = format!("{PATH}?timeout={timeout_ms}");
    if let Some(pos) = pos {
        path.push_str(&format!("&pos={}", enc(pos)));
    }
    raw.json("POST", &path, body.clone()).await
}

async fn ss_ok(raw: &Raw, pos: Option<&str>, body: &Value) -> Value {
    expect_ok(ss(raw, pos, 0, body).await, "sliding sync")
}

fn pos(answer: &Value) -> String {
    answer["pos"].as_str().expect("pos").to_owned()
}

fn list(range_end: u64, limit: u64) -> Value {
    json!({
        "conn_id": "room-list",
        "lists": { "all": {
            "ranges": [[0, range_end]],
            "timeline_limit": limit,
            "required_state": [["m.room.name", ""], ["m.room.member", "$LAZY"],
                               ["m.room.member", "$ME"], ["m.room.create", ""]],
        } },
    })
}

fn bodies(room: &Value) -> Vec<String> {
    crate::common::rooms::text_bodies(&room["timeline"])
}

fn state_types(room: &Value) -> Vec<(String, String)> {
    room["required_state"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| {
                    let kind = e["type"].as_str().unwrap_or_default().to_owned();
                    (kind, e["state_key"].as_str().unwrap_or_default().to_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn lists_order_by_activity_and_rooms_catch_up_without_a_gap() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("ss_alice").await;
    let (bob, bob_id) = raw.register("ss_bob").await;
    // Rooms the user has from the start (their AI's).
    let base = ss_ok(&alice, None, &list(0, 0)).await["lists"]["all"]["count"]
        .as_u64()
        .expect("count");
    let versions = expect_ok(raw.call("GET", "/_matrix/client/versions", None).await, "v");
    assert_eq!(
        versions["unstable_features"]["org.matrix.simplified_msc3575"],
        json!(true)
    );
    let older = create_room(&alice, json!({ "name": "Older" })).await;
    let newer = create_room(&alice, json!({ "preset": "public_chat" })).await;
    expect_ok(join(&bob, &newer).await, "bob joins");
    send_text(&bob, &newer, "n1", "hello newer").await;

    // First answer: only the most recently active room fits the range.
    let first = ss_ok(&alice, None, &list(0, 5)).await;
    assert_eq!(first["lists"]["all"]["count"], json!(base + 2), "{first}");
    let rooms = first["rooms"].as_object().expect("rooms");
    assert_eq!(rooms.keys().collect::<Vec<_>>(), vec![&newer], "{first}");
    let room = &rooms[&newer];
    assert_eq!(room["initial"], json!(true));
    assert_eq!(bodies(room), vec!["hello newer"]);
    assert_eq!(room["joined_count"], json!(2));
    assert!(
        room.get("name").is_none(),
        "an unnamed room has no name: {room}"
    );
    let heroes = room["heroes"]
        .as_array()
        .expect("heroes of an unnamed room");
    assert_eq!(heroes[0]["user_id"], json!(bob_id));
    let state = state_types(room);
    assert!(
        state.contains(&("m.room.member".into(), bob_id.clone())),
        "$LAZY: {state:?}"
    );
    assert!(
        state.contains(&("m.room.member".into(), alice_id.clone())),
        "$ME: {state:?}"
    );
    assert!(state.contains(&("m.room.create".into(), String::new())));
    assert!(room["bump_stamp"].as_u64().is_some());
    assert!(room["prev_batch"].as_str().is_some());

    // Activity in the older room moves it to the top: sent whole.
    send_text(&alice, &older, "o1", "hello older").await;
    let second = ss_ok(&alice, Some(&pos(&first)), &list(0, 5)).await;
    let rooms = second["rooms"].as_object().expect("rooms");
    assert_eq!(rooms.keys().collect::<Vec<_>>(), vec![&older], "{second}");
    assert_eq!(rooms[&older]["name"], json!("Older"));
    assert_eq!(rooms[&older]["initial"], json!(true));
    assert_eq!(
        rooms[&older]["num_live"],
        json!(1),
        "one event since the last answer"
    );

    // Two messages in the newer room while it is out of range: when it is
    // back on top, the client gets both, not a fresh room.
    send_text(&bob, &newer, "n2", "while away 1").await;
    send_text(&bob, &newer, "n3", "while away 2").await;
    let third = ss_ok(&alice, Some(&pos(&second)), &list(0, 5)).await;
    let room = &third["rooms"][&newer];
    assert_eq!(
        bodies(room),
        vec!["while away 1", "while away 2"],
        "{third}"
    );
    assert!(
        room.get("initial").is_none(),
        "caught up, not sent again: {room}"
    );
    assert_eq!(room["limited"], json!(false));
    assert!(
        room["bump_stamp"].as_u64() > first["rooms"][&newer]["bump_stamp"].as_u64(),
        "activity raises the bump stamp"
    );

    // The position an answer continued from stays valid: a retry gets the
    // same rooms again.
    let retried = ss_ok(&alice, Some(&pos(&second)), &list(0, 5)).await;
    assert_eq!(bodies(&retried["rooms"][&newer]), bodies(room));
    // Nothing new: no rooms.
    let quiet = ss_ok(&alice, Some(&pos(&retried)), &list(1, 5)).await;
    assert!(
        quiet["rooms"].as_object().is_none_or(|r| r.is_empty()),
        "{quiet}"
    );
    // An unknown position is M_UNKNOWN_POS, on this connection or another.
    let res = ss(&alice, Some("999_1"), 0, &list(0, 5)).await;
    expect_error(&res, 400, "M_UNKNOWN_POS", "unknown position");
    let mut other = list(0, 5);
    other["conn_id"] = json!("other");
    let res = ss(&alice, Some(&pos(&quiet)), 0, &other).await;
    expect_error(&res, 400, "M_UNKNOWN_POS", "another connection's position");
    let res = ss(&alice, Some("garbage"), 0, &list(0, 5)).await;
    expect_error(&res, 400, "M_UNKNOWN_POS", "a malformed position");
    // The oldest position is gone once two newer ones exist.
    let res = ss(&alice, Some(&pos(&first)), 0, &list(0, 5)).await;
    expect_error(&res, 400, "M_UNKNOWN_POS", "an old position");
}

#[tokio::test]
async fn invites_filters_subscriptions_and_leaving() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("ssf_alice").await;
    let (bob, bob_id) = raw.register("ssf_bob").await;
    let everything = json!({ "lists": { "l": { "ranges": [[0, 0]], "timeline_limit": 0 } } });
    let count = |answer: &Value| answer["lists"]["l"]["count"].as_u64().expect("count");
    let alice_base = count(&ss_ok(&alice, None, &everything).await);
    let bob_base = count(&ss_ok(&bob, None, &everything).await);
    let plain = create_room(&bob, json!({ "name": "Plain" })).await;
    let secret = create_room(
        &bob,
        json!({ "name": "Secret", "initial_state": [{ "type": "m.room.encryption",
            "state_key": "", "content": { "algorithm": "m.megolm.v1.aes-sha2" } }] }),
    )
    .await;
    let space = create_room(
        &bob,
        json!({ "name": "Space",
        "creation_content": { "type": "m.space" } }),
    )
    .await;
    for room in [&plain, &secret, &space] {
        invite(&bob, room, &alice_id).await;
    }
    let body = |filters: Value| {
        json!({ "lists": { "l": { "ranges": [[0, 20]], "timeline_limit": 1,
            "required_state": [], "filters": filters } } })
    };
    let answer = ss_ok(&bob, None, &body(json!({ "is_encrypted": true }))).await;
    assert_eq!(answer["lists"]["l"]["count"], json!(1), "{answer}");
    assert!(answer["rooms"].get(&secret).is_some());
    let answer = ss_ok(&bob, None, &body(json!({ "room_types": ["m.space"] }))).await;
    assert_eq!(answer["lists"]["l"]["count"], json!(1));
    assert!(answer["rooms"].get(&space).is_some());
    let answer = ss_ok(&bob, None, &body(json!({ "not_room_types": ["m.space"] }))).await;
    assert_eq!(count(&answer), bob_base + 2);

    // Alice sees three invites with their stripped state.
    let answer = ss_ok(&alice, None, &body(json!({ "is_invite": true }))).await;
    assert_eq!(answer["lists"]["l"]["count"], json!(3), "{answer}");
    let invited = &answer["rooms"][&plain];
    let stripped = invited["invite_state"].as_array().expect("invite_state");
    assert!(stripped.iter().any(|e| e["type"] == "m.room.name"));
    assert_eq!(invited["initial"], json!(true));
    // Accepting one makes it a joined room, sent whole.
    expect_ok(join(&alice, &plain).await, "join");
    let next = ss_ok(&alice, Some(&pos(&answer)), &body(json!({}))).await;
    let joined = &next["rooms"][&plain];
    assert!(joined.get("invite_state").is_none(), "{joined}");
    assert_eq!(joined["initial"], json!(true));
    assert_eq!(joined["name"], json!("Plain"));
    // Rejecting another: the room comes once more, with the leave.
    crate::common::rooms::leave(&alice, &secret).await;
    let after = ss_ok(&alice, Some(&pos(&next)), &body(json!({}))).await;
    assert!(
        after["rooms"].get(&secret).is_some(),
        "the rejection is told: {after}"
    );
    let later = ss_ok(&alice, Some(&pos(&after)), &body(json!({}))).await;
    assert_eq!(count(&later), alice_base + 2, "the left room is gone");

    // A subscription answers a room whatever the lists say; a room the
    // user has nothing to do with is not answered.
    let (carol, _) = raw.register("ssf_carol").await;
    let elsewhere = create_room(&carol, json!({})).await;
    let subscribe = json!({ "conn_id": "subscriptions", "room_subscriptions": {
        (plain.clone()): { "timeline_limit": 3, "required_state": [["*", "*"]] },
        (elsewhere.clone()): { "timeline_limit": 3 } } });
    let answer = ss_ok(&alice, None, &subscribe).await;
    assert!(answer["rooms"].get(&elsewhere).is_none(), "{answer}");
    let state = state_types(&answer["rooms"][&plain]);
    assert!(
        state.contains(&("m.room.join_rules".into(), String::new())),
        "{state:?}"
    );
    assert!(
        state.contains(&("m.room.member".into(), bob_id)),
        "{state:?}"
    );
    let later_again = ss_ok(&alice, Some(&pos(&later)), &body(json!({}))).await;
    // Leaving a joined room: the leave comes once, then the room is gone.
    crate::common::rooms::leave(&alice, &plain).await;
    let left = ss_ok(&alice, Some(&pos(&later_again)), &body(json!({}))).await;
    let events = left["rooms"][&plain]["timeline"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "m.room.member" && e["content"]["membership"] == "leave"),
        "{left}"
    );
    let gone = ss_ok(&alice, Some(&pos(&left)), &body(json!({}))).await;
    assert_eq!(count(&gone), alice_base + 1, "{gone}");
}

#[tokio::test]
async fn extensions_carry_to_device_once_keys_account_data_receipts_and_typing() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("sse_alice").await;
    let (bob, bob_id) = raw.register("sse_bob").await;
    let room = create_room(&alice, json!({ "preset": "public_chat" })).await;
    expect_ok(join(&bob, &room).await, "join");
    let event = send_text(&bob, &room, "m1", "read me").await;
    let whoami = expect_ok(
        alice
            .call("GET", &format!("{V3}/account/whoami"), None)
            .await,
        "w",
    );
    let device = whoami["device_id"].as_str().expect("device").to_owned();
    let message = json!({ "messages": { (alice_id.clone()): { (device.clone()): { "n": 1 } } } });
    let path = format!("{V3}/sendToDevice/m.test/t1");
    expect_ok(bob.json("PUT", &path, message).await, "to-device");
    let tags = format!(
        "{V3}/user/{}/rooms/{}/tags/m.favourite",
        enc(&alice_id),
        enc(&room)
    );
    expect_ok(
        alice.json("PUT", &tags, json!({ "order": 0.5 })).await,
        "tag",
    );

    let body = |since: Option<&str>| {
        let mut to_device = json!({ "enabled": true });
        if let Some(since) = since {
            to_device["since"] = json!(since);
        }
        json!({ "conn_id": "encryption",
            "lists": { "l": { "ranges": [[0, 5]], "timeline_limit": 1 } },
            "extensions": { "to_device": to_device, "e2ee": { "enabled": true },
                "account_data": { "enabled": true }, "receipts": { "enabled": true },
                "typing": { "enabled": true } } })
    };
    let first = ss_ok(&alice, None, &body(None)).await;
    let ext = &first["extensions"];
    let messages = ext["to_device"]["events"].as_array().expect("to_device");
    assert_eq!(messages.len(), 1, "{ext}");
    assert_eq!(messages[0]["content"]["n"], json!(1));
    let batch = ext["to_device"]["next_batch"]
        .as_str()
        .expect("next_batch")
        .to_owned();
    assert!(
        ext["e2ee"]["device_one_time_keys_count"].is_object(),
        "{ext}"
    );
    assert!(ext["e2ee"]["device_unused_fallback_key_types"].is_array());
    let global = ext["account_data"]["global"].as_array().expect("global");
    assert!(
        global.iter().any(|e| e["type"] == "m.push_rules"),
        "push rules first"
    );
    let tags = &ext["account_data"]["rooms"][&room];
    assert!(
        tags.as_array()
            .is_some_and(|t| t.iter().any(|e| e["type"] == "m.tag")),
        "{ext}"
    );

    // Acknowledged by `since`: not delivered again, even on a new
    // connection.
    let again = ss_ok(&alice, None, &body(Some(&batch))).await;
    let events = &again["extensions"]["to_device"]["events"];
    assert!(events.as_array().is_none_or(|e| e.is_empty()), "{again}");
    // Not acknowledged: a retry delivers it again (nothing is lost when an
    // answer is).
    let path = format!("{V3}/sendToDevice/m.test/t2");
    let message = json!({ "messages": { (alice_id.clone()): { (device.clone()): { "n": 2 } } } });
    expect_ok(bob.json("PUT", &path, message).await, "to-device");
    for _ in 0..2 {
        let answer = ss_ok(&alice, Some(&pos(&again)), &body(Some(&batch))).await;
        let events = answer["extensions"]["to_device"]["events"]
            .as_array()
            .cloned();
        assert_eq!(events.unwrap_or_default().len(), 1, "{answer}");
    }

    // Bob's read receipt and typing reach Alice, waking a long poll.
    let receipt = format!("{V3}/rooms/{}/receipt/m.read/{}", enc(&room), enc(&event));
    expect_ok(bob.json("POST", &receipt, json!({})).await, "receipt");
    let typing = format!("{V3}/rooms/{}/typing/{}", enc(&room), enc(&bob_id));
    expect_ok(
        bob.json("PUT", &typing, json!({ "typing": true, "timeout": 30000 }))
            .await,
        "t",
    );
    let answer = ss_ok(&alice, Some(&pos(&again)), &body(Some(&batch))).await;
    let ext = &answer["extensions"];
    assert!(
        ext["receipts"]["rooms"][&room]["content"][&event].is_object(),
        "{ext}"
    );
    let typing_users = &ext["typing"]["rooms"][&room]["content"]["user_ids"];
    assert_eq!(typing_users.as_array().map(Vec::len), Some(1), "{ext}");

    let acked = ext["to_device"]["next_batch"].as_str().expect("next_batch");
    let waiting = {
        let alice = alice.with_token(alice.token.as_deref().expect("token"));
        let pos = pos(&answer);
        let body = body(Some(acked));
        tokio::spawn(async move { ss(&alice, Some(&pos), 20_000, &body).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    send_text(&bob, &room, "m2", "wake up").await;
    let woken = expect_ok(waiting.await.expect("long poll"), "long poll");
    assert_eq!(bodies(&woken["rooms"][&room]), vec!["wake up"], "{woken}");
}

#[tokio::test]
async fn bad_requests_are_refused_and_the_switch_turns_it_off() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("ssb_alice").await;
    let res = ss(&raw, None, 0, &list(0, 5)).await;
    expect_error(&res, 401, "M_MISSING_TOKEN", "no token");
    let res = alice.call("POST", PATH, Some("[1]")).await;
    expect_error(&res, 400, "M_BAD_JSON", "not an object");
    let res = alice.call("POST", PATH, Some("{\"lists\": 5}")).await;
    expect_error(&res, 400, "M_BAD_JSON", "lists not a map");
    let backwards = json!({ "lists": { "l": { "ranges": [[5, 1]], "timeline_limit": 1 } } });
    let res = ss(&alice, None, 0, &backwards).await;
    expect_error(
        &res,
        400,
        "M_INVALID_PARAM",
        "a range ending before it starts",
    );
    let res = alice
        .call("POST", &format!("{PATH}?timeout=soon"), Some("{}"))
        .await;
    expect_error(&res, 400, "M_INVALID_PARAM", "timeout not a number");

    let off = start_with(|c| c.sliding_sync = false).await;
    let raw = Raw::new(&off);
    let (alice, _) = raw.register("ssb_alice").await;
    let versions = expect_ok(raw.call("GET", "/_matrix/client/versions", None).await, "v");
    assert!(versions["unstable_features"]
        .get("org.matrix.simplified_msc3575")
        .is_none());
    let res = ss(&alice, None, 0, &list(0, 5)).await;
    expect_error(&res, 404, "M_UNRECOGNIZED", "turned off");
}
