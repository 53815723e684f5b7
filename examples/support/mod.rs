//! What both benchmarks need: starting the real binary, waiting for it,
//! reading its memory from /proc.

#![allow(dead_code)]

pub mod client;
pub mod federation;
pub mod watch;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// A loopback port free now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port()
}

pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Resident memory now.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// Highest resident memory so far.
pub fn hwm_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// CPU time the process has used so far (user + system), in milliseconds.
#[allow(dead_code)] // the core benchmark's only
pub fn cpu_ms(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) * 10
}

/// The `matrixos` binary next to this example (or `MATRIXOS_SERVER_BIN`,
/// to measure another build), on a loopback port with `data` as its data
/// directory and send limits off; add more environment and spawn.
pub fn server_command(data: &Path, port: u16) -> Command {
    server_command_of(&server_binary(), data, port)
}

/// The binary [`server_command`] starts.
pub fn server_binary() -> PathBuf {
    match std::env::var_os("MATRIXOS_SERVER_BIN") {
        Some(path) => PathBuf::from(path),
        None => {
            let exe: PathBuf = std::env::current_exe().expect("exe");
            exe.parent()
                .and_then(|p| p.parent())
                .expect("target dir")
                .join("matrixos")
        }
    }
}

/// [`server_command`] for the binary `server`.
pub fn server_command_of(server: &Path, data: &Path, port: u16) -> Command {
    let mut command = Command::new(server);
    command
        .env("MATRIXOS_DATA_DIR", data)
        .env("MATRIXOS_LISTEN", format!("127.0.0.1:{port}"))
        .env("MATRIXOS_RATE_LIMIT_SEND", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    command
}

/// A started server, stopped when dropped (also when a benchmark panics,
/// so no server outlives it).
pub struct Server(std::process::Child);

impl std::ops::Deref for Server {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server `command` describes.
pub fn spawn(command: &mut Command) -> Server {
    Server(
        command
            .spawn()
            .expect("start matrixos (build it first: cargo build)"),
    )
}

/// Waits until the server answers `/versions` (at most ten seconds).
pub async fn wait_ready(http: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if http
            .get(format!("{base}/_matrix/client/versions"))
            .send()
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not start");
}

/// The client API of the server under test.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    /// One request; panics unless it succeeds, answers the JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request failed");
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }
}
