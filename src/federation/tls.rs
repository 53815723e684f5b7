//! The federation listener's TLS: the configured certificate and key, or a
//! self-signed certificate for the server name's host, made once and kept
//! in the data directory so that it stays the same across restarts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::client::discovery::split;
use crate::config::Config;
use crate::error::{Error, Result};

/// The acceptor for the federation listener.
pub fn acceptor(config: &Config) -> Result<TlsAcceptor> {
    let (cert, key) = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        (None, None) => self_signed(config)?,
        _ => return Err(Error::internal("tls_cert and tls_key must be set together")),
    };
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::internal(format!("reading {}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(&key)
        .map_err(|e| Error::internal(format!("reading {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| Error::internal(format!("TLS certificate: {e}")))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// The kept self-signed certificate's files, made on first use.
fn self_signed(config: &Config) -> Result<(PathBuf, PathBuf)> {
    let dir = config.data_dir.join("tls");
    let (cert, key) = (dir.join("federation.crt"), dir.join("federation.key"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let host = split(&config.server_name)
        .map_or(config.server_name.as_str(), |(host, _)| host)
        .to_owned();
    let made = rcgen::generate_simple_self_signed(vec![host])
        .map_err(|e| Error::internal(format!("making a TLS certificate: {e}")))?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::internal(format!("{}: {e}", dir.display())))?;
    write_private(&key, made.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&cert, made.cert.pem())
        .map_err(|e| Error::internal(format!("{}: {e}", cert.display())))?;
    tracing::info!(cert = %cert.display(), "made a self-signed certificate for the federation listener");
    Ok((cert, key))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::internal(format!("{}: {e}", path.display())))?;
    file.write_all(bytes)
        .map_err(|e| Error::internal(format!("{}: {e}", path.display())))
}
