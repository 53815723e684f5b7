//! Connections to other servers: TCP to an address the IP filter allows,
//! then TLS with the destination's name (certificates verified against the
//! public roots and any configured extra CA, unless the operator turned
//! that off for tests), as a connector for hyper's pooled client, so that
//! requests to one server reuse its connections.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName as TlsName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::discovery::Destination;
use super::ip_filter::IpFilter;
use crate::error::{Error, Result};

/// How long a TCP connect or TLS handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS settings for outbound connections. `extra_roots` is a PEM file of
/// certificate authorities trusted besides the public roots; it does not
/// matter when certificates are not verified.
pub fn tls_config(
    verify_certificates: bool,
    extra_roots: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the default provider supports the default protocol versions");
    let config = if verify_certificates {
        let mut roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = extra_roots {
            add_roots(&mut roots, path)?;
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// Adds every certificate of a PEM file to `roots`.
fn add_roots(roots: &mut rustls::RootCertStore, path: &Path) -> Result<()> {
    let failed = |e: String| Error::internal(format!("federation_ca_file {}: {e}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| failed(e.to_string()))?;
    if certs.is_empty() {
        return Err(failed("no certificate in it".to_owned()));
    }
    for cert in certs {
        roots.add(cert).map_err(|e| failed(e.to_string()))?;
    }
    tracing::info!(file = %path.display(), "outbound federation trusts these extra CAs too");
    Ok(())
}

/// Opens a TLS connection to the first address of `destination` that the
/// filter allows and that answers.
pub async fn connect(
    destination: &Destination,
    filter: &IpFilter,
    tls: &TlsConnector,
) -> io::Result<TlsStream<TcpStream>> {
    let name = TlsName::try_from(destination.tls_name.clone())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut last = io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("no allowed address for {}", destination.host),
    );
    for addr in &destination.addrs {
        if !filter.permits(addr.ip()) {
            tracing::info!(%addr, host = %destination.host, "refusing to connect to a non-public address");
            continue;
        }
        match connect_one(*addr, name.clone(), tls).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn connect_one(
    addr: SocketAddr,
    name: TlsName<'static>,
    tls: &TlsConnector,
) -> io::Result<TlsStream<TcpStream>> {
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, format!("connecting to {addr}"));
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| timed_out())??;
    let _ = tcp.set_nodelay(true);
    tokio::time::timeout(CONNECT_TIMEOUT, tls.connect(name, tcp))
        .await
        .map_err(|_| timed_out())?
}

/// Where the pooled client's connector learns how to reach a server: the
/// request's authority is the server name.
pub trait Resolve: Send + Sync + 'static {
    fn destination(&self, server: &str) -> impl Future<Output = io::Result<Destination>> + Send;
}

/// The connector for hyper's pooled client.
pub struct PeerConnector<R> {
    pub resolve: Arc<R>,
    pub filter: Arc<IpFilter>,
    pub tls: TlsConnector,
}

impl<R> Clone for PeerConnector<R> {
    fn clone(&self) -> Self {
        Self {
            resolve: self.resolve.clone(),
            filter: self.filter.clone(),
            tls: self.tls.clone(),
        }
    }
}

impl<R: Resolve> tower::Service<Uri> for PeerConnector<R> {
    type Response = TokioIo<PeerStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let server = uri
                .authority()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no server name"))?
                .as_str()
                .to_owned();
            let destination = this.resolve.destination(&server).await?;
            let stream = connect(&destination, &this.filter, &this.tls).await?;
            Ok(TokioIo::new(PeerStream(stream)))
        })
    }
}

/// A TLS connection to a peer, as hyper's client wants it.
pub struct PeerStream(TlsStream<TcpStream>);

impl Connection for PeerStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// Accepts any certificate: only for tests between servers with
/// self-signed certificates (`federation_verify_certificates = false`).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &TlsName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extra_ca_file_is_trusted_and_a_bad_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".to_owned()]).unwrap();
        let good = dir.path().join("ca.crt");
        std::fs::write(&good, ca.cert.pem()).unwrap();
        assert!(tls_config(true, Some(good.as_path())).is_ok());
        let empty = dir.path().join("empty.crt");
        std::fs::write(&empty, "").unwrap();
        assert!(tls_config(true, Some(empty.as_path())).is_err());
        assert!(tls_config(true, Some(dir.path().join("missing.crt").as_path())).is_err());
        // Nothing is read when certificates are not checked.
        assert!(tls_config(false, Some(empty.as_path())).is_ok());
    }
}
