//! The certificate the TLS listeners (federation, and the client API's
//! HTTPS port) present. It comes from one of three places, in this order:
//! a certificate obtained through ACME (`[acme]`, kept in the data
//! directory and renewed by `acme`), the configured `tls_cert`/`tls_key`
//! files, or a self-signed certificate for the server name's host, made
//! once and kept so that it stays the same across restarts. The listeners
//! ask [`ServerCerts`] for the certificate at every handshake, so a renewed
//! one is served without a restart.

pub mod acme;
mod self_signed;

use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::error::{Error, Result};

/// The certificate every TLS listener presents; replaced when renewed.
#[derive(Debug)]
pub struct ServerCerts {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ServerCerts {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

impl ServerCerts {
    /// Serves `chain` (PEM, the server's certificate first) and `key`
    /// (PEM) from the next handshake on.
    pub fn replace(&self, chain: &[u8], key: &[u8]) -> Result<()> {
        *self.current.write() = Arc::new(certified_key(chain, key)?);
        Ok(())
    }

    fn new(chain: &[u8], key: &[u8]) -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            current: RwLock::new(Arc::new(certified_key(chain, key)?)),
        }))
    }
}

/// The certificate to start with (see the module's documentation).
pub fn server_certs(config: &Config) -> Result<Arc<ServerCerts>> {
    if config.acme.enabled {
        if let Some(stored) = acme::stored::certificate(&config.data_dir) {
            match ServerCerts::new(stored.chain_pem.as_bytes(), stored.key_pem.as_bytes()) {
                Ok(certs) => return Ok(certs),
                Err(e) => tracing::warn!(error = %e, "the stored ACME certificate is unusable"),
            }
        }
    }
    let (cert, key) = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        (None, None) => self_signed::files(config)?,
        _ => return Err(Error::internal("tls_cert and tls_key must be set together")),
    };
    ServerCerts::new(&read(&cert)?, &read(&key)?)
}

/// An acceptor presenting `certs`.
pub fn acceptor(certs: Arc<ServerCerts>) -> Result<TlsAcceptor> {
    let mut server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// An acceptor presenting the certificate `config` starts with.
pub fn acceptor_for(config: &Config) -> Result<TlsAcceptor> {
    acceptor(server_certs(config)?)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn certified_key(chain: &[u8], key: &[u8]) -> Result<CertifiedKey> {
    let chain = CertificateDer::pem_slice_iter(chain)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::internal(format!("reading a certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(Error::internal("the certificate file holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| Error::internal(format!("reading a private key: {e}")))?;
    CertifiedKey::from_der(chain, key, &provider())
        .map_err(|e| Error::internal(format!("TLS certificate: {e}")))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::internal(format!("reading {}: {e}", path.display())))
}

/// Writes a file only its owner can read, completely or not at all (a
/// temporary file renamed over it).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| Error::internal(format!("{}: {e}", path.display()));
    let partial = path.with_extension("partial");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(fail)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(fail)?;
    std::fs::rename(&partial, path).map_err(fail)
}
