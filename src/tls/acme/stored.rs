//! What ACME leaves in the data directory, under `tls/acme/`: the account
//! (`account.json`, with the CA directory it belongs to) and the current
//! certificate (`certificate.pem`: the chain, then its private key, in one
//! file so that a crash never pairs a certificate with another key). Both
//! are written whole or not at all, readable by the server's user only.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use instant_acme::AccountCredentials;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use x509_parser::extensions::GeneralName;

use crate::error::{Error, Result};
use crate::tls::write_private;

/// The certificate obtained last, with what it says of itself.
pub struct StoredCertificate {
    pub chain_pem: String,
    pub key_pem: String,
    /// The DNS names it is valid for.
    pub names: Vec<String>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl StoredCertificate {
    /// When to renew: once two thirds of its lifetime have passed, as
    /// Let's Encrypt advises (30 days before the end of a 90-day one).
    pub fn renew_at(&self) -> SystemTime {
        let lifetime = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or(Duration::ZERO);
        self.not_before + lifetime * 2 / 3
    }

    /// Whether it is for exactly these names (in any order).
    pub fn covers(&self, domains: &[String]) -> bool {
        let mut have: Vec<String> = self.names.iter().map(|n| n.to_ascii_lowercase()).collect();
        let mut want: Vec<String> = domains.iter().map(|n| n.to_ascii_lowercase()).collect();
        have.sort();
        have.dedup();
        want.sort();
        want.dedup();
        have == want
    }

    /// Reads a chain and key as the CA gave them.
    pub fn parse(chain_pem: String, key_pem: String) -> Result<Self> {
        let first = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .next()
            .ok_or_else(|| Error::internal("the certificate chain is empty"))?
            .map_err(|e| Error::internal(format!("reading the certificate: {e}")))?;
        let (_, cert) = x509_parser::parse_x509_certificate(&first)
            .map_err(|e| Error::internal(format!("reading the certificate: {e}")))?;
        let time = |t: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(t.max(0).unsigned_abs());
        let names = match cert.subject_alternative_name() {
            Ok(Some(san)) => san
                .value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(name) => Some((*name).to_owned()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(Self {
            names,
            not_before: time(cert.validity().not_before.timestamp()),
            not_after: time(cert.validity().not_after.timestamp()),
            chain_pem,
            key_pem,
        })
    }
}

fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tls").join("acme")
}

fn certificate_file(data_dir: &Path) -> PathBuf {
    dir(data_dir).join("certificate.pem")
}

/// The stored certificate, if there is a readable one.
pub fn certificate(data_dir: &Path) -> Option<StoredCertificate> {
    let text = std::fs::read_to_string(certificate_file(data_dir)).ok()?;
    let key_start = text.find("-----BEGIN PRIVATE KEY-----").or_else(|| {
        text.find("-----BEGIN EC PRIVATE KEY-----")
            .or_else(|| text.find("-----BEGIN RSA PRIVATE KEY-----"))
    })?;
    let (chain, key) = text.split_at(key_start);
    match StoredCertificate::parse(chain.to_owned(), key.to_owned()) {
        Ok(stored) => Some(stored),
        Err(e) => {
            tracing::warn!(error = %e, "the stored ACME certificate is unreadable");
            None
        }
    }
}

/// Keeps a certificate in place of the last one.
pub fn save_certificate(data_dir: &Path, stored: &StoredCertificate) -> Result<()> {
    create_dir(data_dir)?;
    let mut text = stored.chain_pem.trim_end().to_owned();
    text.push('\n');
    text.push_str(stored.key_pem.trim_end());
    text.push('\n');
    write_private(&certificate_file(data_dir), text.as_bytes())
}

#[derive(Serialize, Deserialize)]
struct StoredAccount {
    directory_url: String,
    credentials: AccountCredentials,
}

fn account_file(data_dir: &Path) -> PathBuf {
    dir(data_dir).join("account.json")
}

/// The account made earlier at this CA directory, if any.
pub fn account(data_dir: &Path, directory_url: &str) -> Option<AccountCredentials> {
    let text = std::fs::read(account_file(data_dir)).ok()?;
    let stored: StoredAccount = serde_json::from_slice(&text).ok()?;
    (stored.directory_url == directory_url).then_some(stored.credentials)
}

/// Keeps the account for later orders at the same directory.
pub fn save_account(
    data_dir: &Path,
    directory_url: &str,
    credentials: AccountCredentials,
) -> Result<()> {
    create_dir(data_dir)?;
    let stored = StoredAccount {
        directory_url: directory_url.to_owned(),
        credentials,
    };
    let bytes = serde_json::to_vec_pretty(&stored)
        .map_err(|e| Error::internal(format!("ACME account: {e}")))?;
    write_private(&account_file(data_dir), &bytes)
}

fn create_dir(data_dir: &Path) -> Result<()> {
    let dir = dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(|e| Error::internal(format!("{}: {e}", dir.display())))
}
