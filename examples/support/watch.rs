//! Watching for messages as a long-polling client (the benchmarks that
//! time deliveries).

#![allow(dead_code)]

use serde_json::Value;

use super::{client, Api};

/// When each watched message body reached the user watching for it.
pub type Arrivals =
    std::sync::Arc<parking_lot::Mutex<std::collections::HashMap<String, std::time::Instant>>>;

/// Long-polls as `user` with `filter` until `stop`, noting when each
/// message body of another sender arrives.
pub async fn sync_loop(
    api: std::sync::Arc<Api>,
    user: client::User,
    filter: &str,
    arrivals: Arrivals,
    stop: std::sync::Arc<tokio::sync::Notify>,
) {
    let first = api.sync(&user, None, 0, Some(filter)).await;
    let mut since = first["next_batch"].as_str().unwrap_or_default().to_owned();
    loop {
        let poll = api.sync(&user, Some(&since), 30_000, Some(filter));
        let body: Value = tokio::select! {
            body = poll => body,
            _ = stop.notified() => return,
        };
        let now = std::time::Instant::now();
        if let Some(rooms) = body["rooms"]["join"].as_object() {
            let mut seen = arrivals.lock();
            for room in rooms.values() {
                for event in room["timeline"]["events"].as_array().into_iter().flatten() {
                    if event["sender"] != user.id.as_str() {
                        if let Some(text) = event["content"]["body"].as_str() {
                            seen.entry(text.to_owned()).or_insert(now);
                        }
                    }
                }
            }
        }
        since = body["next_batch"].as_str().unwrap_or_default().to_owned();
    }
}
