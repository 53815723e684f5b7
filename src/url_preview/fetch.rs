//! Fetching a page (or an image) for a preview without letting a user reach
//! the server's own network: every address a name resolves to, every
//! address written in a URL, and every redirect is checked against the IP
//! filter before a connection is made, and connections go only to the
//! addresses checked (a name cannot resolve differently a second time).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;
use url::{Host, Url};

use crate::error::{Error, Result};
use crate::federation::client::ip_filter::IpFilter;

/// The most bytes read of a page or an image (Synapse's `max_spider_size`).
pub const MAX_BYTES: usize = 10 << 20;
/// The most redirects followed.
const MAX_REDIRECTS: usize = 5;
/// How long one fetch may take, redirects included.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A name resolved by the system resolver, keeping only the addresses the
/// filter permits; none left is an error.
struct FilteredResolver {
    filter: Arc<IpFilter>,
}

impl Resolve for FilteredResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let filter = self.filter.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let permitted: Vec<SocketAddr> = found.filter(|a| filter.permits(a.ip())).collect();
            if permitted.is_empty() {
                return Err(format!("{host} resolves to no address previews may reach").into());
            }
            let addrs: Addrs = Box::new(permitted.into_iter());
            Ok(addrs)
        })
    }
}

/// Refuses a URL that is not http(s) or names an address the filter does
/// not permit.
pub fn check_url(url: &Url, filter: &IpFilter) -> Result<()> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid_param(
            "Only http and https URLs can be previewed",
        ));
    }
    let literal = match url.host() {
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(Host::Domain(_)) => None,
        None => return Err(Error::invalid_param("The URL has no host")),
    };
    if literal.is_some_and(|ip| !filter.permits(ip)) {
        return Err(blocked());
    }
    Ok(())
}

/// Synapse's answer for an address previews may not reach.
pub fn blocked() -> Error {
    Error::forbidden("IP address blocked by IP blacklist entry")
}

/// The HTTP client previews fetch with: filtered resolution, redirects
/// checked, no proxy from the environment.
pub fn client(filter: Arc<IpFilter>) -> Result<reqwest::Client> {
    let redirect_filter = filter.clone();
    let policy = redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if check_url(attempt.url(), &redirect_filter).is_err() {
            attempt.error("redirected to an address previews may not reach")
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .dns_resolver(Arc::new(FilteredResolver { filter }))
        .redirect(policy)
        .no_proxy()
        .timeout(TIMEOUT)
        .user_agent("Matrix OS URL preview")
        .build()
        .map_err(|e| Error::internal(format!("URL preview client: {e}")))
}

/// What a fetch brought back.
pub struct Fetched {
    pub content_type: String,
    pub bytes: Vec<u8>,
    /// Where the page ended up, after redirects.
    pub url: Url,
}

/// GETs `url`, reading at most [`MAX_BYTES`]; a larger body is cut there.
pub async fn get(client: &reqwest::Client, url: &Url) -> Result<Fetched> {
    let unreachable = |e: reqwest::Error| {
        tracing::info!(url = %url, error = %e, "URL preview fetch failed");
        Error::new(
            http::StatusCode::BAD_GATEWAY,
            "M_UNKNOWN",
            "The page could not be fetched",
        )
    };
    let mut response = client.get(url.clone()).send().await.map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(Error::new(
            http::StatusCode::BAD_GATEWAY,
            "M_UNKNOWN",
            format!("The page answered {}", response.status()),
        ));
    }
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let final_url = response.url().clone();
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        let room = MAX_BYTES - bytes.len();
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() >= MAX_BYTES {
            break;
        }
    }
    Ok(Fetched {
        content_type,
        bytes,
        url: final_url,
    })
}
