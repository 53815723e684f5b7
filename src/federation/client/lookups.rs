//! The lookups discovery makes on the real network: DNS through
//! hickory-resolver (the system's resolver configuration and hosts file),
//! and `/.well-known/matrix/server` over HTTPS through the same filtered,
//! TLS-checked connections as every other federation request.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hickory_resolver::TokioResolver;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use ruma::ServerName;
use serde::Deserialize;
use tokio_rustls::TlsConnector;

use super::discovery::{Destination, Lookups, WellKnown};
use super::ip_filter::IpFilter;
use super::transport::connect;
use crate::error::{Error, Result};

/// Largest `.well-known` document read.
const WELL_KNOWN_MAX: usize = 50 * 1024;
/// How long fetching it may take in all.
const WELL_KNOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an answer is used when it does not say (the spec's advice).
const WELL_KNOWN_DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest an answer is used, whatever it says.
const WELL_KNOWN_MAX_TTL: Duration = Duration::from_secs(48 * 60 * 60);
/// Most redirects followed to it (the spec asks to follow them, and to
/// beware of loops).
const WELL_KNOWN_MAX_REDIRECTS: usize = 5;
/// How long a failure to fetch it is remembered.
const WELL_KNOWN_ERROR_TTL: Duration = Duration::from_secs(60 * 60);

pub struct NetworkLookups {
    /// None when the system has no resolver configuration: the C library's
    /// resolver answers address lookups then, and there are no SRV records.
    resolver: Option<TokioResolver>,
    filter: Arc<IpFilter>,
    tls: TlsConnector,
    /// Where `.well-known` is asked for: 443 (another port in tests).
    https_port: u16,
}

#[derive(Deserialize)]
struct WellKnownBody {
    #[serde(rename = "m.server")]
    server: Option<String>,
}

impl NetworkLookups {
    pub fn new(filter: Arc<IpFilter>, tls: TlsConnector) -> Self {
        let resolver = match TokioResolver::builder_tokio() {
            Ok(builder) => Some(builder.build()),
            Err(e) => {
                tracing::warn!(error = %e, "no DNS configuration: SRV records are not looked up");
                None
            }
        };
        Self {
            resolver,
            filter,
            tls,
            https_port: 443,
        }
    }

    async fn fetch_well_known(&self, host: &str) -> Result<(Option<String>, Duration)> {
        let mut at = Place {
            host: host.to_owned(),
            port: self.https_port,
            path: "/.well-known/matrix/server".to_owned(),
        };
        for _ in 0..=WELL_KNOWN_MAX_REDIRECTS {
            let response = self.get(&at).await?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(http::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| {
                        Error::unavailable(format!("{host}: redirect without a Location"))
                    })?;
                at = at.follow(location)?;
                continue;
            }
            if !status.is_success() {
                return Err(Error::unavailable(format!(
                    "{host}: .well-known answered {status}"
                )));
            }
            let ttl = max_age(response.headers()).unwrap_or(WELL_KNOWN_DEFAULT_TTL);
            let body = Limited::new(response.into_body(), WELL_KNOWN_MAX)
                .collect()
                .await
                .map_err(|e| Error::unavailable(format!("{host}: .well-known body: {e}")))?
                .to_bytes();
            let parsed: WellKnownBody = serde_json::from_slice(&body)
                .map_err(|e| Error::unavailable(format!("{host}: .well-known is not JSON: {e}")))?;
            let server = parsed.server.filter(|s| ServerName::parse(s).is_ok());
            return Ok((server, ttl.min(WELL_KNOWN_MAX_TTL)));
        }
        Err(Error::unavailable(format!(
            "{host}: .well-known redirects more than {WELL_KNOWN_MAX_REDIRECTS} times"
        )))
    }

    /// `GET https://host:port/path`, through the filtered, TLS-checked
    /// connections of every federation request.
    async fn get(&self, at: &Place) -> Result<http::Response<hyper::body::Incoming>> {
        let host = &at.host;
        let destination = Destination {
            addrs: self
                .ips(host)
                .await?
                .into_iter()
                .map(|ip| (ip, at.port).into())
                .collect(),
            host: host.clone(),
            tls_name: host.clone(),
        };
        let stream = connect(&destination, &self.filter, &self.tls)
            .await
            .map_err(|e| Error::unavailable(format!("{host}: {e}")))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Error::unavailable(format!("{host}: {e}")))?;
        tokio::spawn(connection);
        let authority = if at.port == 443 {
            host.clone()
        } else {
            format!("{host}:{}", at.port)
        };
        let request = http::Request::get(at.path.as_str())
            .header(http::header::HOST, authority)
            .body(Empty::<Bytes>::new())
            .map_err(|e| Error::unavailable(format!("{host}: {e}")))?;
        sender
            .send_request(request)
            .await
            .map_err(|e| Error::unavailable(format!("{host}: {e}")))
    }
}

/// Where a `.well-known` request goes (HTTPS only).
#[derive(Debug, Clone, PartialEq)]
struct Place {
    host: String,
    port: u16,
    path: String,
}

impl Place {
    /// Where a redirect's `Location` leads: an `https` URL, or a path on
    /// the same host. Any other scheme is refused (no plain HTTP).
    fn follow(&self, location: &str) -> Result<Place> {
        let refused =
            || Error::unavailable(format!("unusable .well-known redirect to {location:?}"));
        if location.starts_with('/') && !location.starts_with("//") {
            return Ok(Place {
                path: location.to_owned(),
                ..self.clone()
            });
        }
        let uri: http::Uri = location.parse().map_err(|_| refused())?;
        if uri.scheme_str() != Some("https") {
            return Err(refused());
        }
        let authority = uri.authority().ok_or_else(refused)?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        Ok(Place {
            host: authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: authority.port_u16().unwrap_or(443),
            path,
        })
    }
}

/// The `max-age` of a `Cache-Control` header.
fn max_age(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::CACHE_CONTROL)?.to_str().ok()?;
    value.split(',').find_map(|part| {
        let seconds = part.trim().strip_prefix("max-age=")?;
        seconds.parse().ok().map(Duration::from_secs)
    })
}

impl Lookups for NetworkLookups {
    async fn srv(&self, name: &str) -> Vec<(String, u16)> {
        let Some(resolver) = &self.resolver else {
            return Vec::new();
        };
        let Ok(found) = resolver.srv_lookup(name).await else {
            return Vec::new();
        };
        let mut records: Vec<_> = found.iter().collect();
        // Lowest priority first; within one, the heaviest first.
        records.sort_by_key(|r| (r.priority(), std::cmp::Reverse(r.weight())));
        records
            .into_iter()
            .map(|r| {
                let target = r.target().to_utf8();
                (target.trim_end_matches('.').to_owned(), r.port())
            })
            .collect()
    }

    async fn ips(&self, host: &str) -> Result<Vec<IpAddr>> {
        if let Some(resolver) = &self.resolver {
            if let Ok(found) = resolver.lookup_ip(host).await {
                let ips: Vec<IpAddr> = found.iter().collect();
                if !ips.is_empty() {
                    return Ok(ips);
                }
            }
        }
        let found = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|e| Error::unavailable(format!("resolving {host}: {e}")))?;
        Ok(found.map(|addr| addr.ip()).collect())
    }

    async fn well_known(&self, host: &str) -> WellKnown {
        match tokio::time::timeout(WELL_KNOWN_TIMEOUT, self.fetch_well_known(host)).await {
            Ok(Ok((server, valid_for))) => WellKnown { server, valid_for },
            failed => {
                tracing::debug!(%host, outcome = ?failed.map(|r| r.err()), "no .well-known delegation");
                WellKnown {
                    server: None,
                    valid_for: WELL_KNOWN_ERROR_TTL,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::TlsConnector;

    use super::super::ip_filter::IpFilter;
    use super::super::transport::tls_config;
    use super::*;

    /// An HTTPS server on a loopback port that answers every request with
    /// `answer(path)` (status line, headers and body).
    async fn serve(answer: impl Fn(&str) -> String + Send + Sync + 'static) -> u16 {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(made.signing_key.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![made.cert.der().clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let answer = Arc::new(answer);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, answer) = (acceptor.clone(), answer.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut head = vec![0u8; 4096];
                    let n = tls.read(&mut head).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&head[..n]).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let _ = tls.write_all(answer(&path).as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        port
    }

    fn lookups(https_port: u16) -> NetworkLookups {
        let filter = Arc::new(IpFilter::new(&["127.0.0.0/8".to_owned()]).unwrap());
        let tls = TlsConnector::from(tls_config(false, None).unwrap());
        let mut lookups = NetworkLookups::new(filter, tls);
        lookups.https_port = https_port;
        lookups
    }

    fn ok(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn redirect(to: &str) -> String {
        format!("HTTP/1.1 301 Moved\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    }

    #[tokio::test]
    async fn well_known_redirects_are_followed_to_https_only_and_not_forever() {
        let target = serve(|path| match path {
            "/moved/here" => ok(r#"{"m.server": "matrix.example.test:8448"}"#),
            _ => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                .to_owned(),
        })
        .await;
        let absolute =
            serve(move |_| redirect(&format!("https://localhost:{target}/moved/here"))).await;
        let found = lookups(absolute).well_known("localhost").await;
        assert_eq!(found.server.as_deref(), Some("matrix.example.test:8448"));

        let relative_then_absolute = serve(move |path| match path {
            "/.well-known/matrix/server" => redirect("/elsewhere"),
            _ => redirect(&format!("https://localhost:{target}/moved/here")),
        })
        .await;
        let (server, _) = lookups(relative_then_absolute)
            .fetch_well_known("localhost")
            .await
            .unwrap();
        assert_eq!(server.as_deref(), Some("matrix.example.test:8448"));

        let plain_http =
            serve(move |_| redirect(&format!("http://localhost:{target}/moved/here"))).await;
        assert!(lookups(plain_http)
            .fetch_well_known("localhost")
            .await
            .is_err());

        let looping = serve(|_| redirect("/.well-known/matrix/server")).await;
        let failed = lookups(looping).well_known("localhost").await;
        assert_eq!(failed.server, None);
        assert_eq!(failed.valid_for, WELL_KNOWN_ERROR_TTL);
    }
}
