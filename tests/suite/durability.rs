//! Nothing acknowledged is lost: kill -9 the real server binary in the middle
//! of a concurrent send load, restart it on the same data directory, and
//! find every event id it acknowledged.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::common::process::ServerProcess;

async fn post(http: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("request");
    assert!(res.status().is_success(), "status {}", res.status());
    res.json().await.expect("json")
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9() {
    let mut server = ServerProcess::start().await;
    let base = server.base_url();
    let http = reqwest::Client::new();

    let reg = post(
        &http,
        format!("{base}/_matrix/client/v3/register"),
        None,
        json!({
            "username": "durable", "password": "pw-durable", "auth": {"type": "m.login.dummy"}
        }),
    )
    .await;
    let token = reg["access_token"].as_str().expect("token").to_owned();
    let room = post(
        &http,
        format!("{base}/_matrix/client/v3/createRoom"),
        Some(&token),
        json!({}),
    )
    .await["room_id"]
        .as_str()
        .expect("room_id")
        .to_owned();

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut senders = Vec::new();
    for s in 0..8 {
        let (http, base, token, room, acked) = (
            http.clone(),
            base.clone(),
            token.clone(),
            room.clone(),
            acked.clone(),
        );
        senders.push(tokio::spawn(async move {
            // Bounded: at most 400 sends per task; stops at the first failure
            // (the server is gone).
            for n in 0..400 {
                let url = format!(
                    "{base}/_matrix/client/v3/rooms/{}/send/m.room.message/k{s}-{n}",
                    enc(&room)
                );
                let res = http
                    .put(url)
                    .bearer_auth(&token)
                    .json(&json!({"msgtype": "m.text", "body": format!("{s}-{n}")}))
                    .send()
                    .await;
                let Ok(res) = res else { return };
                if !res.status().is_success() {
                    return;
                }
                let Ok(body) = res.json::<Value>().await else {
                    return;
                };
                if let Some(id) = body["event_id"].as_str() {
                    acked.lock().push(id.to_owned());
                }
            }
        }));
    }
    // Kill as soon as a good number of sends were acknowledged.
    for _ in 0..2000 {
        if acked.lock().len() >= 300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill9();
    for s in senders {
        let _ = s.await;
    }
    let acked = acked.lock().clone();
    assert!(
        acked.len() >= 100,
        "too few acknowledged events before the kill: {}",
        acked.len()
    );

    server.restart().await;
    for id in &acked {
        let url = format!(
            "{base}/_matrix/client/v3/rooms/{}/event/{}",
            enc(&room),
            enc(id)
        );
        let res = http
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("get event");
        assert_eq!(
            res.status().as_u16(),
            200,
            "acknowledged event {id} lost after kill -9"
        );
    }
    // The room still accepts events after recovery.
    let url = format!(
        "{base}/_matrix/client/v3/rooms/{}/send/m.room.message/after",
        enc(&room)
    );
    let res = http
        .put(url)
        .bearer_auth(&token)
        .json(&json!({"msgtype": "m.text", "body": "after"}))
        .send()
        .await
        .expect("send after restart");
    assert!(
        res.status().is_success(),
        "send after restart: {}",
        res.status()
    );
}
