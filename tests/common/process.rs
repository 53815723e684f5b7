//! The real server binary in a child process, so that a test can kill it
//! with SIGKILL and start it again on the same data directory and ports.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::Raw;

pub struct ServerProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    listen: SocketAddr,
    federation: Option<SocketAddr>,
    /// More settings, applied at every start.
    env: Vec<(String, String)>,
}

pub fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

impl ServerProcess {
    /// A server without federation (client API only).
    pub async fn start() -> Self {
        Self::launch(None, Vec::new()).await
    }

    /// A server without federation, with these `MATRIXOS_*` settings too.
    pub async fn start_with_env(env: &[(&str, String)]) -> Self {
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        Self::launch(None, env).await
    }

    /// A federating server named `localhost:<federation port>`, set up
    /// like `start_federated` (loopback peers allowed, their self-signed
    /// certificates trusted, no notary, open registration).
    pub async fn start_federated() -> Self {
        Self::launch(Some(free_port()), Vec::new()).await
    }

    async fn launch(federation: Option<SocketAddr>, env: Vec<(String, String)>) -> Self {
        let mut server = Self {
            child: None,
            dir: tempfile::tempdir().expect("temp dir"),
            listen: free_port(),
            federation,
            env,
        };
        server.spawn().await;
        server
    }

    /// The data directory the server runs on.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.listen)
    }

    pub fn server_name(&self) -> String {
        match self.federation {
            Some(address) => format!("localhost:{}", address.port()),
            None => "localhost".to_owned(),
        }
    }

    pub fn client(&self) -> Raw {
        Raw {
            http: reqwest::Client::new(),
            base: self.base_url(),
            token: None,
        }
    }

    async fn spawn(&mut self) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_matrixos"));
        command
            .env("MATRIXOS_DATA_DIR", self.dir.path())
            .env("MATRIXOS_LISTEN", self.listen.to_string())
            .env("MATRIXOS_RATE_LIMIT_SEND", "0")
            .env("MATRIXOS_REGISTRATION", "open")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            // Its log (on stdout) shows with the test's when RUST_LOG is set.
            .stdout(match std::env::var_os("RUST_LOG") {
                Some(_) => Stdio::inherit(),
                None => Stdio::null(),
            });
        if let Some(address) = self.federation {
            command
                .env("MATRIXOS_SERVER_NAME", self.server_name())
                .env("MATRIXOS_FEDERATION_LISTEN", address.to_string())
                .env(
                    "MATRIXOS_FEDERATION_IP_RANGE_ALLOWLIST",
                    "127.0.0.0/8,::1/128",
                )
                .env("MATRIXOS_FEDERATION_VERIFY_CERTIFICATES", "false")
                .env("MATRIXOS_TRUSTED_KEY_SERVERS", "");
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        self.child = Some(command.spawn().expect("start matrixos"));
        self.wait_ready().await;
    }

    async fn wait_ready(&self) {
        let http = reqwest::Client::new();
        let url = format!("{}/_matrix/client/versions", self.base_url());
        for _ in 0..400 {
            if http.get(&url).send().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not come up");
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
        }
    }

    /// Starts the binary again on the same data directory and ports.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
