//! Running a server: `matrixos init`, backup and restore under load, the
//! data directory's schema version, `/metrics`, JSON logs, the health check.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use matrixos_storage::tables::SERVER_SETTINGS;
use matrixos_storage::{Batch, Db, DbOptions};
use serde_json::{json, Value};

use crate::common::llm::{text, ScriptedLlm};
use crate::common::process::ServerProcess;
use crate::common::{self, create_room, enc, expect_ok, start_with, Raw};

const V3: &str = "/_matrix/client/v3";
const BIN: &str = env!("CARGO_BIN_EXE_matrixos");

fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// The binary with a clean environment for the settings tests give.
fn matrixos(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("MATRIXOS_CONFIG")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    command
}

/// `init` of `ops.test` with the admin `alice`.
fn init_alice(config: &Path, data: &Path) -> Command {
    matrixos(&[
        "--config",
        config.to_str().unwrap(),
        "init",
        "--domain",
        "ops.test",
        "--admin",
        "alice",
        "--data-dir",
        data.to_str().unwrap(),
    ])
}

fn run(mut command: impl std::borrow::BorrowMut<Command>) -> Output {
    command.borrow_mut().output().expect("run matrixos")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn wait_healthy(base: &str) {
    let http = reqwest::Client::new();
    for _ in 0..400 {
        if let Ok(r) = http.get(format!("{base}/health")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server at {base} did not come up");
}

/// A server process this test owns; killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The same user, token and all, at another address.
fn at(raw: &Raw, base: &str) -> Raw {
    Raw {
        http: raw.http.clone(),
        base: base.to_owned(),
        token: raw.token.clone(),
    }
}

async fn login(base: &str, user: &str, password: &str) -> (u16, Value) {
    let raw = Raw {
        http: reqwest::Client::new(),
        base: base.to_owned(),
        token: None,
    };
    raw.json(
        "POST",
        &format!("{V3}/login"),
        json!({
            "type": "m.login.password",
            "identifier": { "type": "m.id.user", "user": user },
            "password": password,
        }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_sets_up_a_server_that_serves_its_name_and_admin() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("matrixos.toml");
    let data = dir.path().join("data");
    let config_arg = config.to_str().unwrap();
    let out = run(init_alice(&config, &data).env("MATRIXOS_AI_ENABLED", "false"));
    assert!(out.status.success(), "init failed: {}", stderr(&out));
    let printed = stdout(&out);
    let password = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("password"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no password in {printed}"))
        .to_owned();
    assert_eq!(password.len(), 24, "{printed}");
    for expected in ["@alice:ops.test", "ops.test.  A", "serve", config_arg] {
        assert!(
            printed.contains(expected),
            "{expected:?} missing from:\n{printed}"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the config holds a secret");
    let text = std::fs::read_to_string(&config).unwrap();
    let parsed: toml::Value = toml::from_str(&text).expect("the written config parses");
    assert_eq!(parsed["server_name"].as_str(), Some("ops.test"));
    assert_eq!(parsed["registration"].as_str(), Some("closed"));
    assert_eq!(
        parsed["registration_shared_secret"].as_str().map(str::len),
        Some(40)
    );

    // A second init changes nothing.
    let again = run(init_alice(&config, &data));
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);

    let listen = free_port();
    let _server = Child(
        matrixos(&["--config", config_arg, "serve"])
            .env("MATRIXOS_LISTEN", listen.to_string())
            .env("MATRIXOS_AI_ENABLED", "false")
            .stdout(Stdio::null())
            .spawn()
            .expect("serve"),
    );
    let base = format!("http://{listen}");
    wait_healthy(&base).await;
    let keys: Value = reqwest::get(format!("{base}/_matrix/key/v2/server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys["server_name"], "ops.test");
    let (status, body) = login(&base, "alice", &password).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], "@alice:ops.test");
    let admin = Raw {
        http: reqwest::Client::new(),
        base: base.clone(),
        token: body["access_token"].as_str().map(str::to_owned),
    };
    let reports = admin
        .call("GET", "/_synapse/admin/v1/event_reports", None)
        .await;
    expect_ok(reports, "the first account is an admin");
    let (status, _) = login(&base, "alice", "wrong-password").await;
    assert_eq!(status, 403);

    let health = run(matrixos(&["healthcheck"]).env("MATRIXOS_LISTEN", listen.to_string()));
    assert!(health.status.success(), "{}", stderr(&health));
    let nobody = run(matrixos(&["healthcheck"]).env("MATRIXOS_LISTEN", free_port().to_string()));
    assert!(!nobody.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_refuses_a_bad_domain_and_a_used_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("a.toml");
    let out = run(matrixos(&[
        "--config",
        config.to_str().unwrap(),
        "init",
        "--domain",
        "not a domain",
    ]));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not a server name"),
        "{}",
        stderr(&out)
    );
    assert!(!config.exists());
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("something"), "x").unwrap();
    let out = run(matrixos(&[
        "--config",
        config.to_str().unwrap(),
        "init",
        "--domain",
        "ops.test",
        "--data-dir",
        data.to_str().unwrap(),
    ]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is not empty"), "{}", stderr(&out));
    assert!(!config.exists());
}

/// A service's `HOME` may be a place it cannot read (`/root` under
/// `setpriv` or `sudo -u`): the git homes ignore the account's git
/// configuration, so `init` (which creates the admin's home) works all
/// the same. A symbolic link loop makes `~/.gitconfig` unreadable even
/// for root, which runs the tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_works_whatever_home_the_account_has() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("loop");
    std::os::unix::fs::symlink(&home, &home).unwrap();
    let data = dir.path().join("data");
    let out = run(init_alice(&dir.path().join("m.toml"), &data).env("HOME", &home));
    assert!(out.status.success(), "init failed: {}", stderr(&out));
    assert!(data.join("homes/alice/.git").is_dir(), "the admin's home");
}

/// Sends messages one after another until told to stop (at most `limit`);
/// returns the ids of the acknowledged ones, in order.
async fn send_until(
    raw: Raw,
    room: String,
    stop: tokio::sync::watch::Receiver<bool>,
    acked: std::sync::Arc<parking_lot::Mutex<Vec<String>>>,
    limit: usize,
) {
    for n in 0..limit {
        if *stop.borrow() {
            return;
        }
        let path = format!("{V3}/rooms/{}/send/m.room.message/load{n}", enc(&room));
        let (status, body) = raw
            .json(
                "PUT",
                &path,
                json!({ "msgtype": "m.text", "body": format!("message {n}") }),
            )
            .await;
        assert_eq!(status, 200, "send {n}: {body}");
        acked
            .lock()
            .push(body["event_id"].as_str().unwrap().to_owned());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_during_sends_restores_every_acknowledged_event() {
    let server = ServerProcess::start().await;
    let anon = server.client();
    let (alice, _) = anon.register("alice").await;
    let room = create_room(&alice, json!({ "name": "busy" })).await;
    let acked = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let load = tokio::spawn(send_until(
        at(&alice, &alice.base),
        room.clone(),
        stopped,
        acked.clone(),
        5_000,
    ));
    while acked.lock().len() < 100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Everything acknowledged before the backup starts must be in it.
    let before: Vec<String> = acked.lock().clone();
    let backup = tempfile::tempdir().unwrap();
    let dest = backup.path().join("backup");
    let data_dir = server.data_dir().to_owned();
    let dest_arg = dest.clone();
    let out = tokio::task::spawn_blocking(move || {
        run(matrixos(&["backup", dest_arg.to_str().unwrap()]).env("MATRIXOS_DATA_DIR", data_dir))
    })
    .await
    .unwrap();
    let during = acked.lock().len() - before.len();
    stop.send(true).unwrap();
    load.await.unwrap();
    assert!(out.status.success(), "backup failed: {}", stderr(&out));
    assert!(
        stdout(&out).contains("from the running server"),
        "the live server made the checkpoint: {}",
        stdout(&out)
    );
    assert!(dest.join("db").is_dir() && dest.join("homes").is_dir());
    assert!(!dest.join("control.sock").exists());

    // A second backup into the same place is refused.
    let again =
        run(matrixos(&["backup", dest.to_str().unwrap()])
            .env("MATRIXOS_DATA_DIR", server.data_dir()));
    assert!(!again.status.success());

    let restored = tempfile::tempdir().unwrap();
    let new_data = restored.path().join("data");
    let out =
        run(matrixos(&["restore", dest.to_str().unwrap()]).env("MATRIXOS_DATA_DIR", &new_data));
    assert!(out.status.success(), "restore failed: {}", stderr(&out));
    // Not over a data directory in use.
    let over =
        run(matrixos(&["restore", dest.to_str().unwrap()])
            .env("MATRIXOS_DATA_DIR", server.data_dir()));
    assert!(!over.status.success());
    assert!(stderr(&over).contains("is not empty"), "{}", stderr(&over));
    drop(server);

    let listen = free_port();
    let _copy = Child(
        matrixos(&["serve"])
            .env("MATRIXOS_DATA_DIR", &new_data)
            .env("MATRIXOS_LISTEN", listen.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("serve the restored copy"),
    );
    let base = format!("http://{listen}");
    wait_healthy(&base).await;
    // The access token is in the restored database too.
    let copy = at(&alice, &base);
    for id in &before {
        let path = format!("{V3}/rooms/{}/event/{}", enc(&room), enc(id));
        let event = expect_ok(copy.call("GET", &path, None).await, "an acknowledged event");
        assert_eq!(event["event_id"], *id);
    }
    eprintln!(
        "backup: {} events acknowledged before it began (all restored), {during} during it",
        before.len()
    );
    // The people's git homes came along.
    let homes: Vec<_> = std::fs::read_dir(new_data.join("homes")).unwrap().collect();
    assert!(!homes.is_empty());
}

fn set_setting(data_dir: &Path, key: &str, value: Option<Vec<u8>>) {
    let db = Db::open(&data_dir.join("db"), DbOptions::default()).unwrap();
    let mut batch = Batch::new();
    match value {
        Some(v) => SERVER_SETTINGS.put(&mut batch, key, &v),
        None => SERVER_SETTINGS.delete(&mut batch, key),
    }
    db.write(batch).unwrap();
}

fn setting(data_dir: &Path, key: &str) -> Option<Vec<u8>> {
    let db = Db::open(&data_dir.join("db"), DbOptions::default()).unwrap();
    SERVER_SETTINGS.get(&db, key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_data_dir_is_refused_and_an_older_one_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let with_data = |args: &[&str]| {
        let mut command = matrixos(args);
        command.env("MATRIXOS_DATA_DIR", &data);
        command
    };
    let out = run(&mut with_data(&[
        "register",
        "--user",
        "alice",
        "--password",
        "pw-123456",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let current = matrixos::ops::schema::CURRENT;
    assert_eq!(
        setting(&data, "schema_version"),
        Some(current.to_be_bytes().to_vec())
    );

    // Written by a newer build: refused, and left as it was.
    set_setting(&data, "schema_version", Some(99u32.to_be_bytes().to_vec()));
    let out = run(with_data(&["serve"]).env("MATRIXOS_LISTEN", free_port().to_string()));
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("schema version 99") && message.contains("newer Matrix OS"),
        "{message}"
    );
    assert_eq!(
        setting(&data, "schema_version"),
        Some(99u32.to_be_bytes().to_vec())
    );

    // Version 1: no version stored, homes at their plain names.
    let homes = matrixos_kernel::HomesDir::open(&data.join("homes")).unwrap();
    let encoded = homes.path_of("alice");
    assert!(encoded.join(".git").is_dir(), "alice's home exists");
    let plain = data.join("homes").join("alice");
    if encoded != plain {
        std::fs::rename(&encoded, &plain).unwrap();
    }
    set_setting(&data, "schema_version", None);
    set_setting(&data, "homes_layout", None);
    let out = run(&mut with_data(&[
        "register",
        "--user",
        "bob",
        "--password",
        "pw-123456",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        setting(&data, "schema_version"),
        Some(current.to_be_bytes().to_vec())
    );
    assert!(encoded.join(".git").is_dir(), "alice's home was moved back");
    if encoded != plain {
        assert!(!plain.exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_events_and_ai_runs() {
    let llm = ScriptedLlm::start().await;
    let metrics = free_port();
    let base = llm.base.clone();
    let server = start_with(move |c| {
        crate::ai_user::with_model(c, "anthropic", base);
        c.metrics_listen = Some(metrics);
    })
    .await;
    let anon = Raw::new(&server);
    let (alice, _, dm) = crate::ai_user::alice_and_her_ai(&anon).await;
    llm.set_fallback(text("Hello from the model."));
    common::rooms::send_text(&alice, &dm, "m1", "hi").await;
    let scrape = || async {
        reqwest::get(format!("http://{metrics}/metrics"))
            .await
            .expect("metrics answer")
            .text()
            .await
            .unwrap()
    };
    let value = |text: &str, series: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    };
    let mut page = String::new();
    for _ in 0..200 {
        page = scrape().await;
        if value(&page, "matrixos_ai_runs_total{outcome=\"ok\"}") == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        value(&page, "matrixos_ai_runs_total{outcome=\"ok\"}"),
        Some(1.0),
        "{page}"
    );
    assert!(value(&page, "matrixos_ai_tokens_total{direction=\"in\"}").unwrap() > 0.0);
    assert!(value(&page, "matrixos_ai_cost_usd_total").unwrap() > 0.0);
    let send = "matrixos_http_requests_total{method=\"PUT\",route=\"/_matrix/client/v3/rooms/{room_id}/send/{event_type}/{txn_id}\",status=\"200\"}";
    assert!(value(&page, send).unwrap_or(0.0) >= 1.0, "{page}");
    assert!(value(&page, "matrixos_events_appended_total{origin=\"local\"}").unwrap() >= 3.0);
    assert!(page.contains("# TYPE matrixos_http_request_duration_seconds histogram"));
    assert!(page.contains("matrixos_federation_outbox_rows 0"));
    assert!(value(&page, "process_resident_memory_bytes").unwrap() > 0.0);
    // Not on the client listener.
    let (status, _) = anon.call("GET", "/metrics", None).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_json_lines_when_asked() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Child(
        matrixos(&["serve"])
            .env("MATRIXOS_DATA_DIR", dir.path())
            .env("MATRIXOS_LISTEN", free_port().to_string())
            .env("MATRIXOS_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .spawn()
            .expect("serve"),
    );
    let out = child.0.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(out).lines().take(50) {
            let line = line.unwrap();
            let done = line.contains("client API listening");
            seen.push(line);
            if done {
                break;
            }
        }
        seen
    })
    .await
    .unwrap();
    assert!(
        lines.iter().any(|l| l.contains("client API listening")),
        "{lines:?}"
    );
    for line in &lines {
        let record: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(
            record["level"].is_string() && record["timestamp"].is_string(),
            "{line}"
        );
    }
    let listening: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(listening["server_name"], "localhost");
}
