//! Test harness: a real server on an ephemeral loopback port, in-process,
//! with its own data directory.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use matrixos::config::Config;
use matrixos::services::Services;
use serde_json::{json, Value};

pub mod acme;
pub mod errors;
pub mod llm;
pub mod process;
pub mod rooms;
pub mod sdk;
pub mod synapse;
pub mod web_site;

pub struct TestServer {
    pub addr: SocketAddr,
    pub base_url: String,
    pub services: Arc<Services>,
    pub config: Config,
    dir: Option<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a server with the default config except for the data directory
/// and the port; `tweak` may change anything else.
pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        listen: addr,
        ..Config::default()
    };
    tweak(&mut config);
    serve(listener, None, config, dir)
}

/// A server that federates: a TLS federation listener on its own loopback
/// port, named `localhost:<that port>` (other servers connect straight to
/// it), allowed to reach loopback peers and trusting their self-signed
/// certificates, with no notary.
pub async fn start_federated() -> TestServer {
    start_federated_with(|_| {}).await
}

pub async fn start_federated_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let federation = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind federation");
    let fed_addr = federation.local_addr().expect("addr");
    let mut config = Config {
        server_name: format!("localhost:{}", fed_addr.port()),
        data_dir: dir.path().to_owned(),
        listen: listener.local_addr().expect("addr"),
        federation_listen: Some(fed_addr),
        federation_ip_range_allowlist: vec!["127.0.0.0/8".into(), "::1/128".into()],
        federation_verify_certificates: false,
        trusted_key_servers: Vec::new(),
        registration: Some(matrixos::config::RegistrationMode::Open),
        ..Config::default()
    };
    tweak(&mut config);
    let tls = matrixos::tls::acceptor_for(&config).expect("TLS for federation");
    serve(listener, Some((federation, tls)), config, dir)
}

type FederationListener = Option<(tokio::net::TcpListener, tokio_rustls::TlsAcceptor)>;

fn serve(
    listener: tokio::net::TcpListener,
    federation: FederationListener,
    config: Config,
    dir: tempfile::TempDir,
) -> TestServer {
    let addr = listener.local_addr().expect("addr");
    let services = Services::open(config.clone()).expect("open services");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn({
        let services = services.clone();
        async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            let _ = matrixos::server::serve_on(
                matrixos::server::Listeners::new(listener, federation),
                services,
                shutdown,
            )
            .await;
        }
    });
    TestServer {
        addr,
        base_url: format!("http://{addr}"),
        services,
        config,
        dir: Some(dir),
        stop: Some(stop),
        task,
    }
}

impl TestServer {
    /// Stops the server gracefully, waits until the database is closed,
    /// and starts it again on the same data directory and port.
    pub async fn restart(self) -> TestServer {
        self.restart_with(|| {}).await
    }

    /// [`Self::restart`], doing `meanwhile` while the server is down.
    pub async fn restart_with(self, meanwhile: impl FnOnce()) -> TestServer {
        self.relaunch(meanwhile, |_| {}).await
    }

    /// [`Self::restart`] with its configuration changed by `tweak`.
    pub async fn restart_changing(self, tweak: impl FnOnce(&mut Config)) -> TestServer {
        self.relaunch(|| {}, tweak).await
    }

    async fn relaunch(
        mut self,
        meanwhile: impl FnOnce(),
        tweak: impl FnOnce(&mut Config),
    ) -> TestServer {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let mut task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        if tokio::time::timeout(std::time::Duration::from_secs(15), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
        let dir = self.dir.take().expect("data dir");
        let mut config = self.config.clone();
        tweak(&mut config);
        let weak = Arc::downgrade(&self.services);
        drop(self);
        for _ in 0..400 {
            if weak.strong_count() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert_eq!(
            weak.strong_count(),
            0,
            "the old server never let go of its services"
        );
        meanwhile();
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .expect("rebind the same port");
        let federation = match config.federation_listen {
            Some(address) => {
                let listener = tokio::net::TcpListener::bind(address)
                    .await
                    .expect("rebind the federation port");
                let tls = matrixos::tls::acceptor_for(&config).expect("TLS");
                Some((listener, tls))
            }
            None => None,
        };
        serve(listener, federation, config, dir)
    }
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

/// A minimal raw-HTTP client for error-case tests.
pub struct Raw {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
}

impl Raw {
    pub fn new(server: &TestServer) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: server.base_url.clone(),
            token: None,
        }
    }

    pub fn with_token(&self, token: &str) -> Self {
        Self {
            http: self.http.clone(),
            base: self.base.clone(),
            token: Some(token.to_owned()),
        }
    }

    /// Sends a request with a raw body; returns status and JSON body.
    pub async fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    pub async fn json(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(method, path, Some(&body.to_string())).await
    }

    /// Registers `name` with password `pw`; returns a client with its token.
    pub async fn register(&self, name: &str) -> (Raw, String) {
        let (status, body) = self
            .json(
                "POST",
                "/_matrix/client/v3/register",
                json!({
                    "username": name, "password": "secret-pw", "auth": { "type": "m.login.dummy" }
                }),
            )
            .await;
        assert_eq!(status, 200, "register {name}: {body}");
        let token = body["access_token"].as_str().expect("token").to_owned();
        let user = body["user_id"].as_str().expect("user_id").to_owned();
        (self.with_token(&token), user)
    }

    /// Logs a user registered by [`Raw::register`] in on a new device: a
    /// client with its token.
    pub async fn login(&self, user: &str) -> Raw {
        let body = json!({
            "type": "m.login.password",
            "identifier": { "type": "m.id.user", "user": user },
            "password": "secret-pw",
        });
        let res = expect_ok(
            self.json("POST", &format!("{V3}/login"), body).await,
            "login",
        );
        self.with_token(res["access_token"].as_str().expect("token"))
    }
}

pub const V3: &str = "/_matrix/client/v3";

/// Sets `user`'s display name through `client`.
pub async fn set_displayname(client: &Raw, user: &str, name: &str) {
    let path = format!("{V3}/profile/{}/displayname", enc(user));
    let (status, body) = client
        .json("PUT", &path, json!({ "displayname": name }))
        .await;
    assert_eq!(status, 200, "setting the display name of {user}: {body}");
}

/// A nonce for shared-secret registration.
pub async fn admin_nonce(anon: &Raw) -> String {
    let body = expect_ok(
        anon.call("GET", "/_synapse/admin/v1/register", None).await,
        "nonce",
    );
    body["nonce"].as_str().expect("nonce").to_owned()
}

/// Synapse's shared-secret registration MAC.
pub fn admin_mac(secret: &str, nonce: &str, user: &str, password: &str, admin: bool) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("hmac key");
    let kind = if admin { "admin" } else { "notadmin" };
    for (i, part) in [nonce, user, password, kind].iter().enumerate() {
        if i > 0 {
            mac.update(b"\0");
        }
        mac.update(part.as_bytes());
    }
    hex::encode(mac.finalize().into_bytes())
}

/// Registers a server admin through shared-secret registration (the
/// server's `registration_shared_secret` is `secret`).
pub async fn register_admin(anon: &Raw, secret: &str, name: &str) -> (Raw, String) {
    let nonce = admin_nonce(anon).await;
    let mac = admin_mac(secret, &nonce, name, "admin-pw", true);
    let body = json!({ "nonce": nonce, "username": name, "password": "admin-pw", "admin": true, "mac": mac });
    let ok = expect_ok(
        anon.json("POST", "/_synapse/admin/v1/register", body).await,
        "admin",
    );
    let token = ok["access_token"].as_str().expect("access_token");
    (
        anon.with_token(token),
        ok["user_id"].as_str().expect("user_id").to_owned(),
    )
}

/// Percent-encodes one path segment or query value.
pub fn enc(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

#[track_caller]
pub fn expect_error(res: &(u16, Value), status: u16, errcode: &str, what: &str) {
    assert_eq!(
        (res.0, res.1["errcode"].as_str()),
        (status, Some(errcode)),
        "{what}: expected HTTP {status} {errcode}, got HTTP {} {}",
        res.0,
        res.1
    );
}

#[track_caller]
pub fn expect_ok(res: (u16, Value), what: &str) -> Value {
    assert_eq!(
        res.0, 200,
        "{what}: expected HTTP 200, got {} {}",
        res.0, res.1
    );
    res.1
}

pub async fn create_room(raw: &Raw, body: Value) -> String {
    let res = raw.json("POST", &format!("{V3}/createRoom"), body).await;
    expect_ok(res, "createRoom")["room_id"]
        .as_str()
        .expect("room_id")
        .to_owned()
}

pub async fn sync(raw: &Raw, since: Option<&str>, timeout_ms: u64) -> Value {
    let mut path = format!("{V3}/sync?timeout={timeout_ms}");
    if let Some(since) = since {
        path.push_str(&format!("&since={}", enc(since)));
    }
    expect_ok(raw.call("GET", &path, None).await, "sync")
}

/// `GET /rooms/{room}/state/m.room.member/{user}`: status and content.
pub async fn member_state(raw: &Raw, room: &str, user: &str) -> (u16, Value) {
    let path = format!("{V3}/rooms/{}/state/m.room.member/{}", enc(room), enc(user));
    raw.call("GET", &path, None).await
}

pub fn next_batch(sync: &Value) -> String {
    sync["next_batch"]
        .as_str()
        .unwrap_or_else(|| panic!("next_batch missing: {sync}"))
        .to_owned()
}

/// Logs to the test output: `RUST_LOG` if set, else warnings only
/// (matrix-sdk logs some failed E2EE requests only as warnings).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,matrix_sdk_crypto=warn,matrix_sdk=warn")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
