//! A real Synapse on loopback, for federation tests: installed into a venv
//! by `conformance/synapse/install` (the test runner does this; a test run
//! without it installs it here), started in its own directory on free
//! ports, stopped when dropped.

use std::path::PathBuf;
use std::process::Command;

pub struct Synapse {
    pub server_name: String,
    pub client_base: String,
    dir: tempfile::TempDir,
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("conformance/synapse")
        .join(name)
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Synapse {
    pub async fn start() -> Synapse {
        tokio::task::spawn_blocking(|| {
            run(&mut Command::new(script("install")), "installing Synapse");
            // A free port can be taken by another test before Synapse binds
            // it (its start-up takes seconds): then start again on others.
            for attempt in 1.. {
                let dir = tempfile::tempdir().unwrap();
                let (fed, client) = (free_port(), free_port());
                let server_name = format!("localhost:{fed}");
                let output = Command::new(script("start"))
                    .arg(dir.path())
                    .arg(&server_name)
                    .arg(fed.to_string())
                    .arg(client.to_string())
                    .output()
                    .unwrap_or_else(|e| panic!("starting Synapse: {e}"));
                if output.status.success() {
                    return Synapse {
                        server_name,
                        client_base: format!("http://127.0.0.1:{client}"),
                        dir,
                    };
                }
                let said = format!(
                    "{}\n{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
                assert!(
                    attempt < 3 && said.contains("Address already in use"),
                    "starting Synapse failed:\n{said}"
                );
            }
            unreachable!("the loop returns or panics")
        })
        .await
        .unwrap()
    }

    /// Registers `name` (dummy auth); returns a client with its token, and
    /// its id.
    pub async fn register(&self, name: &str) -> (super::Raw, String) {
        let anonymous = super::Raw {
            http: reqwest::Client::new(),
            base: self.client_base.clone(),
            token: None,
        };
        anonymous.register(name).await
    }

    /// The end of Synapse's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        let _ = Command::new(script("stop")).arg(self.dir.path()).output();
    }
}
