//! A self-signed certificate for the server name's host, made on first
//! use and kept in the data directory: enough for tests and for peers that
//! do not check, until a real one is configured or obtained.

use std::path::PathBuf;

use super::write_private;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::federation::client::discovery::split;

/// The kept certificate's and key's files, made if missing.
pub fn files(config: &Config) -> Result<(PathBuf, PathBuf)> {
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
    tracing::info!(cert = %cert.display(), "made a self-signed certificate for the TLS listeners");
    Ok((cert, key))
}
