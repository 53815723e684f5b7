//! The client calls the benchmarks make, as a Matrix client would.

#![allow(dead_code)]

use std::sync::Arc;

use serde_json::{json, Value};

use super::{enc, Api};

#[derive(Clone)]
pub struct User {
    pub id: String,
    pub token: String,
}

impl Api {
    pub async fn register(&self, name: &str) -> User {
        let b = self
            .call(reqwest::Method::POST, "/_matrix/client/v3/register", None, Some(json!({
                "username": name, "password": "bench-password", "auth": {"type": "m.login.dummy"}
            })))
            .await;
        User {
            id: b["user_id"].as_str().expect("user_id").into(),
            token: b["access_token"].as_str().expect("token").into(),
        }
    }

    pub async fn create_room(&self, user: &User, invite: &[&User]) -> String {
        let invite: Vec<&str> = invite.iter().map(|u| u.id.as_str()).collect();
        let b = self
            .call(
                reqwest::Method::POST,
                "/_matrix/client/v3/createRoom",
                Some(&user.token),
                Some(json!({"preset": "public_chat", "invite": invite})),
            )
            .await;
        b["room_id"].as_str().expect("room_id").into()
    }

    pub async fn join(&self, user: &User, room: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/_matrix/client/v3/join/{}", enc(room)),
            Some(&user.token),
            Some(json!({})),
        )
        .await;
    }

    pub async fn send(&self, user: &User, room: &str, txn: &str, body: &str) -> String {
        let b = self
            .call(
                reqwest::Method::PUT,
                &format!(
                    "/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}",
                    enc(room)
                ),
                Some(&user.token),
                Some(json!({"msgtype": "m.text", "body": body})),
            )
            .await;
        b["event_id"].as_str().expect("event_id").into()
    }

    pub async fn sync(
        &self,
        user: &User,
        since: Option<&str>,
        timeout_ms: u64,
        filter: Option<&str>,
    ) -> Value {
        let mut path = format!("/_matrix/client/v3/sync?timeout={timeout_ms}");
        if let Some(s) = since {
            path.push_str(&format!("&since={s}"));
        }
        if let Some(f) = filter {
            path.push_str(&format!("&filter={}", enc(f)));
        }
        self.call(reqwest::Method::GET, &path, Some(&user.token), None)
            .await
    }

    /// `count` new users (`sender0`, `sender1`, ...) in one room the first
    /// of them created.
    pub async fn senders_in_one_room(&self, count: usize) -> (Vec<User>, String) {
        let mut senders = Vec::new();
        for i in 0..count {
            senders.push(self.register(&format!("sender{i}")).await);
        }
        let room = self.create_room(&senders[0], &[]).await;
        for s in &senders[1..] {
            self.join(s, &room).await;
        }
        (senders, room)
    }
}

/// Every sender sends `per_sender` messages to `room` one after another,
/// all senders at once; transaction ids are `{txn_prefix}{sender}-{n}`.
/// Answers how many were sent.
pub async fn send_from_each(
    api: &Arc<Api>,
    senders: &[User],
    room: &str,
    per_sender: usize,
    txn_prefix: &str,
) -> usize {
    let mut tasks = Vec::new();
    for (i, s) in senders.iter().cloned().enumerate() {
        let (api, room, prefix) = (api.clone(), room.to_owned(), txn_prefix.to_owned());
        tasks.push(tokio::spawn(async move {
            for n in 0..per_sender {
                let txn = format!("{prefix}{i}-{n}");
                api.send(&s, &room, &txn, "benchmark message").await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender task");
    }
    per_sender * senders.len()
}
