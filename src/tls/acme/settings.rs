//! `[acme]`: certificates from Let's Encrypt, or any ACME CA.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::config::{list, parse_env, ConfigError};

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AcmeConfig {
    /// Obtain the TLS listeners' certificate from the CA, and renew it.
    pub enabled: bool,
    /// The CA's directory URL.
    pub directory_url: String,
    /// How the CA may reach the operator ("mailto:admin@example.org").
    pub contact: Vec<String>,
    /// The names on the certificate. Unset: the host of `public_baseurl`,
    /// else the server name's host.
    pub domains: Vec<String>,
    /// Where the CA's HTTP-01 challenges are answered: it asks on port 80
    /// of every name. Other requests there are sent on to HTTPS.
    pub http_listen: SocketAddr,
    /// A PEM file of the CAs the directory's own certificate is checked
    /// against instead of the system's (a test CA); unset, the system's.
    pub ca_file: Option<PathBuf>,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            directory_url: LETS_ENCRYPT.to_owned(),
            contact: Vec::new(),
            domains: Vec::new(),
            http_listen: SocketAddr::from(([0, 0, 0, 0], 80)),
            ca_file: None,
        }
    }
}

impl AcmeConfig {
    /// The `MATRIXOS_ACME_*` overrides.
    pub fn apply_env(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = parse_env("MATRIXOS_ACME_ENABLED", get)? {
            self.enabled = v;
        }
        if let Some(v) = get("MATRIXOS_ACME_DIRECTORY_URL") {
            self.directory_url = v;
        }
        if let Some(v) = get("MATRIXOS_ACME_CONTACT") {
            self.contact = list(&v);
        }
        if let Some(v) = get("MATRIXOS_ACME_DOMAINS") {
            self.domains = list(&v);
        }
        if let Some(v) = parse_env("MATRIXOS_ACME_HTTP_LISTEN", get)? {
            self.http_listen = v;
        }
        if let Some(v) = get("MATRIXOS_ACME_CA_FILE") {
            self.ca_file = Some(PathBuf::from(v));
        }
        Ok(())
    }
}
