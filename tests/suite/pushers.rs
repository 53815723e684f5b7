//! Pushers: matrix-sdk registers `http` pushers, and a push gateway (a small
//! HTTP server in this test, on loopback) receives what the spec's push
//! gateway API describes. A pushkey the gateway rejects is removed.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use axum::{Json, Router};
use matrix_sdk::ruma::api::client::push::{Pusher, PusherIds, PusherInit, PusherKind};
use matrix_sdk::ruma::push::{HttpPusherData, PushFormat};
use parking_lot::Mutex;
use serde_json::{json, Value};

use common::rooms::{invite, join, send_text};
use common::{create_room, expect_error, expect_ok, Raw, V3};

const APP: &str = "org.example.chat";

/// A push gateway that records every notification and rejects the pushkeys
/// it is told to.
#[derive(Clone, Default)]
struct Gateway {
    received: Arc<Mutex<Vec<Value>>>,
    reject: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    async fn start(&self) -> String {
        let me = self.clone();
        let app = Router::new().route(
            "/_matrix/push/v1/notify",
            post(move |Json(body): Json<Value>| {
                let me = me.clone();
                async move {
                    me.received.lock().push(body);
                    Json(json!({ "rejected": *me.reject.lock() }))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind gateway");
        let addr = listener.local_addr().expect("gateway address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/_matrix/push/v1/notify")
    }

    /// Waits (bounded) for the notification about `event_id`.
    async fn wait_for(&self, event_id: &str) -> Value {
        for _ in 0..100 {
            if let Some(n) = self
                .received
                .lock()
                .iter()
                .find(|n| n["notification"]["event_id"] == event_id)
            {
                return n["notification"].clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the gateway never received {event_id}: {:?}",
            self.received.lock()
        );
    }
}

fn pusher(url: &str, pushkey: &str, format: Option<PushFormat>) -> Pusher {
    let mut data = HttpPusherData::new(url.to_owned());
    data.format = format;
    PusherInit {
        ids: PusherIds::new(pushkey.to_owned(), APP.to_owned()),
        kind: PusherKind::Http(data),
        app_display_name: "Example Chat".to_owned(),
        device_display_name: "Alice's phone".to_owned(),
        profile_tag: None,
        lang: "en".to_owned(),
    }
    .into()
}

async fn pushkeys(raw: &Raw) -> Vec<String> {
    let list = expect_ok(
        raw.call("GET", &format!("{V3}/pushers"), None).await,
        "pushers",
    );
    list["pushers"]
        .as_array()
        .unwrap_or_else(|| panic!("no pushers list: {list}"))
        .iter()
        .map(|p| p["pushkey"].as_str().expect("pushkey").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_receive_notifications_for_registered_pushers() {
    common::init_logging();
    let server = common::start().await;
    let gateway = Gateway::default();
    let url = gateway.start().await;

    let client = common::sdk::register(&server, "alice", "secret-pw").await;
    let alice = Raw::new(&server).with_token(&client.access_token().expect("token"));
    let alice_id = client.user_id().expect("user id").to_string();
    let (bob, _) = Raw::new(&server).register("bob").await;

    client
        .pusher()
        .set(pusher(&url, "key-1", None), false)
        .await
        .expect("matrix-sdk sets a pusher");
    let listed = expect_ok(
        alice.call("GET", &format!("{V3}/pushers"), None).await,
        "pushers",
    );
    let first = &listed["pushers"][0];
    assert_eq!(first["app_id"], APP, "{listed}");
    assert_eq!(first["kind"], "http", "{listed}");
    assert_eq!(first["data"]["url"], url.as_str(), "{listed}");
    assert_eq!(first["device_display_name"], "Alice's phone", "{listed}");

    // Bad pushers are refused and change nothing.
    let bad = |data: Value| {
        json!({
            "app_id": APP, "pushkey": "bad", "kind": "http", "app_display_name": "x",
            "device_display_name": "x", "lang": "en", "data": data,
        })
    };
    let set = format!("{V3}/pushers/set");
    expect_error(
        &alice
            .json(
                "POST",
                &set,
                bad(json!({ "url": "http://127.0.0.1/elsewhere" })),
            )
            .await,
        400,
        "M_INVALID_PARAM",
        "gateway URL with the wrong path",
    );
    expect_error(
        &alice.json("POST", &set, bad(json!({}))).await,
        400,
        "M_MISSING_PARAM",
        "http pusher without a URL",
    );
    let mut email = bad(json!({}));
    email["kind"] = json!("email");
    expect_error(
        &alice.json("POST", &set, email).await,
        400,
        "M_INVALID_PARAM",
        "email pusher",
    );
    expect_error(
        &alice
            .json("POST", &set, json!({ "kind": null, "pushkey": "k" }))
            .await,
        400,
        "M_MISSING_PARAM",
        "no app_id",
    );
    assert_eq!(pushkeys(&alice).await, vec!["key-1".to_owned()]);

    // Bob writes to Alice in a room of two: the gateway hears of it.
    let room = create_room(&bob, json!({ "preset": "private_chat", "name": "Lunch" })).await;
    invite(&bob, &room, &alice_id).await;
    expect_ok(join(&alice, &room).await, "alice joins");
    let event = send_text(&bob, &room, "p1", "pizza?").await;
    let n = gateway.wait_for(&event).await;
    assert_eq!(n["room_id"], room.as_str(), "{n}");
    assert_eq!(n["room_name"], "Lunch", "{n}");
    assert_eq!(n["type"], "m.room.message", "{n}");
    assert_eq!(n["sender"], "@bob:localhost", "{n}");
    assert_eq!(n["content"]["body"], "pizza?", "{n}");
    assert_eq!(n["counts"]["unread"], 1, "{n}");
    assert_eq!(n["prio"], "high", "{n}");
    let device = &n["devices"][0];
    assert_eq!(device["app_id"], APP, "{n}");
    assert_eq!(device["pushkey"], "key-1", "{n}");
    assert_eq!(device["tweaks"]["sound"], "default", "{n}");
    assert!(
        device["data"].get("url").is_none(),
        "the URL is not sent on: {n}"
    );
    assert!(device["pushkey_ts"].as_u64().is_some_and(|t| t > 0), "{n}");

    // An event_id_only pusher gets ids and counts, never contents.
    client
        .pusher()
        .set(pusher(&url, "key-2", Some(PushFormat::EventIdOnly)), true)
        .await
        .expect("second pusher");
    client
        .pusher()
        .delete(PusherIds::new("key-1".to_owned(), APP.to_owned()))
        .await
        .expect("matrix-sdk deletes a pusher");
    assert_eq!(pushkeys(&alice).await, vec!["key-2".to_owned()]);
    let event = send_text(&bob, &room, "p2", "secret topping").await;
    let n = gateway.wait_for(&event).await;
    assert!(
        n.get("content").is_none() && n.get("sender").is_none(),
        "{n}"
    );
    assert_eq!(n["devices"][0]["pushkey"], "key-2", "{n}");
    assert_eq!(n["counts"]["unread"], 1, "{n}");

    // The gateway rejects key-2: the pusher is removed.
    gateway.reject.lock().push("key-2".to_owned());
    let event = send_text(&bob, &room, "p3", "hello?").await;
    gateway.wait_for(&event).await;
    let mut removed = false;
    for _ in 0..50 {
        if pushkeys(&alice).await.is_empty() {
            removed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(removed, "a rejected pushkey must be removed");
}
