//! Certificates from an ACME CA (Let's Encrypt by default), obtained and
//! renewed by the server itself: at start, and whenever two thirds of the
//! current certificate's lifetime have passed, it orders one for its names,
//! answers the CA's HTTP-01 challenges on port 80 (`http01`), keeps the
//! result in the data directory (`stored`) and serves it from the next TLS
//! handshake on. A failed order is tried again later, waiting longer each
//! time (the CA limits failed validations); the certificate in use stays
//! until a new one comes.

pub mod http01;
mod http_client;
mod order;
mod settings;
pub mod stored;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

pub use settings::{AcmeConfig, LETS_ENCRYPT};

use super::ServerCerts;
use crate::config::Config;
use crate::federation::client::discovery::split;

/// The first wait after a failed order; it doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(120);
const MAX_RETRY: Duration = Duration::from_secs(6 * 3600);
/// The longest sleep between looks at the certificate (the clock may jump).
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// The HTTP-01 answers being checked: token → key authorization. Only the
/// server's own orders add to it, a few names at a time.
#[derive(Default)]
pub struct Challenges(Mutex<HashMap<String, String>>);

impl Challenges {
    fn insert(&self, token: String, answer: String) {
        self.0.lock().insert(token, answer);
    }

    fn remove(&self, token: &str) {
        self.0.lock().remove(token);
    }

    /// The answer for a token the CA asks about.
    pub fn answer(&self, token: &str) -> Option<String> {
        self.0.lock().get(token).cloned()
    }
}

/// The names the certificate is for: `[acme] domains`, else the host of
/// `public_baseurl`, else the server name's host.
pub fn domains(config: &Config) -> Vec<String> {
    if !config.acme.domains.is_empty() {
        return config.acme.domains.clone();
    }
    let from_baseurl = config
        .public_baseurl
        .as_deref()
        .and_then(|url| url::Url::parse(url).ok())
        .and_then(|url| url.host_str().map(str::to_owned));
    let host = from_baseurl.unwrap_or_else(|| {
        split(&config.server_name)
            .map_or(config.server_name.as_str(), |(host, _)| host)
            .to_owned()
    });
    vec![host]
}

/// Keeps `certs` supplied from the CA while the process runs.
pub fn start(config: &Config, certs: Arc<ServerCerts>, challenges: Arc<Challenges>) {
    let config = config.clone();
    tokio::spawn(async move {
        let domains = domains(&config);
        let mut failures = 0u32;
        loop {
            let wait = match due(&config, &domains) {
                Some(wait) => wait,
                None => match order::obtain(&config.acme, &config.data_dir, &domains, &challenges)
                    .await
                {
                    Ok(obtained) => {
                        failures = 0;
                        match certs
                            .replace(obtained.chain_pem.as_bytes(), obtained.key_pem.as_bytes())
                        {
                            Ok(()) => {
                                tracing::info!(domains = ?domains, "serving a new certificate from the ACME CA")
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "the new ACME certificate is unusable")
                            }
                        }
                        continue;
                    }
                    Err(e) => {
                        let wait = retry_after(failures);
                        failures = failures.saturating_add(1);
                        tracing::warn!(error = %e, retry_in_secs = wait.as_secs(), "no certificate from the ACME CA");
                        wait
                    }
                },
            };
            tokio::time::sleep(wait.min(MAX_SLEEP)).await;
        }
    });
}

/// How long the stored certificate is good for before renewal; `None` if
/// there is none for these names, or it is due.
fn due(config: &Config, domains: &[String]) -> Option<Duration> {
    let stored = stored::certificate(&config.data_dir)?;
    if !stored.covers(domains) {
        return None;
    }
    stored.renew_at().duration_since(SystemTime::now()).ok()
}

fn retry_after(failures: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(2u32.saturating_pow(failures.min(16)))
        .min(MAX_RETRY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_up_to_six_hours() {
        assert_eq!(retry_after(0), Duration::from_secs(120));
        assert_eq!(retry_after(1), Duration::from_secs(240));
        assert_eq!(retry_after(3), Duration::from_secs(960));
        assert_eq!(retry_after(40), MAX_RETRY);
    }

    #[test]
    fn the_names_default_to_where_clients_reach_the_server() {
        let mut config = Config {
            server_name: "example.org".to_owned(),
            ..Config::default()
        };
        assert_eq!(domains(&config), ["example.org"]);
        config.server_name = "example.org:8448".to_owned();
        assert_eq!(domains(&config), ["example.org"]);
        config.public_baseurl = Some("https://matrix.example.org/".to_owned());
        assert_eq!(domains(&config), ["matrix.example.org"]);
        config.acme.domains = vec!["a.example.org".to_owned(), "b.example.org".to_owned()];
        assert_eq!(domains(&config), ["a.example.org", "b.example.org"]);
    }
}
