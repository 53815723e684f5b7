//! Whole-server, raw-HTTP tests of notifications: unread counts decided by
//! each member's push rules when an event is sent, cleared by read receipts
//! (whole-room and per thread) and by one's own messages, `/notifications`,
//! and presence delivered through `/sync`.

use crate::common;

use common::rooms::{send_json, send_text, shared_room, sync_until};
use common::{enc, expect_ok, next_batch, start, sync, Raw, V3};
use serde_json::{json, Value};

fn counts(sync: &Value, room: &str) -> (u64, u64) {
    let unread = &sync["rooms"]["join"][room]["unread_notifications"];
    (
        unread["notification_count"]
            .as_u64()
            .unwrap_or_else(|| panic!("no notification_count: {sync}")),
        unread["highlight_count"]
            .as_u64()
            .unwrap_or_else(|| panic!("no highlight_count: {sync}")),
    )
}

async fn receipt(raw: &Raw, room: &str, event: &str, thread: Option<&str>) {
    let body = match thread {
        Some(t) => json!({ "thread_id": t }),
        None => json!({}),
    };
    let path = format!("{V3}/rooms/{}/receipt/m.read/{}", enc(room), enc(event));
    expect_ok(raw.json("POST", &path, body).await, "receipt");
}

async fn notifications(raw: &Raw, query: &str) -> Value {
    expect_ok(
        raw.call("GET", &format!("{V3}/notifications{query}"), None)
            .await,
        "notifications",
    )
}

fn event_ids(list: &Value) -> Vec<String> {
    list["notifications"]
        .as_array()
        .unwrap_or_else(|| panic!("no notifications: {list}"))
        .iter()
        .map(|n| {
            n["event"]["event_id"]
                .as_str()
                .expect("event_id")
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_rules_decide_counts_and_receipts_clear_them() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("alice").await;
    let (bob, bob_id) = raw.register("bob").await;
    let room = shared_room(&alice, &bob, &bob_id).await;

    let plain = send_text(&bob, &room, "b1", "hello").await;
    let mention = send_json(
        &bob,
        &room,
        "b2",
        json!({ "msgtype": "m.text", "body": "alice: look", "m.mentions": { "user_ids": [alice_id] } }),
    )
    .await;
    // Bob may not notify the whole room (power 0 < 50): an ordinary message.
    let at_room = send_json(
        &bob,
        &room,
        "b3",
        json!({ "msgtype": "m.text", "body": "@room hi", "m.mentions": { "room": true } }),
    )
    .await;
    // Notices never notify.
    send_json(
        &bob,
        &room,
        "b4",
        json!({ "msgtype": "m.notice", "body": "bot says" }),
    )
    .await;

    let first = sync(&alice, None, 0).await;
    assert_eq!(counts(&first, &room), (3, 1), "alice's counts: {first}");

    // `/notifications`: newest first, highlights only, and pages.
    let all = notifications(&alice, "").await;
    assert_eq!(
        event_ids(&all),
        vec![at_room.clone(), mention.clone(), plain.clone()],
        "{all}"
    );
    let first_row = &all["notifications"][0];
    assert_eq!(first_row["room_id"], room.as_str(), "{all}");
    assert_eq!(first_row["read"], false, "{all}");
    assert!(first_row["ts"].as_u64().is_some(), "{all}");
    assert!(
        first_row["actions"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("notify"))),
        "{all}"
    );
    let highlights = notifications(&alice, "?only=highlight").await;
    assert_eq!(
        event_ids(&highlights),
        vec![mention.clone()],
        "{highlights}"
    );
    let page = notifications(&alice, "?limit=2").await;
    assert_eq!(
        event_ids(&page),
        vec![at_room.clone(), mention.clone()],
        "{page}"
    );
    let token = page["next_token"].as_str().expect("next_token").to_owned();
    let rest = notifications(&alice, &format!("?from={}", enc(&token))).await;
    assert_eq!(event_ids(&rest), vec![plain.clone()], "{rest}");
    assert!(rest.get("next_token").is_none(), "{rest}");

    // A room rule without actions silences the room for Alice (but Bob's
    // mention still highlights: overrides come first).
    let rule = format!("{V3}/pushrules/global/room/{}", enc(&room));
    expect_ok(
        alice.json("PUT", &rule, json!({ "actions": [] })).await,
        "room rule",
    );
    send_text(&bob, &room, "b5", "quiet please").await;
    let body = sync(&alice, None, 0).await;
    assert_eq!(counts(&body, &room), (3, 1), "muted room: {body}");
    expect_ok(alice.call("DELETE", &rule, None).await, "delete room rule");

    // A read receipt on the mention leaves only the message after it.
    let since = next_batch(&body);
    receipt(&alice, &room, &mention, None).await;
    let body = sync_until(&alice, &since, "alice's counts after the receipt", |b| {
        b["rooms"]["join"][&room]["unread_notifications"].is_object()
    })
    .await;
    assert_eq!(counts(&body, &room), (1, 0), "after the receipt: {body}");
    assert_eq!(
        event_ids(&notifications(&alice, "").await),
        vec![at_room.clone()]
    );

    // Alice (the creator) may notify the room: Bob gets a highlight. Her own
    // message reads everything before it for her.
    send_json(
        &alice,
        &room,
        "a1",
        json!({ "msgtype": "m.text", "body": "@room dinner", "m.mentions": { "room": true } }),
    )
    .await;
    assert_eq!(counts(&sync(&bob, None, 0).await, &room), (1, 1));
    assert_eq!(counts(&sync(&alice, None, 0).await, &room), (0, 0));

    // The counts are stored: a restart keeps them.
    let _server = server.restart().await;
    assert_eq!(counts(&sync(&bob, None, 0).await, &room), (1, 1));
}

/// An initial sync that asks for per-thread counts.
async fn threaded_sync(raw: &Raw) -> Value {
    let filter = json!({ "room": { "timeline": { "unread_thread_notifications": true } } });
    let path = format!("{V3}/sync?filter={}", enc(&filter.to_string()));
    expect_ok(raw.call("GET", &path, None).await, "sync")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thread_counts_are_separate_and_cleared_per_thread() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("alice").await;
    let (bob, bob_id) = raw.register("bob").await;
    let room = shared_room(&alice, &bob, &bob_id).await;

    let root = send_text(&bob, &room, "t0", "thread root").await;
    let reply = send_json(
        &bob,
        &room,
        "t1",
        json!({
            "msgtype": "m.text", "body": "in the thread",
            "m.relates_to": { "rel_type": "m.thread", "event_id": root, "is_falling_back": true, "m.in_reply_to": { "event_id": root } }
        }),
    )
    .await;

    let body = threaded_sync(&alice).await;
    let joined = &body["rooms"]["join"][&room];
    assert_eq!(counts(&body, &room), (1, 0), "main timeline: {body}");
    assert_eq!(
        joined["unread_thread_notifications"][&root]["notification_count"], 1,
        "thread counts: {body}"
    );
    // Without the filter flag, one count covers both.
    assert_eq!(counts(&sync(&alice, None, 0).await, &room), (2, 0));

    // A `main` receipt reads the main timeline only; a thread receipt its thread.
    receipt(&alice, &room, &root, Some("main")).await;
    let body = threaded_sync(&alice).await;
    assert_eq!(counts(&body, &room), (0, 0), "after main receipt: {body}");
    assert_eq!(
        body["rooms"]["join"][&room]["unread_thread_notifications"][&root]["notification_count"], 1,
        "thread untouched by a main receipt: {body}"
    );
    receipt(&alice, &room, &reply, Some(&root)).await;
    let body = threaded_sync(&alice).await;
    assert!(
        body["rooms"]["join"][&room]
            .get("unread_thread_notifications")
            .is_none(),
        "thread read: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_reaches_people_who_share_a_room() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("alice").await;
    let (bob, bob_id) = raw.register("bob").await;
    let (carol, _) = raw.register("carol").await;
    shared_room(&alice, &bob, &bob_id).await;
    let alice_since = next_batch(&sync(&alice, None, 0).await);
    let carol_since = next_batch(&sync(&carol, None, 0).await);

    let path = format!("{V3}/presence/{}/status", enc(&bob_id));
    expect_ok(
        bob.json(
            "PUT",
            &path,
            json!({ "presence": "online", "status_msg": "busy" }),
        )
        .await,
        "set presence",
    );
    let bobs = |body: &Value| -> Option<Value> {
        body["presence"]["events"]
            .as_array()?
            .iter()
            .find(|e| e["sender"] == bob_id.as_str() && e["content"]["status_msg"] == "busy")
            .cloned()
    };
    let body = sync_until(&alice, &alice_since, "bob's presence", |b| {
        bobs(b).is_some()
    })
    .await;
    let event = bobs(&body).expect("bob's presence");
    assert_eq!(event["type"], "m.presence", "{event}");
    assert_eq!(event["content"]["presence"], "online", "{event}");
    assert_eq!(event["content"]["currently_active"], true, "{event}");

    // Carol shares no room with Bob: she never sees him.
    let body = sync(&carol, Some(&carol_since), 500).await;
    assert!(bobs(&body).is_none(), "carol saw bob's presence: {body}");

    // Syncing as unavailable keeps the status message.
    expect_ok(
        bob.call(
            "GET",
            &format!("{V3}/sync?set_presence=unavailable&timeout=0"),
            None,
        )
        .await,
        "bob syncs",
    );
    let seen = expect_ok(alice.call("GET", &path, None).await, "get presence");
    assert_eq!(seen["presence"], "unavailable", "{seen}");
    assert_eq!(seen["status_msg"], "busy", "{seen}");
}

/// A rule set stored before the server learnt a default rule gets it when
/// read, keeping what the user changed, in `/pushrules` and in `/sync`.
#[tokio::test]
async fn stored_push_rules_gain_new_server_default_rules() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("pr_alice").await;
    let rules = format!("{V3}/pushrules/");
    let mut global = expect_ok(alice.call("GET", &rules, None).await, "rules")["global"].clone();
    // As stored by an older server: no room-mention rule, and the user had
    // turned the contains-display-name rule off.
    let overrides = global["override"].as_array_mut().expect("override rules");
    overrides.retain(|r| r["rule_id"] != ".m.rule.is_room_mention");
    for rule in global["override"].as_array_mut().expect("override") {
        if rule["rule_id"] == ".m.rule.suppress_notices" {
            rule["enabled"] = json!(false);
        }
    }
    let user = matrix_sdk::ruma::UserId::parse(&alice_id).expect("user id");
    server
        .services
        .account_data
        .set(&user, None, "m.push_rules", &json!({ "global": global }))
        .await
        .expect("store the old rule set");
    // A fresh server reads what is stored (no cached rules).
    let server = server.restart().await;
    let alice = alice.with_token(alice.token.as_deref().expect("token"));
    let _ = &server;

    let read = expect_ok(alice.call("GET", &rules, None).await, "rules");
    let ids = |body: &Value| -> Vec<(String, bool)> {
        body["global"]["override"]
            .as_array()
            .expect("override")
            .iter()
            .map(|r| {
                (
                    r["rule_id"].as_str().unwrap_or_default().to_owned(),
                    r["enabled"] == true,
                )
            })
            .collect()
    };
    let overrides = ids(&read);
    assert!(
        overrides.contains(&(".m.rule.is_room_mention".to_owned(), true)),
        "{overrides:?}"
    );
    assert!(
        overrides.contains(&(".m.rule.suppress_notices".to_owned(), false)),
        "{overrides:?}"
    );
    let initial = sync(&alice, None, 0).await;
    let pushed = initial["account_data"]["events"]
        .as_array()
        .expect("account data")
        .iter()
        .find(|e| e["type"] == "m.push_rules")
        .expect("m.push_rules in sync")
        .clone();
    assert_eq!(
        ids(&pushed["content"]),
        overrides,
        "sync and /pushrules agree"
    );
}
