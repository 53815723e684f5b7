//! Room helpers shared by the raw-HTTP tests: sending, joining, inviting,
//! and waiting for something to arrive through `/sync`.

use serde_json::{json, Value};

use super::{create_room, enc, expect_ok, next_batch, sync, Raw, V3};

pub async fn send_json(raw: &Raw, room: &str, txn: &str, content: Value) -> String {
    let res = raw
        .json(
            "PUT",
            &format!("{V3}/rooms/{}/send/m.room.message/{}", enc(room), enc(txn)),
            content,
        )
        .await;
    expect_ok(res, "send")["event_id"]
        .as_str()
        .expect("event_id")
        .to_owned()
}

pub async fn send_text(raw: &Raw, room: &str, txn: &str, text: &str) -> String {
    send_json(raw, room, txn, json!({ "msgtype": "m.text", "body": text })).await
}

/// The bodies of the events in a JSON list of events, in order (events
/// without a body left out); none when it is not a list.
pub fn text_bodies(events: &Value) -> Vec<String> {
    events
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect()
}

pub async fn join(raw: &Raw, room: &str) -> (u16, Value) {
    raw.json("POST", &format!("{V3}/join/{}", enc(room)), json!({}))
        .await
}

pub async fn leave(raw: &Raw, room: &str) -> (u16, Value) {
    raw.json(
        "POST",
        &format!("{V3}/rooms/{}/leave", enc(room)),
        json!({}),
    )
    .await
}

pub async fn invite(raw: &Raw, room: &str, user: &str) {
    let res = raw
        .json(
            "POST",
            &format!("{V3}/rooms/{}/invite", enc(room)),
            json!({ "user_id": user }),
        )
        .await;
    expect_ok(res, "invite");
}

/// Alice's room with Bob invited and joined.
pub async fn shared_room(alice: &Raw, bob: &Raw, bob_id: &str) -> String {
    let room = create_room(
        alice,
        json!({ "preset": "private_chat", "name": "Test room" }),
    )
    .await;
    invite(alice, &room, bob_id).await;
    expect_ok(join(bob, &room).await, "join");
    room
}

/// Incremental syncs from `since` (bounded) until `pred` holds on one.
pub async fn sync_until(
    raw: &Raw,
    since: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let mut since = since.to_owned();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let body = sync(raw, Some(&since), 2000).await;
        if pred(&body) {
            return body;
        }
        since = next_batch(&body);
        seen.push(body);
    }
    panic!("{what}: never seen in 10 incremental syncs: {seen:?}");
}
