//! What the federation benchmarks share: federating servers on loopback
//! (TLS federation listener, loopback allowed, no AI), and waiting for a
//! watched message.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::watch::Arrivals;
use super::{free_port, Api};

/// A federating server: its client API and its process.
pub struct Peer {
    pub api: Arc<Api>,
    pub name: String,
    pub process: super::Server,
}

/// Starts a federating server with its data in `data`.
pub async fn start(data: &Path) -> Peer {
    let (port, fed) = (free_port(), free_port());
    let name = format!("localhost:{fed}");
    let process = super::spawn(
        super::server_command(data, port)
            .env("MATRIXOS_SERVER_NAME", &name)
            .env("MATRIXOS_FEDERATION_LISTEN", format!("127.0.0.1:{fed}"))
            .env("MATRIXOS_FEDERATION_IP_RANGE_ALLOWLIST", "127.0.0.0/8")
            .env("MATRIXOS_FEDERATION_VERIFY_CERTIFICATES", "false")
            .env("MATRIXOS_TRUSTED_KEY_SERVERS", "")
            .env("MATRIXOS_AI_ENABLED", "false")
            .env("MATRIXOS_REGISTRATION", "open")
            .env("MATRIXOS_RATE_LIMIT_REGISTER", "0"),
    );
    let api = Arc::new(Api {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}"),
    });
    super::wait_ready(&api.http, &api.base).await;
    Peer { api, name, process }
}

/// A watcher's sync filter: a whole burst in one answer, no presence.
pub const FILTER: &str = r#"{"room":{"timeline":{"limit":1000}},"presence":{"not_types":["*"]}}"#;

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Waits (bounded) until `body` has arrived.
pub async fn arrived(arrivals: &Arrivals, body: &str, limit: Duration) -> Option<Instant> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(at) = arrivals.lock().get(body) {
            return Some(*at);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// Joins `user` of `peer` to `room` through the server `via`.
pub async fn join(peer: &Peer, user: &super::client::User, room: &str, via: &str) {
    peer.api
        .call(
            reqwest::Method::POST,
            &format!(
                "/_matrix/client/v3/join/{}?server_name={}",
                super::enc(room),
                super::enc(via)
            ),
            Some(&user.token),
            Some(serde_json::json!({})),
        )
        .await;
}
