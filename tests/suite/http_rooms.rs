//! Whole-server, raw-HTTP tests of basic room, sync and key behaviour:
//! idempotent sends, long-polling sync, `/messages` pagination, members,
//! state and event reads, key upload and claim, to-device delivery.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use common::{create_room, enc, expect_error, expect_ok, next_batch, start, sync, Raw, V3};
use serde_json::{json, Value};

async fn send_text(raw: &Raw, room: &str, txn: &str, text: &str) -> String {
    let res = raw
        .json(
            "PUT",
            &format!("{V3}/rooms/{}/send/m.room.message/{}", enc(room), enc(txn)),
            json!({ "msgtype": "m.text", "body": text }),
        )
        .await;
    expect_ok(res, "send")["event_id"]
        .as_str()
        .expect("event_id")
        .to_owned()
}

/// Alice's room with Bob invited and joined.
async fn shared_room(alice: &Raw, bob: &Raw, bob_id: &str) -> String {
    let room = create_room(
        alice,
        json!({ "preset": "private_chat", "name": "Test room" }),
    )
    .await;
    let invite = alice
        .json(
            "POST",
            &format!("{V3}/rooms/{}/invite", enc(&room)),
            json!({ "user_id": bob_id }),
        )
        .await;
    expect_ok(invite, "invite");
    expect_ok(
        bob.json("POST", &format!("{V3}/join/{}", enc(&room)), json!({}))
            .await,
        "join",
    );
    room
}

async fn device_id(raw: &Raw) -> String {
    let me = expect_ok(
        raw.call("GET", &format!("{V3}/account/whoami"), None).await,
        "whoami",
    );
    me["device_id"].as_str().expect("device_id").to_owned()
}

/// The message bodies of `/messages` events, in answer order.
fn bodies(chunk: &[Value]) -> Vec<String> {
    chunk
        .iter()
        .map(|e| {
            e["content"]["body"]
                .as_str()
                .unwrap_or_else(|| panic!("not a text message: {e}"))
                .to_owned()
        })
        .collect()
}

fn ids(chunk: &[Value]) -> Vec<String> {
    chunk
        .iter()
        .map(|e| e["event_id"].as_str().expect("event_id").to_owned())
        .collect()
}

// ---------------------------------------------------------------- send

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_is_idempotent_per_device_and_transaction_id() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;
    let room = create_room(&alice, json!({})).await;

    let first = send_text(&alice, &room, "txn1", "hello").await;
    let again = send_text(&alice, &room, "txn1", "hello").await;
    assert_eq!(first, again, "the same transaction id gave a second event");
    let other = send_text(&alice, &room, "txn2", "hello").await;
    assert_ne!(first, other, "a new transaction id returned the old event");

    // Transaction ids are scoped per device: another login is a new device.
    let login = anon
        .json("POST", &format!("{V3}/login"), json!({
            "type": "m.login.password", "identifier": { "type": "m.id.user", "user": "alice" }, "password": "secret-pw"
        }))
        .await;
    let second = anon.with_token(
        expect_ok(login, "login")["access_token"]
            .as_str()
            .expect("token"),
    );
    let from_second = send_text(&second, &room, "txn1", "hello").await;
    assert_ne!(
        from_second, first,
        "another device's txn1 returned the first device's event"
    );

    let filter = enc(r#"{"types":["m.room.message"]}"#);
    let page = expect_ok(
        alice
            .call(
                "GET",
                &format!(
                    "{V3}/rooms/{}/messages?dir=f&limit=100&filter={filter}",
                    enc(&room)
                ),
                None,
            )
            .await,
        "messages",
    );
    let chunk = page["chunk"].as_array().expect("chunk");
    assert_eq!(
        ids(chunk),
        vec![first.clone(), other, from_second],
        "the room's messages"
    );

    // The sending device sees its transaction id; the other device does not.
    let path = format!("{V3}/rooms/{}/event/{}", enc(&room), enc(&first));
    let seen = expect_ok(alice.call("GET", &path, None).await, "event");
    assert_eq!(seen["unsigned"]["transaction_id"], "txn1", "{seen}");
    let seen = expect_ok(
        second.call("GET", &path, None).await,
        "event from the other device",
    );
    assert!(seen["unsigned"].get("transaction_id").is_none(), "{seen}");
}

/// The spec scopes a transaction id to one device *and one endpoint*:
/// "a single device could use the same transaction ID for a request to
/// /sendToDevice and to /send/{eventType}, and the two requests would be
/// considered distinct". A redaction with the txn id of an earlier send must
/// redact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redaction_reusing_a_send_transaction_id_still_redacts() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;
    let room = create_room(&alice, json!({})).await;

    let message = send_text(&alice, &room, "t1", "to be redacted").await;
    let res = alice
        .json(
            "PUT",
            &format!("{V3}/rooms/{}/redact/{}/t1", enc(&room), enc(&message)),
            json!({ "reason": "oops" }),
        )
        .await;
    let redaction = expect_ok(res, "redact")["event_id"]
        .as_str()
        .expect("event_id")
        .to_owned();
    assert_ne!(
        redaction, message,
        "/redact with the txn id of a /send returned the sent event, redacting nothing"
    );
    let seen = expect_ok(
        alice
            .call(
                "GET",
                &format!("{V3}/rooms/{}/event/{}", enc(&room), enc(&message)),
                None,
            )
            .await,
        "event",
    );
    assert!(
        seen["content"].get("body").is_none(),
        "the message was not redacted: {seen}"
    );
}

/// Synapse keys send transactions by the full request path, so the same txn
/// id in another room is another request. Answering room B's send with an
/// event of room A tells the client a message was sent that never was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_id_reused_in_another_room_sends_there() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;
    let room = create_room(&alice, json!({})).await;
    let other_room = create_room(&alice, json!({})).await;
    let elsewhere = send_text(&alice, &other_room, "t2", "room two").await;
    let here = send_text(&alice, &room, "t2", "room one").await;
    let res = alice
        .call(
            "GET",
            &format!("{V3}/rooms/{}/event/{}", enc(&room), enc(&here)),
            None,
        )
        .await;
    assert_eq!(res.0, 200, "PUT /rooms/A/send/…/t2 after /rooms/B/send/…/t2 answered {here} (B's event {elsewhere}), not an event of A: {}", res.1);
}

// ---------------------------------------------------------------- sync

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polling_sync_returns_the_message_sent_while_it_waits() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;
    let (bob, bob_id) = anon.register("bob").await;
    let room = shared_room(&alice, &bob, &bob_id).await;
    let since = next_batch(&sync(&bob, None, 0).await);

    let waiting = {
        let bob = bob.with_token(bob.token.as_deref().expect("token"));
        let since = since.clone();
        tokio::spawn(async move { sync(&bob, Some(&since), 10_000).await })
    };
    let sent = send_text(&alice, &room, "lp1", "wake up").await;
    let answer = waiting.await.expect("sync task");
    let events = answer["rooms"]["join"][room.as_str()]["timeline"]["events"]
        .as_array()
        .unwrap_or_else(|| panic!("the long poll answered without the room: {answer}"));
    assert!(
        events
            .iter()
            .any(|e| e["event_id"] == sent.as_str() && e["content"]["body"] == "wake up"),
        "the long poll answered without the message: {answer}"
    );
    assert_ne!(next_batch(&answer), since, "next_batch did not move");
    // Caught up: an immediate incremental sync has no timeline for the room.
    let after = sync(&bob, Some(&next_batch(&answer)), 0).await;
    let again = &after["rooms"]["join"][room.as_str()]["timeline"]["events"];
    assert!(
        again
            .as_array()
            .is_none_or(|events| !events.iter().any(|e| e["event_id"] == sent.as_str())),
        "the message came again after its next_batch: {after}"
    );
}

// ---------------------------------------------------------------- messages

async fn page(raw: &Raw, room: &str, dir: &str, from: Option<&str>, filtered: bool) -> Value {
    let mut path = format!("{V3}/rooms/{}/messages?dir={dir}&limit=10", enc(room));
    if filtered {
        path.push_str(&format!(
            "&filter={}",
            enc(r#"{"types":["m.room.message"]}"#)
        ));
    }
    if let Some(from) = from {
        path.push_str(&format!("&from={}", enc(from)));
    }
    expect_ok(raw.call("GET", &path, None).await, "messages")
}

/// Follows `end` tokens until they stop; returns every chunk, in order.
async fn paginate(raw: &Raw, room: &str, dir: &str, filtered: bool) -> Vec<Value> {
    let mut from: Option<String> = None;
    let mut all = Vec::new();
    for _ in 0..20 {
        let body = page(raw, room, dir, from.as_deref(), filtered).await;
        if let Some(from) = &from {
            assert_eq!(body["start"], from.as_str(), "start must echo from: {body}");
        }
        let chunk = body["chunk"]
            .as_array()
            .unwrap_or_else(|| panic!("chunk missing: {body}"));
        assert!(
            chunk.len() <= 10,
            "more than limit=10 events: {}",
            chunk.len()
        );
        all.extend(chunk.iter().cloned());
        match body["end"].as_str() {
            Some(end) => {
                assert!(
                    from.as_deref() != Some(end) || !chunk.is_empty(),
                    "end did not move and the chunk was empty: {body}"
                );
                from = Some(end.to_owned());
            }
            None => return all,
        }
    }
    panic!("/messages dir={dir} still had an end token after 20 pages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_pagination_tokens_chain_without_gaps_or_duplicates() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;
    let room = create_room(&alice, json!({})).await;
    for i in 0..25 {
        send_text(&alice, &room, &format!("m{i}"), &format!("m{i}")).await;
    }
    let oldest_first: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
    let newest_first: Vec<String> = oldest_first.iter().rev().cloned().collect();

    let backward = paginate(&alice, &room, "b", true).await;
    assert_eq!(bodies(&backward), newest_first, "backward pages of 10");
    let forward = paginate(&alice, &room, "f", true).await;
    assert_eq!(bodies(&forward), oldest_first, "forward pages of 10");

    // The first backward page is the newest ten; paging forward from its end
    // token gives the same ten back, oldest first.
    let first = page(&alice, &room, "b", None, true).await;
    assert_eq!(
        bodies(first["chunk"].as_array().expect("chunk")),
        newest_first[..10].to_vec()
    );
    let end = first["end"]
        .as_str()
        .unwrap_or_else(|| panic!("a full first page needs an end token: {first}"));
    let back_again = page(&alice, &room, "f", Some(end), true).await;
    let mut expected: Vec<String> = newest_first[..10].to_vec();
    expected.reverse();
    assert_eq!(
        bodies(back_again["chunk"].as_array().expect("chunk")),
        expected,
        "forward from the first page's end"
    );

    // Unfiltered, every event of the room once, each way.
    let everything = expect_ok(
        alice
            .call(
                "GET",
                &format!("{V3}/rooms/{}/messages?dir=f&limit=1000", enc(&room)),
                None,
            )
            .await,
        "all messages",
    );
    let everything = ids(everything["chunk"].as_array().expect("chunk"));
    assert_eq!(everything.len(), 25 + 6, "25 messages after create, member, power levels, join rules, history visibility, guest access");
    let mut backward = ids(&paginate(&alice, &room, "b", false).await);
    backward.reverse();
    assert_eq!(backward, everything, "unfiltered backward pagination");
    assert_eq!(
        ids(&paginate(&alice, &room, "f", false).await),
        everything,
        "unfiltered forward pagination"
    );
}

/// A page of `limit=0` reads nothing, so paging on from its `end` token
/// must give the event just past `from` (the token was one event too far,
/// and that event was never shown).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_with_limit_zero_skip_nothing() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;
    let room = create_room(&alice, json!({})).await;
    for i in 0..3 {
        send_text(&alice, &room, &format!("m{i}"), &format!("m{i}")).await;
    }
    let messages = format!("{V3}/rooms/{}/messages", enc(&room));
    let filter = enc(r#"{"types":["m.room.message"]}"#);
    let first = expect_ok(
        alice
            .call(
                "GET",
                &format!("{messages}?dir=f&limit=1&filter={filter}"),
                None,
            )
            .await,
        "first message",
    );
    let after_first = first["end"].as_str().expect("end").to_owned();
    for (dir, from, next) in [("b", None, "m2"), ("f", Some(after_first.as_str()), "m1")] {
        let from_param = from
            .map(|f| format!("&from={}", enc(f)))
            .unwrap_or_default();
        let empty = expect_ok(
            alice
                .call(
                    "GET",
                    &format!("{messages}?dir={dir}&limit=0{from_param}"),
                    None,
                )
                .await,
            "limit=0",
        );
        assert_eq!(empty["chunk"], json!([]), "dir={dir}: {empty}");
        let end = empty["end"]
            .as_str()
            .unwrap_or_else(|| panic!("dir={dir}: more events lie beyond, so an end: {empty}"));
        let on = expect_ok(
            alice
                .call(
                    "GET",
                    &format!(
                        "{messages}?dir={dir}&limit=1&from={}&filter={filter}",
                        enc(end)
                    ),
                    None,
                )
                .await,
            "the page after limit=0",
        );
        assert_eq!(
            bodies(on["chunk"].as_array().expect("chunk")),
            vec![next.to_owned()],
            "dir={dir}: paging on from limit=0's end"
        );
    }
    // Nothing lies past the newest event: no end token.
    let now = expect_ok(
        alice
            .call("GET", &format!("{messages}?dir=b&limit=0"), None)
            .await,
        "limit=0 backward",
    );
    let now = now["start"].as_str().expect("start").to_owned();
    let at_end = expect_ok(
        alice
            .call(
                "GET",
                &format!("{messages}?dir=f&limit=0&from={}", enc(&now)),
                None,
            )
            .await,
        "limit=0 at the end",
    );
    assert!(at_end.get("end").is_none(), "nothing lies beyond: {at_end}");
}

// ---------------------------------------------------------------- members, state, event

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_state_and_event_reads() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let (bob, bob_id) = anon.register("bob").await;
    let (carol, _) = anon.register("carol").await;
    let room = shared_room(&alice, &bob, &bob_id).await;
    let r = enc(&room);

    let members = expect_ok(
        bob.call("GET", &format!("{V3}/rooms/{r}/members"), None)
            .await,
        "members",
    );
    let chunk = members["chunk"].as_array().expect("chunk");
    let got: BTreeMap<String, String> = chunk
        .iter()
        .map(|e| {
            assert_eq!(e["type"], "m.room.member", "{e}");
            (
                e["state_key"].as_str().expect("state_key").to_owned(),
                e["content"]["membership"]
                    .as_str()
                    .expect("membership")
                    .to_owned(),
            )
        })
        .collect();
    let want: BTreeMap<String, String> = [
        (alice_id.clone(), "join".to_owned()),
        (bob_id.clone(), "join".to_owned()),
    ]
    .into();
    assert_eq!(got, want, "/members");
    let none = expect_ok(
        bob.call(
            "GET",
            &format!("{V3}/rooms/{r}/members?not_membership=join"),
            None,
        )
        .await,
        "members filter",
    );
    assert_eq!(none["chunk"], json!([]), "not_membership=join");

    let joined = expect_ok(
        alice
            .call("GET", &format!("{V3}/rooms/{r}/joined_members"), None)
            .await,
        "joined_members",
    );
    let joined = joined["joined"]
        .as_object()
        .unwrap_or_else(|| panic!("joined missing: {joined}"));
    assert_eq!(
        joined.keys().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([alice_id.clone(), bob_id.clone()])
    );
    assert_eq!(joined[bob_id.as_str()]["display_name"], "bob");
    let res = carol
        .call("GET", &format!("{V3}/rooms/{r}/joined_members"), None)
        .await;
    expect_error(
        &res,
        403,
        "M_FORBIDDEN",
        "/joined_members of a room one is not in",
    );
    let res = carol
        .call("GET", &format!("{V3}/rooms/{r}/members"), None)
        .await;
    expect_error(&res, 403, "M_FORBIDDEN", "/members of a room one is not in");

    for path in [
        format!("{V3}/rooms/{r}/state/m.room.name/"),
        format!("{V3}/rooms/{r}/state/m.room.name"),
    ] {
        let name = expect_ok(bob.call("GET", &path, None).await, "name state");
        assert_eq!(name, json!({ "name": "Test room" }), "GET {path}");
    }
    let create = expect_ok(
        bob.call("GET", &format!("{V3}/rooms/{r}/state/m.room.create/"), None)
            .await,
        "create state",
    );
    assert_eq!(create["room_version"], "12", "{create}");
    let me = expect_ok(
        bob.call(
            "GET",
            &format!("{V3}/rooms/{r}/state/m.room.member/{}", enc(&bob_id)),
            None,
        )
        .await,
        "member state",
    );
    assert_eq!(me["membership"], "join", "{me}");
    let res = carol
        .call("GET", &format!("{V3}/rooms/{r}/state/m.room.name/"), None)
        .await;
    expect_error(&res, 403, "M_FORBIDDEN", "state of a room one is not in");

    let sent = send_text(&alice, &room, "e1", "read me").await;
    let event = expect_ok(
        bob.call("GET", &format!("{V3}/rooms/{r}/event/{}", enc(&sent)), None)
            .await,
        "event",
    );
    assert_eq!(event["event_id"], sent.as_str());
    assert_eq!(event["room_id"], room.as_str());
    assert_eq!(event["sender"], alice_id.as_str());
    assert_eq!(event["type"], "m.room.message");
    assert_eq!(
        event["content"],
        json!({ "msgtype": "m.text", "body": "read me" })
    );
    assert!(event["origin_server_ts"].is_u64(), "{event}");
    let res = carol
        .call("GET", &format!("{V3}/rooms/{r}/event/{}", enc(&sent)), None)
        .await;
    expect_error(&res, 404, "M_NOT_FOUND", "an event of a room one is not in");

    // Bob leaves: he still reads what he saw, not what came after.
    expect_ok(
        bob.json("POST", &format!("{V3}/rooms/{r}/leave"), json!({}))
            .await,
        "leave",
    );
    let later = send_text(&alice, &room, "e2", "after bob left").await;
    expect_ok(
        bob.call("GET", &format!("{V3}/rooms/{r}/event/{}", enc(&sent)), None)
            .await,
        "event seen before leaving",
    );
    let res = bob
        .call(
            "GET",
            &format!("{V3}/rooms/{r}/event/{}", enc(&later)),
            None,
        )
        .await;
    expect_error(&res, 404, "M_NOT_FOUND", "an event sent after one left");
    let res = bob
        .call("GET", &format!("{V3}/rooms/{r}/joined_members"), None)
        .await;
    expect_error(&res, 403, "M_FORBIDDEN", "/joined_members after leaving");
}

/// Synapse copies the profile into every join it makes, the creator's
/// included, so `/joined_members` and clients show the display name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_creators_join_carries_the_profile() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let room = create_room(&alice, json!({})).await;
    let joined = expect_ok(
        alice
            .call(
                "GET",
                &format!("{V3}/rooms/{}/joined_members", enc(&room)),
                None,
            )
            .await,
        "joined_members",
    );
    assert_eq!(
        joined["joined"][alice_id.as_str()]["display_name"],
        "alice",
        "{joined}"
    );
}

// ---------------------------------------------------------------- keys

fn device_keys(user: &str, device: &str) -> Value {
    json!({
        "user_id": user,
        "device_id": device,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": { format!("curve25519:{device}"): "curve-key", format!("ed25519:{device}"): "ed-key" },
        "signatures": { user: { format!("ed25519:{device}"): "sig" } },
    })
}

async fn query_devices(raw: &Raw, user: &str) -> Value {
    let res = raw
        .json(
            "POST",
            &format!("{V3}/keys/query"),
            json!({ "device_keys": { user: [] } }),
        )
        .await;
    expect_ok(res, "keys/query")["device_keys"][user].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_keys_for_another_user_or_device_are_m_invalid_param() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let device = device_id(&alice).await;
    let upload = format!("{V3}/keys/upload");

    let otk = json!({ "signed_curve25519:AAAAAQ": { "key": "otk", "signatures": {} } });
    let res = alice
        .json("POST", &upload, json!({ "device_keys": device_keys("@mallory:localhost", &device), "one_time_keys": otk }))
        .await;
    expect_error(
        &res,
        400,
        "M_INVALID_PARAM",
        "device_keys with another user_id",
    );
    let res = alice
        .json(
            "POST",
            &upload,
            json!({ "device_keys": device_keys(&alice_id, "OTHERDEVICE") }),
        )
        .await;
    expect_error(
        &res,
        400,
        "M_INVALID_PARAM",
        "device_keys with another device_id",
    );
    let stored = query_devices(&alice, &alice_id).await;
    assert!(
        stored.as_object().is_none_or(|m| m.is_empty()),
        "refused keys were stored: {stored}"
    );
    let counts = expect_ok(alice.json("POST", &upload, json!({})).await, "empty upload");
    assert_eq!(
        counts["one_time_key_counts"]["signed_curve25519"], 0,
        "the refused upload's one-time key was stored: {counts}"
    );

    expect_ok(
        alice
            .json(
                "POST",
                &upload,
                json!({ "device_keys": device_keys(&alice_id, &device) }),
            )
            .await,
        "upload",
    );
    let stored = query_devices(&alice, &alice_id).await;
    assert_eq!(
        stored[device.as_str()]["keys"][format!("ed25519:{device}")],
        "ed-key",
        "{stored}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_hand_out_each_one_time_key_once_then_the_fallback() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let device = device_id(&alice).await;
    let mut otks = serde_json::Map::new();
    for i in 1..=5 {
        otks.insert(
            format!("signed_curve25519:OTK{i}"),
            json!({ "key": format!("otk-{i}"), "signatures": {} }),
        );
    }
    let up = alice
        .json("POST", &format!("{V3}/keys/upload"), json!({
            "device_keys": device_keys(&alice_id, &device),
            "one_time_keys": otks,
            "fallback_keys": { "signed_curve25519:FB1": { "key": "fallback", "fallback": true, "signatures": {} } },
        }))
        .await;
    assert_eq!(
        expect_ok(up, "upload")["one_time_key_counts"]["signed_curve25519"],
        5
    );

    let mut claimers = Vec::new();
    for i in 0..5 {
        claimers.push(anon.register(&format!("claimer{i}")).await.0);
    }
    let mut tasks = Vec::new();
    for claimer in claimers.iter().chain(claimers.iter()) {
        let raw = claimer.with_token(claimer.token.as_deref().expect("token"));
        let body = json!({ "one_time_keys": { alice_id.as_str(): { device.as_str(): "signed_curve25519" } } });
        tasks.push(tokio::spawn(async move {
            raw.json("POST", &format!("{V3}/keys/claim"), body).await
        }));
    }
    let mut one_time = Vec::new();
    let mut fallbacks = 0;
    for task in tasks {
        let body = expect_ok(task.await.expect("claim task"), "claim");
        let keys = body["one_time_keys"][alice_id.as_str()][device.as_str()]
            .as_object()
            .unwrap_or_else(|| panic!("a claim got no key although a fallback key exists: {body}"));
        assert_eq!(keys.len(), 1, "one key per claimed device: {body}");
        let (id, key) = keys.iter().next().expect("one key");
        if id == "signed_curve25519:FB1" {
            assert_eq!(key["key"], "fallback");
            fallbacks += 1;
        } else {
            let n = id
                .strip_prefix("signed_curve25519:OTK")
                .unwrap_or_else(|| panic!("unknown key id {id}"));
            assert_eq!(
                key["key"],
                format!("otk-{n}"),
                "key {id} has another key's content"
            );
            one_time.push(id.clone());
        }
    }
    let distinct: BTreeSet<&String> = one_time.iter().collect();
    assert_eq!(
        distinct.len(),
        one_time.len(),
        "a one-time key was handed out twice: {one_time:?}"
    );
    assert_eq!(
        one_time.len(),
        5,
        "all five one-time keys go out before the fallback: {one_time:?}, {fallbacks} fallbacks"
    );
    assert_eq!(fallbacks, 5);

    let counts = expect_ok(
        alice
            .json("POST", &format!("{V3}/keys/upload"), json!({}))
            .await,
        "count",
    );
    assert_eq!(
        counts["one_time_key_counts"]["signed_curve25519"], 0,
        "{counts}"
    );
    let synced = sync(&alice, None, 0).await;
    assert_eq!(
        synced["device_one_time_keys_count"]["signed_curve25519"], 0,
        "{synced}"
    );
    assert_eq!(
        synced["device_unused_fallback_key_types"],
        json!([]),
        "the fallback key was used: {synced}"
    );
}

// ---------------------------------------------------------------- to-device

fn to_device_of(sync: &Value, kind: &str) -> Vec<Value> {
    sync["to_device"]["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter(|e| e["type"] == kind)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn to_device_messages_are_delivered_exactly_once() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let (bob, bob_id) = anon.register("bob").await;
    let bob_device = device_id(&bob).await;
    let login = anon
        .json("POST", &format!("{V3}/login"), json!({
            "type": "m.login.password", "identifier": { "type": "m.id.user", "user": "bob" }, "password": "secret-pw"
        }))
        .await;
    let bob2 = anon.with_token(
        expect_ok(login, "bob's second login")["access_token"]
            .as_str()
            .expect("token"),
    );
    let s0 = next_batch(&sync(&bob, None, 0).await);
    let s0_other = next_batch(&sync(&bob2, None, 0).await);

    let path = format!("{V3}/sendToDevice/m.test.ping/txn1");
    let body = json!({ "messages": { bob_id.as_str(): { bob_device.as_str(): { "n": 1 } } } });
    expect_ok(alice.json("PUT", &path, body.clone()).await, "sendToDevice");
    expect_ok(
        alice.json("PUT", &path, body).await,
        "sendToDevice retried with the same txn id",
    );

    let first = sync(&bob, Some(&s0), 0).await;
    let got = to_device_of(&first, "m.test.ping");
    assert_eq!(
        got.len(),
        1,
        "exactly one delivery (the retry is the same transaction): {first}"
    );
    assert_eq!(got[0]["sender"], alice_id.as_str());
    assert_eq!(got[0]["content"], json!({ "n": 1 }));
    let second = sync(&bob, Some(&next_batch(&first)), 0).await;
    assert!(
        to_device_of(&second, "m.test.ping").is_empty(),
        "delivered again after next_batch: {second}"
    );
    let third = sync(&bob, Some(&next_batch(&second)), 0).await;
    assert!(
        to_device_of(&third, "m.test.ping").is_empty(),
        "delivered again later: {third}"
    );

    let other = sync(&bob2, Some(&s0_other), 0).await;
    assert!(
        to_device_of(&other, "m.test.ping").is_empty(),
        "a message for one device reached another: {other}"
    );
}

/// `POST /rooms/{id}/send/{type}` without a transaction id (pre-r0 clients,
/// as Synapse serves it): each call is a new event; bad input is refused.
#[tokio::test]
async fn sending_without_a_transaction_id_works_for_old_clients() {
    let server = crate::common::start().await;
    let raw = crate::common::Raw::new(&server);
    let (alice, _) = raw.register("untxn_alice").await;
    let room = crate::common::create_room(&alice, serde_json::json!({})).await;
    let path = format!(
        "/_matrix/client/r0/rooms/{}/send/m.room.message",
        crate::common::enc(&room)
    );
    let body = serde_json::json!({ "msgtype": "m.text", "body": "old school" });
    let first = crate::common::expect_ok(alice.json("POST", &path, body.clone()).await, "send");
    let second = crate::common::expect_ok(alice.json("POST", &path, body).await, "again");
    assert_ne!(first["event_id"], second["event_id"], "not idempotent");
    let event = format!(
        "/_matrix/client/v3/rooms/{}/event/{}",
        crate::common::enc(&room),
        crate::common::enc(first["event_id"].as_str().expect("id"))
    );
    let got = crate::common::expect_ok(alice.call("GET", &event, None).await, "event");
    assert_eq!(got["content"]["body"], "old school");
    let res = alice.call("POST", &path, Some("[1]")).await;
    crate::common::expect_error(&res, 400, "M_BAD_JSON", "not an object");
    let (other, _) = raw.register("untxn_other").await;
    let res = other
        .json("POST", &path, serde_json::json!({ "body": "x" }))
        .await;
    crate::common::expect_error(&res, 403, "M_FORBIDDEN", "not in the room");
}

/// A trusted private chat of room version 12 makes its invitees creators
/// besides those the client named in `creation_content` (as Synapse
/// merges them).
#[tokio::test]
async fn invitees_join_the_additional_creators_the_client_named() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("ac_alice").await;
    let (_, bob_id) = raw.register("ac_bob").await;
    let (_, carol_id) = raw.register("ac_carol").await;
    let room = create_room(
        &alice,
        json!({
            "preset": "trusted_private_chat",
            "room_version": "12",
            "invite": [bob_id, carol_id],
            "creation_content": { "additional_creators": [carol_id] },
        }),
    )
    .await;
    let create = expect_ok(
        alice
            .call(
                "GET",
                &format!("{V3}/rooms/{}/state/m.room.create/", enc(&room)),
                None,
            )
            .await,
        "create event",
    );
    assert_eq!(
        create["additional_creators"],
        json!([carol_id, bob_id]),
        "{create}"
    );
}

/// `/rooms/{id}/initialSync` (the old API bridges still read): state, the
/// latest messages oldest first, membership, account data, visibility; a
/// room never joined is refused.
#[tokio::test]
async fn room_initial_sync_gives_the_rooms_snapshot() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("is_alice").await;
    let (bob, _) = raw.register("is_bob").await;
    let room = create_room(
        &alice,
        json!({ "name": "Snapshot", "visibility": "public" }),
    )
    .await;
    for i in 0..12 {
        send_text(&alice, &room, &format!("is{i}"), &format!("message {i}")).await;
    }
    let tag = format!(
        "{V3}/user/{}/rooms/{}/tags/u.work",
        enc(&alice_id),
        enc(&room)
    );
    expect_ok(
        alice.json("PUT", &tag, json!({ "order": 0.5 })).await,
        "tag",
    );
    let path = format!("{V3}/rooms/{}/initialSync", enc(&room));
    let snapshot = expect_ok(alice.call("GET", &path, None).await, "initialSync");
    assert_eq!(snapshot["room_id"], room.as_str());
    assert_eq!(snapshot["membership"], "join");
    assert_eq!(snapshot["visibility"], "public");
    let bodies: Vec<&str> = snapshot["messages"]["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .filter_map(|e| e["content"]["body"].as_str())
        .collect();
    let expected: Vec<String> = (2..12).map(|i| format!("message {i}")).collect();
    assert_eq!(bodies, expected, "the ten latest, oldest first");
    let names: Vec<&Value> = snapshot["state"]
        .as_array()
        .expect("state")
        .iter()
        .filter(|e| e["type"] == "m.room.name")
        .collect();
    assert_eq!(names[0]["content"]["name"], "Snapshot");
    assert!(
        snapshot["account_data"].to_string().contains("u.work"),
        "{snapshot}"
    );
    // The end token continues with /messages backwards from the chunk's start.
    let start = snapshot["messages"]["start"].as_str().expect("start");
    let older = expect_ok(
        alice
            .call(
                "GET",
                &format!(
                    "{V3}/rooms/{}/messages?dir=b&limit=2&from={start}",
                    enc(&room)
                ),
                None,
            )
            .await,
        "older",
    );
    assert_eq!(older["chunk"][0]["content"]["body"], "message 1");

    let res = bob.call("GET", &path, None).await;
    expect_error(&res, 403, "M_FORBIDDEN", "a room never joined");

    // The global `/initialSync`: every room, invites as their invite, left
    // rooms only when archived ones are asked for.
    let left = create_room(&bob, json!({ "name": "Left" })).await;
    let invite = json!({ "user_id": alice_id });
    let invite_path = format!("{V3}/rooms/{}/invite", enc(&left));
    expect_ok(bob.json("POST", &invite_path, invite).await, "invite");
    let all = expect_ok(
        alice
            .call("GET", &format!("{V3}/initialSync?limit=3"), None)
            .await,
        "global initialSync",
    );
    let rooms = all["rooms"].as_array().expect("rooms");
    let ours = rooms
        .iter()
        .find(|r| r["room_id"] == room.as_str())
        .expect("the room");
    assert_eq!(ours["membership"], "join");
    assert_eq!(
        ours["messages"]["chunk"].as_array().map(Vec::len),
        Some(3),
        "{ours}"
    );
    let invited = rooms
        .iter()
        .find(|r| r["room_id"] == left.as_str())
        .expect("the invite");
    assert_eq!(invited["membership"], "invite");
    assert_eq!(
        invited["invite"]["content"]["membership"], "invite",
        "{invited}"
    );
    assert!(all["end"].is_string(), "{all}");
    assert!(
        all["account_data"].to_string().contains("m.push_rules"),
        "{}",
        all["account_data"]
    );
    let leave = format!("{V3}/rooms/{}/leave", enc(&room));
    expect_ok(alice.json("POST", &leave, json!({})).await, "leave");
    let without = expect_ok(
        alice.call("GET", &format!("{V3}/initialSync"), None).await,
        "without archived",
    );
    assert!(
        !without.to_string().contains(room.as_str()),
        "a left room without archived=true"
    );
    let archived = expect_ok(
        alice
            .call("GET", &format!("{V3}/initialSync?archived=true"), None)
            .await,
        "archived",
    );
    let old = archived["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["room_id"] == room.as_str());
    assert_eq!(old.expect("the left room")["membership"], "leave");
}

/// `contains_url` in a room event filter keeps only the events with a
/// `url` string in their content (files, images: Element's file panel
/// asks so), or only those without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_filtered_by_contains_url() {
    let server = start().await;
    let (alice, _) = Raw::new(&server).register("alice").await;
    let room = create_room(&alice, json!({})).await;
    send_text(&alice, &room, "t", "just words").await;
    let image = json!({ "msgtype": "m.image", "body": "cat.png", "url": "mxc://localhost/cat" });
    let path = format!("{V3}/rooms/{}/send/m.room.message/i", enc(&room));
    expect_ok(alice.json("PUT", &path, image).await, "send an image");
    let odd = json!({ "msgtype": "m.text", "body": "a url that is no string", "url": 5 });
    let path = format!("{V3}/rooms/{}/send/m.room.message/o", enc(&room));
    expect_ok(
        alice.json("PUT", &path, odd).await,
        "send a message with url 5",
    );

    let bodies = |wanted: bool| {
        let alice = &alice;
        let filter = json!({ "types": ["m.room.message"], "contains_url": wanted }).to_string();
        let path = format!(
            "{V3}/rooms/{}/messages?dir=b&filter={}",
            enc(&room),
            enc(&filter)
        );
        async move {
            let page = expect_ok(alice.call("GET", &path, None).await, "/messages");
            let chunk = page["chunk"].as_array().cloned().unwrap_or_default();
            chunk
                .iter()
                .map(|e| e["content"]["body"].as_str().unwrap_or("").to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(bodies(true).await, vec!["cat.png"]);
    assert_eq!(
        bodies(false).await,
        vec!["a url that is no string", "just words"]
    );
}

/// `GET /events`: the old event stream over the caller's joined rooms, and
/// with `room_id` a peek into one room (a world-readable one without
/// joining it); a request waiting for news gets the next event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_and_peeking() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("ev_alice").await;
    let (bob, _) = raw.register("ev_bob").await;
    let (carol, _) = raw.register("ev_carol").await;
    let shared = create_room(&alice, json!({ "preset": "public_chat" })).await;
    expect_ok(crate::common::rooms::join(&bob, &shared).await, "bob joins");
    let own = create_room(&alice, json!({})).await;
    let open = create_room(
        &carol,
        json!({ "preset": "public_chat", "initial_state": [{
            "type": "m.room.history_visibility", "state_key": "",
            "content": { "history_visibility": "world_readable" }
        }] }),
    )
    .await;
    let closed = create_room(&carol, json!({})).await;
    let stream = |raw: &Raw, query: String| {
        let raw = raw.with_token(raw.token.as_deref().expect("token"));
        async move {
            expect_ok(
                raw.call("GET", &format!("{V3}/events?{query}"), None).await,
                "/events",
            )
        }
    };
    let now = stream(&alice, "timeout=0".into()).await;
    assert_eq!(now["chunk"], json!([]), "{now}");
    let token = now["end"].as_str().expect("end").to_owned();

    send_text(&bob, &shared, "e1", "in the shared room").await;
    send_text(&alice, &own, "e2", "in alice's own room").await;
    send_text(&carol, &open, "e3", "in the open room").await;
    let news = stream(&alice, format!("from={token}&timeout=0")).await;
    let seen: Vec<(&str, &str)> = news["chunk"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["room_id"].as_str()?, e["content"]["body"].as_str()?)))
        .collect();
    assert_eq!(
        seen,
        [
            (shared.as_str(), "in the shared room"),
            (own.as_str(), "in alice's own room")
        ],
        "{news}"
    );

    // Bob peeks into the world-readable room he is not in.
    let peek = stream(
        &bob,
        format!("room_id={}&from={token}&timeout=0", enc(&open)),
    )
    .await;
    assert_eq!(
        peek["chunk"][0]["content"]["body"], "in the open room",
        "{peek}"
    );
    let res = bob
        .call(
            "GET",
            &format!("{V3}/events?room_id={}&timeout=0", enc(&closed)),
            None,
        )
        .await;
    expect_error(
        &res,
        403,
        "M_FORBIDDEN",
        "peeking into a room that is not world-readable",
    );

    // A waiting request gets the next event.
    let end = peek["end"].as_str().unwrap().to_owned();
    let waiting = {
        let bob = bob.with_token(bob.token.as_deref().unwrap());
        let path = format!(
            "{V3}/events?room_id={}&from={end}&timeout=20000",
            enc(&open)
        );
        tokio::spawn(async move { bob.call("GET", &path, None).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    send_text(&carol, &open, "e4", "while bob waits").await;
    let (status, woken) = waiting.await.unwrap();
    assert_eq!(status, 200, "{woken}");
    assert_eq!(
        woken["chunk"][0]["content"]["body"], "while bob waits",
        "{woken}"
    );
    assert_eq!(woken["chunk"][0]["sender"], "@ev_carol:localhost");
}
