//! Whole-server, raw-HTTP tests of room features beyond the basics:
//! knocking, restricted joins, redaction, `/context`, `/timestamp_to_event`,
//! receipts and unread counts, typing, push rules and presence.

use crate::common;

use common::rooms::{invite, join, send_json, send_text, shared_room, sync_until};
use common::{create_room, enc, expect_error, expect_ok, next_batch, start, sync, Raw, V3};
use serde_json::{json, Value};

fn ids(chunk: &Value) -> Vec<String> {
    chunk
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {chunk}"))
        .iter()
        .map(|e| e["event_id"].as_str().expect("event_id").to_owned())
        .collect()
}

async fn get_event(raw: &Raw, room: &str, event: &str) -> Value {
    expect_ok(
        raw.call(
            "GET",
            &format!("{V3}/rooms/{}/event/{}", enc(room), enc(event)),
            None,
        )
        .await,
        "get event",
    )
}

async fn joined_members(raw: &Raw, room: &str) -> Value {
    expect_ok(
        raw.call(
            "GET",
            &format!("{V3}/rooms/{}/joined_members", enc(room)),
            None,
        )
        .await,
        "joined_members",
    )
}

// ---------------------------------------------------------------- knock

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knock_shows_in_sync_and_an_invite_lets_the_knocker_join() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("alice").await;
    let (bob, bob_id) = raw.register("bob").await;
    let room = create_room(
        &alice,
        json!({
            "preset": "private_chat",
            "initial_state": [{
                "type": "m.room.join_rules", "state_key": "", "content": { "join_rule": "knock" }
            }]
        }),
    )
    .await;

    // Without an invite, a plain join is refused in a knock room.
    expect_error(
        &join(&bob, &room).await,
        403,
        "M_FORBIDDEN",
        "join before invite",
    );

    let knock = expect_ok(
        bob.json(
            "POST",
            &format!("{V3}/knock/{}", enc(&room)),
            json!({ "reason": "let me in" }),
        )
        .await,
        "knock",
    );
    assert_eq!(knock["room_id"], json!(room), "knock answer: {knock}");

    let body = sync(&bob, None, 0).await;
    let knocked = &body["rooms"]["knock"][&room];
    let events = knocked["knock_state"]["events"]
        .as_array()
        .unwrap_or_else(|| panic!("room not under rooms.knock: {body}"));
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "m.room.join_rules" && e["content"]["join_rule"] == "knock"),
        "knock_state lacks the join rules: {knocked}"
    );
    assert!(
        events.iter().any(|e| e["type"] == "m.room.member"
            && e["state_key"] == json!(bob_id)
            && e["content"]["membership"] == "knock"),
        "knock_state lacks bob's knock: {knocked}"
    );
    assert!(
        body["rooms"]["join"].get(&room).is_none(),
        "knocked room also under join: {body}"
    );

    // The room sees the knock.
    let member = expect_ok(
        common::member_state(&alice, &room, &bob_id).await,
        "bob's member state",
    );
    assert_eq!(member["membership"], "knock", "member content: {member}");
    assert_eq!(member["reason"], "let me in", "member content: {member}");

    invite(&alice, &room, &bob_id).await;
    expect_ok(join(&bob, &room).await, "join after invite");
    let members = joined_members(&alice, &room).await;
    assert!(
        members["joined"].get(&bob_id).is_some(),
        "bob not joined: {members}"
    );
}

// ---------------------------------------------------------------- restricted

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_join_needs_membership_of_an_allowed_room() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("alice").await;
    let (bob, bob_id) = raw.register("bob").await;
    let (carol, carol_id) = raw.register("carol").await;

    let room_a = create_room(&alice, json!({ "preset": "public_chat" })).await;
    expect_ok(join(&bob, &room_a).await, "bob joins A");
    let room_b = create_room(
        &alice,
        json!({
            "preset": "private_chat",
            "initial_state": [{
                "type": "m.room.join_rules", "state_key": "",
                "content": {
                    "join_rule": "restricted",
                    "allow": [{ "type": "m.room_membership", "room_id": room_a }]
                }
            }]
        }),
    )
    .await;

    expect_error(
        &join(&carol, &room_b).await,
        403,
        "M_FORBIDDEN",
        "carol (not in A) joins B",
    );
    let members = joined_members(&alice, &room_b).await;
    assert!(
        members["joined"].get(&carol_id).is_none(),
        "carol joined anyway: {members}"
    );

    let joined = expect_ok(join(&bob, &room_b).await, "bob (in A) joins B");
    assert_eq!(joined["room_id"], json!(room_b), "join answer: {joined}");
    let member = expect_ok(
        common::member_state(&alice, &room_b, &bob_id).await,
        "bob's member event in B",
    );
    assert_eq!(member["membership"], "join", "member content: {member}");
    assert_eq!(
        member["join_authorised_via_users_server"],
        json!(alice_id),
        "member content: {member}"
    );
}

// ---------------------------------------------------------------- redaction

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redaction_strips_content_only_when_the_sender_may_redact() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("alice").await;
    let (bob, bob_id) = raw.register("bob").await;
    let room = shared_room(&alice, &bob, &bob_id).await;

    // Alice redacts her own message.
    let own = send_json(
        &alice,
        &room,
        "t1",
        json!({ "msgtype": "m.text", "body": "secret", "custom.field": 42 }),
    )
    .await;
    let redaction = expect_ok(
        alice
            .json(
                "PUT",
                &format!("{V3}/rooms/{}/redact/{}/r1", enc(&room), enc(&own)),
                json!({ "reason": "oops" }),
            )
            .await,
        "redact own",
    );
    let redaction_id = redaction["event_id"].as_str().expect("redaction event_id");
    let event = get_event(&bob, &room, &own).await;
    assert_eq!(event["content"], json!({}), "redacted event: {event}");
    assert_eq!(event["sender"], json!(alice_id), "redacted event: {event}");
    let because = &event["unsigned"]["redacted_because"];
    assert_eq!(
        because["event_id"],
        json!(redaction_id),
        "redacted_because: {event}"
    );
    assert_eq!(
        because["type"], "m.room.redaction",
        "redacted_because: {event}"
    );
    assert_eq!(
        because["content"]["reason"], "oops",
        "redacted_because: {event}"
    );

    // Bob (power 0) cannot redact Alice's message: refused as Synapse
    // refuses it, and the message stays intact.
    let other = send_json(
        &alice,
        &room,
        "t2",
        json!({ "msgtype": "m.text", "body": "keep me", "custom.field": 7 }),
    )
    .await;
    let res = bob
        .json(
            "PUT",
            &format!("{V3}/rooms/{}/redact/{}/r2", enc(&room), enc(&other)),
            json!({}),
        )
        .await;
    // The auth rules of room version 12 accept the redaction event itself,
    // but it would not apply: the client API refuses it.
    expect_error(&res, 403, "M_FORBIDDEN", "bob's redaction of alice's event");
    let event = get_event(&alice, &room, &other).await;
    assert_eq!(
        event["content"],
        json!({ "msgtype": "m.text", "body": "keep me", "custom.field": 7 }),
        "event after bob's redaction: {event}"
    );
    assert!(
        event["unsigned"].get("redacted_because").is_none(),
        "event marked redacted: {event}"
    );
}

// ---------------------------------------------------------------- context

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_returns_neighbours_and_usable_tokens() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("alice").await;
    let room = create_room(&alice, json!({ "preset": "private_chat" })).await;
    let mut sent = Vec::new();
    for i in 0..10 {
        sent.push(send_text(&alice, &room, &format!("c{i}"), &format!("m{i}")).await);
    }

    let ctx = expect_ok(
        alice
            .call(
                "GET",
                &format!(
                    "{V3}/rooms/{}/context/{}?limit=4",
                    enc(&room),
                    enc(&sent[5])
                ),
                None,
            )
            .await,
        "context",
    );
    assert_eq!(ctx["event"]["event_id"], json!(sent[5]), "context: {ctx}");
    assert_eq!(ctx["event"]["content"]["body"], "m5", "context: {ctx}");
    assert_eq!(
        ids(&ctx["events_before"]),
        vec![sent[4].clone(), sent[3].clone()],
        "events_before (newest first): {ctx}"
    );
    assert_eq!(
        ids(&ctx["events_after"]),
        vec![sent[6].clone(), sent[7].clone()],
        "events_after: {ctx}"
    );
    assert!(
        ctx["state"]
            .as_array()
            .is_some_and(|s| s.iter().any(|e| e["type"] == "m.room.create")),
        "context state lacks m.room.create: {ctx}"
    );

    let start_token = ctx["start"].as_str().expect("start token");
    let end_token = ctx["end"].as_str().expect("end token");
    let older = expect_ok(
        alice
            .call(
                "GET",
                &format!(
                    "{V3}/rooms/{}/messages?dir=b&limit=2&from={}",
                    enc(&room),
                    enc(start_token)
                ),
                None,
            )
            .await,
        "messages back from start",
    );
    assert_eq!(
        ids(&older["chunk"]),
        vec![sent[2].clone(), sent[1].clone()],
        "/messages dir=b from context start: {older}"
    );
    let newer = expect_ok(
        alice
            .call(
                "GET",
                &format!(
                    "{V3}/rooms/{}/messages?dir=f&limit=5&from={}",
                    enc(&room),
                    enc(end_token)
                ),
                None,
            )
            .await,
        "messages forward from end",
    );
    assert_eq!(
        ids(&newer["chunk"]),
        vec![sent[8].clone(), sent[9].clone()],
        "/messages dir=f from context end: {newer}"
    );

    expect_error(
        &alice
            .call(
                "GET",
                &format!(
                    "{V3}/rooms/{}/context/{}",
                    enc(&room),
                    enc("$doesnotexist:localhost")
                ),
                None,
            )
            .await,
        404,
        "M_NOT_FOUND",
        "context of unknown event",
    );
}

// ---------------------------------------------------------------- timestamp_to_event

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamp_to_event_finds_the_nearest_event() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("alice").await;
    let room = create_room(&alice, json!({ "preset": "private_chat" })).await;
    let mut sent = Vec::new();
    for i in 0..5 {
        // Spacing so that the messages have distinct timestamps.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        sent.push(send_text(&alice, &room, &format!("ts{i}"), &format!("m{i}")).await);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let middle = get_event(&alice, &room, &sent[2]).await;
    let ts = middle["origin_server_ts"]
        .as_u64()
        .expect("origin_server_ts");
    let path = |q: &str| {
        format!(
            "/_matrix/client/v1/rooms/{}/timestamp_to_event?{q}",
            enc(&room)
        )
    };

    for dir in ["f", "b"] {
        let found = expect_ok(
            alice
                .call("GET", &path(&format!("ts={ts}&dir={dir}")), None)
                .await,
            "timestamp_to_event at the middle event",
        );
        assert_eq!(
            (&found["event_id"], &found["origin_server_ts"]),
            (&json!(sent[2]), &json!(ts)),
            "dir={dir}: {found}"
        );
    }
    // Just after the middle event, forward finds the next one.
    let found = expect_ok(
        alice
            .call("GET", &path(&format!("ts={}&dir=f", ts + 1)), None)
            .await,
        "timestamp_to_event after the middle event",
    );
    assert_eq!(found["event_id"], json!(sent[3]), "dir=f ts+1: {found}");

    expect_error(
        &alice.call("GET", &path("ts=0&dir=b"), None).await,
        404,
        "M_NOT_FOUND",
        "nothing before ts 0",
    );
    expect_error(
        &alice.call("GET", &path(&format!("ts={ts}")), None).await,
        400,
        "M_MISSING_PARAM",
        "missing dir",
    );
}

// ---------------------------------------------------------------- receipts

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_receipt_appears_in_sync_and_clears_unread_count() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("alice").await;
    let (bob, bob_id) = raw.register("bob").await;
    let room = shared_room(&alice, &bob, &bob_id).await;
    let mut last = String::new();
    for i in 0..3 {
        last = send_text(&bob, &room, &format!("u{i}"), &format!("hello {i}")).await;
    }

    let first = sync(&alice, None, 0).await;
    let unread = &first["rooms"]["join"][&room]["unread_notifications"];
    assert_eq!(
        unread["notification_count"],
        json!(3),
        "initial unread count: {first}"
    );
    let since = next_batch(&first);

    expect_ok(
        alice
            .json(
                "POST",
                &format!("{V3}/rooms/{}/receipt/m.read/{}", enc(&room), enc(&last)),
                json!({}),
            )
            .await,
        "receipt",
    );

    let has_receipt = |body: &Value| {
        body["rooms"]["join"][&room]["ephemeral"]["events"]
            .as_array()
            .is_some_and(|evs| {
                evs.iter().any(|e| {
                    e["type"] == "m.receipt"
                        && e["content"][&last]["m.read"].get(&alice_id).is_some()
                })
            })
    };
    let body = sync_until(&alice, &since, "alice's m.receipt", has_receipt).await;
    assert_eq!(
        body["rooms"]["join"][&room]["unread_notifications"]["notification_count"],
        json!(0),
        "unread count after receipt: {body}"
    );

    // Receipts on unknown events are refused.
    expect_error(
        &alice
            .json(
                "POST",
                &format!(
                    "{V3}/rooms/{}/receipt/m.read/{}",
                    enc(&room),
                    enc("$nope:localhost")
                ),
                json!({}),
            )
            .await,
        404,
        "M_NOT_FOUND",
        "receipt for unknown event",
    );
}

// ---------------------------------------------------------------- typing

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_reaches_other_members_and_only_for_oneself() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("alice").await;
    let (bob, bob_id) = raw.register("bob").await;
    let room = shared_room(&alice, &bob, &bob_id).await;
    let since = next_batch(&sync(&bob, None, 0).await);

    expect_ok(
        alice
            .json(
                "PUT",
                &format!("{V3}/rooms/{}/typing/{}", enc(&room), enc(&alice_id)),
                json!({ "typing": true, "timeout": 30000 }),
            )
            .await,
        "typing",
    );
    sync_until(&bob, &since, "alice typing", |body| {
        body["rooms"]["join"][&room]["ephemeral"]["events"]
            .as_array()
            .is_some_and(|evs| {
                evs.iter().any(|e| {
                    e["type"] == "m.typing"
                        && e["content"]["user_ids"]
                            .as_array()
                            .is_some_and(|u| u.contains(&json!(alice_id)))
                })
            })
    })
    .await;

    expect_error(
        &alice
            .json(
                "PUT",
                &format!("{V3}/rooms/{}/typing/{}", enc(&room), enc(&bob_id)),
                json!({ "typing": true, "timeout": 30000 }),
            )
            .await,
        403,
        "M_FORBIDDEN",
        "typing for another user",
    );
}

// ---------------------------------------------------------------- push rules

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_rules_can_be_read_added_toggled_and_defaults_kept() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("alice").await;
    let room = create_room(&alice, json!({ "preset": "private_chat" })).await;

    let initial = sync(&alice, None, 0).await;
    assert!(
        initial["account_data"]["events"]
            .as_array()
            .is_some_and(|evs| evs.iter().any(|e| e["type"] == "m.push_rules")),
        "initial sync lacks m.push_rules: {}",
        initial["account_data"]
    );

    let all = expect_ok(
        alice.call("GET", &format!("{V3}/pushrules/"), None).await,
        "get all push rules",
    );
    let master = all["global"]["override"]
        .as_array()
        .and_then(|rules| rules.iter().find(|r| r["rule_id"] == ".m.rule.master"))
        .unwrap_or_else(|| panic!("no .m.rule.master override: {all}"))
        .clone();
    assert_eq!(master["default"], json!(true), "master rule: {master}");
    assert_eq!(master["enabled"], json!(false), "master rule: {master}");

    let room_rule = format!("{V3}/pushrules/global/room/{}", enc(&room));
    expect_ok(
        alice
            .json("PUT", &room_rule, json!({ "actions": ["dont_notify"] }))
            .await,
        "put room rule",
    );
    let rule = expect_ok(alice.call("GET", &room_rule, None).await, "get room rule");
    assert_eq!(rule["rule_id"], json!(room), "room rule: {rule}");
    assert_eq!(rule["actions"], json!(["dont_notify"]), "room rule: {rule}");
    assert_eq!(rule["enabled"], json!(true), "room rule: {rule}");

    let enabled_path = format!("{V3}/pushrules/global/override/.m.rule.master/enabled");
    expect_ok(
        alice
            .json("PUT", &enabled_path, json!({ "enabled": true }))
            .await,
        "enable master",
    );
    let enabled = expect_ok(
        alice.call("GET", &enabled_path, None).await,
        "get master enabled",
    );
    assert_eq!(enabled, json!({ "enabled": true }), "master enabled");

    let res = alice
        .call(
            "DELETE",
            &format!("{V3}/pushrules/global/override/.m.rule.master"),
            None,
        )
        .await;
    assert!(
        res.0 == 400 && res.1["errcode"].is_string(),
        "deleting a server-default rule: HTTP {} {}",
        res.0,
        res.1
    );
    let all = expect_ok(
        alice.call("GET", &format!("{V3}/pushrules/"), None).await,
        "get all push rules again",
    );
    assert!(
        all["global"]["override"]
            .as_array()
            .is_some_and(|rules| rules.iter().any(|r| r["rule_id"] == ".m.rule.master")),
        "master rule gone after refused delete: {all}"
    );

    expect_error(
        &alice
            .call(
                "GET",
                &format!("{V3}/pushrules/global/override/no.such.rule"),
                None,
            )
            .await,
        404,
        "M_NOT_FOUND",
        "unknown push rule",
    );
}

// ---------------------------------------------------------------- presence

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_set_by_oneself_and_read_by_others() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("alice").await;
    let (bob, bob_id) = raw.register("bob").await;
    // Presence is shown to those who share a room (see http_errors.rs).
    shared_room(&alice, &bob, &bob_id).await;
    let path = format!("{V3}/presence/{}/status", enc(&alice_id));

    expect_ok(
        alice
            .json(
                "PUT",
                &path,
                json!({ "presence": "online", "status_msg": "hi" }),
            )
            .await,
        "set presence",
    );
    let seen = expect_ok(bob.call("GET", &path, None).await, "get presence");
    assert_eq!(seen["presence"], "online", "presence: {seen}");
    assert_eq!(seen["status_msg"], "hi", "presence: {seen}");

    expect_error(
        &alice
            .json("PUT", &path, json!({ "presence": "dancing" }))
            .await,
        400,
        "M_INVALID_PARAM",
        "invalid presence value",
    );
    expect_error(
        &bob.json("PUT", &path, json!({ "presence": "offline" }))
            .await,
        403,
        "M_FORBIDDEN",
        "setting another user's presence",
    );
    let seen = expect_ok(bob.call("GET", &path, None).await, "get presence again");
    assert_eq!(seen["presence"], "online", "presence unchanged: {seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_that_is_not_renewed_ends_by_itself() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let (bob, bob_id) = anon.register("bob").await;
    let room = shared_room(&alice, &bob, &bob_id).await;
    let since = next_batch(&sync(&bob, None, 0).await);
    let typing_path = format!("{V3}/rooms/{}/typing/{}", enc(&room), enc(&alice_id));
    let res = alice
        .json(
            "PUT",
            &typing_path,
            json!({ "typing": true, "timeout": 300 }),
        )
        .await;
    expect_ok(res, "start typing");
    let typing_users = |body: &Value| -> Option<Vec<String>> {
        body["rooms"]["join"][&room]["ephemeral"]["events"]
            .as_array()?
            .iter()
            .find(|e| e["type"] == "m.typing")
            .map(|e| serde_json::from_value(e["content"]["user_ids"].clone()).unwrap_or_default())
    };
    let started = sync_until(&bob, &since, "alice typing", |b| {
        typing_users(b).is_some_and(|u| u.contains(&alice_id))
    })
    .await;
    // Without any further request, the notification ends after its timeout
    // and a waiting sync hears about it.
    let ended = sync_until(&bob, &next_batch(&started), "typing ended", |b| {
        typing_users(b).is_some_and(|u| u.is_empty())
    })
    .await;
    assert_eq!(typing_users(&ended), Some(vec![]));
}
