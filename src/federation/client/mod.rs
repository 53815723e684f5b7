//! Requests to other servers: typed with ruma, signed with X-Matrix (ruma
//! signs the method, the URI exactly as sent, origin, destination and body),
//! sent over pooled TLS connections to where discovery says the server is.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use matrixos_federation::ServerSigningKey;
use ruma::api::auth_scheme::NoAuthentication;
use ruma::api::error::FromHttpResponseError;
use ruma::api::federation::authentication::{ServerSignatures, ServerSignaturesInput};
use ruma::api::path_builder::SinglePath;
use ruma::api::{auth_scheme::AuthScheme, IncomingResponse, OutgoingRequest};
use ruma::signatures::Ed25519KeyPair;
use ruma::{OwnedServerName, ServerName};
use tokio_rustls::TlsConnector;

pub mod discovery;
pub mod ip_filter;
pub mod lookups;
pub mod transport;

use crate::error::{Error, Result};
use discovery::{Destination, Discovery, Lookups};
use ip_filter::IpFilter;
use lookups::NetworkLookups;
use transport::{PeerConnector, Resolve};

/// Largest answer read from another server, unless a call says otherwise:
/// anonymous clients can make this server ask a peer (a profile, an alias),
/// so a hostile peer's answer must stay small.
pub const DEFAULT_MAX_RESPONSE: usize = 1024 * 1024;
/// How long a request may take, unless a call says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What the outbound side is configured with.
pub struct ClientSettings {
    pub ip_allowlist: Vec<String>,
    pub verify_certificates: bool,
    /// Certificate authorities trusted besides the public roots (PEM).
    pub ca_file: Option<PathBuf>,
}

/// The authentication a federation endpoint wants, made from this server's
/// name and key.
pub trait SignedBy: AuthScheme {
    fn input<'a>(
        origin: &ServerName,
        destination: &ServerName,
        key: &'a Ed25519KeyPair,
    ) -> Self::Input<'a>;
}

impl SignedBy for ServerSignatures {
    fn input<'a>(
        origin: &ServerName,
        destination: &ServerName,
        key: &'a Ed25519KeyPair,
    ) -> ServerSignaturesInput<'a> {
        ServerSignaturesInput::new(origin.to_owned(), destination.to_owned(), key)
    }
}

impl SignedBy for NoAuthentication {
    fn input(_: &ServerName, _: &ServerName, _: &Ed25519KeyPair) {}
}

impl<L: Lookups + 'static> Resolve for Discovery<L> {
    async fn destination(&self, server: &str) -> io::Result<Destination> {
        let name = ServerName::parse(server)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.resolve(&name)
            .await
            .map_err(|e| io::Error::other(format!("{e:?}")))
    }
}

type Discover = Discovery<NetworkLookups>;

pub struct FederationClient {
    origin: OwnedServerName,
    key: Arc<ServerSigningKey>,
    discovery: Arc<Discover>,
    http: Client<PeerConnector<Discover>, Full<Bytes>>,
}

/// How one call is bounded.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_response: usize,
    pub timeout: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            max_response: DEFAULT_MAX_RESPONSE,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl Bounds {
    /// Answers that carry a bounded number of events (an auth chain,
    /// missing events).
    pub const EVENTS: Bounds = Bounds {
        max_response: 16 * 1024 * 1024,
        timeout: Duration::from_secs(120),
    };
    /// A whole room's state and auth chain (`send_join`): tens of MB for
    /// the largest rooms.
    pub const ROOM_STATE: Bounds = Bounds {
        max_response: 128 * 1024 * 1024,
        timeout: Duration::from_secs(300),
    };
}

impl FederationClient {
    pub fn new(
        origin: OwnedServerName,
        key: Arc<ServerSigningKey>,
        settings: &ClientSettings,
    ) -> Result<Self> {
        let filter = Arc::new(IpFilter::new(&settings.ip_allowlist)?);
        let tls = TlsConnector::from(transport::tls_config(
            settings.verify_certificates,
            settings.ca_file.as_deref(),
        )?);
        let discovery = Arc::new(Discovery::new(NetworkLookups::new(
            filter.clone(),
            tls.clone(),
        )));
        let connector = PeerConnector {
            resolve: discovery.clone(),
            filter,
            tls,
        };
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(8)
            .build(connector);
        Ok(Self {
            origin,
            key,
            discovery,
            http,
        })
    }

    pub fn origin(&self) -> &ServerName {
        &self.origin
    }

    /// Sends `request` to `destination` and parses its answer.
    pub async fn send<R>(&self, destination: &ServerName, request: R) -> Result<R::IncomingResponse>
    where
        R: OutgoingRequest<PathBuilder = SinglePath>,
        R::Authentication: SignedBy,
    {
        self.send_bounded(destination, request, Bounds::default())
            .await
    }

    /// As [`FederationClient::send`], with its own size and time limits.
    pub async fn send_bounded<R>(
        &self,
        destination: &ServerName,
        request: R,
        bounds: Bounds,
    ) -> Result<R::IncomingResponse>
    where
        R: OutgoingRequest<PathBuilder = SinglePath>,
        R::Authentication: SignedBy,
    {
        if destination == self.origin {
            return Err(Error::internal(
                "a federation request to this server itself",
            ));
        }
        let input = R::Authentication::input(&self.origin, destination, self.key.key_pair());
        let request = request
            .try_into_http_request::<Vec<u8>>(&format!("https://{destination}"), input, ())
            .map_err(|e| Error::internal(format!("building a request to {destination}: {e}")))?;
        let found = self.discovery.resolve(destination).await?;
        let (mut parts, body) = request.into_parts();
        let host = http::HeaderValue::try_from(found.host.as_str())
            .map_err(|e| Error::internal(format!("host of {destination}: {e}")))?;
        parts.headers.insert(http::header::HOST, host);
        let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let exchange = async {
            let response = self.http.request(request).await.map_err(|e| {
                self.discovery.forget(destination);
                Error::unavailable(format!("{destination}: {e}"))
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, bounds.max_response)
                .collect()
                .await
                .map_err(|e| Error::unavailable(format!("{destination}: reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, Error>(http::Response::from_parts(parts, body))
        };
        let response = tokio::time::timeout(bounds.timeout, exchange)
            .await
            .map_err(|_| Error::unavailable(format!("{destination}: no answer in time")))??;
        let status = response.status();
        R::IncomingResponse::try_from_http_response(response).map_err(|e| match e {
            FromHttpResponseError::Server(_) if status == http::StatusCode::NOT_FOUND => {
                Error::not_found(format!("{destination} does not know it"))
            }
            FromHttpResponseError::Server(e) if status == http::StatusCode::FORBIDDEN => {
                let mut error = Error::forbidden(format!("{destination} refused: {e}"));
                error.peer_refused = true;
                error
            }
            e if refused_for_good(status) => {
                Error::refused_by_peer(format!("{destination} answered {status}: {e}"))
            }
            e => Error::unavailable(format!("{destination} answered {status}: {e}")),
        })
    }
}

/// A 4xx that asking again will not change: not 401 (its keys may be
/// refetched), 404 (a server that is not (yet) there), 408 or 429.
fn refused_for_good(status: http::StatusCode) -> bool {
    use http::StatusCode as S;
    status.is_client_error()
        && ![
            S::UNAUTHORIZED,
            S::NOT_FOUND,
            S::REQUEST_TIMEOUT,
            S::TOO_MANY_REQUESTS,
        ]
        .contains(&status)
}
