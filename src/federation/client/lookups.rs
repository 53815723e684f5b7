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
/// How long a failure to fetch it is remembered.
const WELL_KNOWN_ERROR_TTL: Duration = Duration::from_secs(60 * 60);

pub struct NetworkLookups {
    /// None when the system has no resolver configuration: the C library's
    /// resolver answers address lookups then, and there are no SRV records.
    resolver: Option<TokioResolver>,
    filter: Arc<IpFilter>,
    tls: TlsConnector,
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
        }
    }

    async fn fetch_well_known(&self, host: &str) -> Result<(Option<String>, Duration)> {
        let destination = Destination {
            addrs: self
                .ips(host)
                .await?
                .into_iter()
                .map(|ip| (ip, 443).into())
                .collect(),
            host: host.to_owned(),
            tls_name: host.to_owned(),
        };
        let stream = connect(&destination, &self.filter, &self.tls)
            .await
            .map_err(|e| Error::unavailable(format!("{host}: {e}")))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Error::unavailable(format!("{host}: {e}")))?;
        tokio::spawn(connection);
        let request = http::Request::get("/.well-known/matrix/server")
            .header(http::header::HOST, host)
            .body(Empty::<Bytes>::new())
            .map_err(|e| Error::internal(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Error::unavailable(format!("{host}: {e}")))?;
        if !response.status().is_success() {
            return Err(Error::unavailable(format!(
                "{host}: .well-known answered {}",
                response.status()
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
        Ok((server, ttl.min(WELL_KNOWN_MAX_TTL)))
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
