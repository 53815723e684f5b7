//! Configuration: one TOML file, every field defaulted, environment overrides.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Who may create an account through `/register`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    Open,
    Token,
    Closed,
}

/// Token buckets for the rate-limited endpoints: `per_second` refill, `burst`
/// capacity. A `per_second` of 0 disables that limiter.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    /// Per client address, on `/login`.
    pub login: RateLimit,
    /// Per client address, on `/register`.
    pub register: RateLimit,
    /// Per user, on sending events.
    pub send: RateLimit,
    /// Per client address, on checking a registration token's validity
    /// (the spec marks it rate-limited: it would otherwise let anyone guess
    /// tokens as fast as the server answers).
    pub token_validity: RateLimit,
    /// Per client address, in bytes: other servers' files this server
    /// fetches for a client (Synapse's defaults: 87 KiB/s, 500 MiB burst).
    pub remote_media_download: RateLimit,
}

/// TURN servers for VoIP, as Synapse configures them: a shared secret
/// (coturn's `use-auth-secret`, credentials made per user and expiring) or
/// a fixed username and password.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnConfig {
    /// `turn:` / `turns:` URIs; none, and clients are told there is no
    /// TURN server.
    pub uris: Vec<String>,
    pub shared_secret: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// How long credentials made from the shared secret last.
    pub user_lifetime_secs: u64,
}

impl Default for TurnConfig {
    fn default() -> Self {
        Self {
            uris: Vec::new(),
            shared_secret: None,
            username: None,
            password: None,
            user_lifetime_secs: 86_400,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The server name in user ids: `@alice:<server_name>`.
    pub server_name: String,
    /// Where RocksDB and the people's homes live.
    pub data_dir: PathBuf,
    /// Client-server API listener (plain HTTP; put a TLS proxy in front).
    pub listen: SocketAddr,
    /// Federation listener (TLS), when federation is enabled.
    pub federation_listen: Option<SocketAddr>,
    /// The client API (and every other endpoint) over TLS, with the
    /// federation listener's certificate: `0.0.0.0:443` for a server that
    /// needs no proxy in front.
    pub tls_listen: Option<SocketAddr>,
    /// Prometheus metrics at `/metrics` on this address; off when unset.
    /// Keep it private: it tells who uses what, and when.
    pub metrics_listen: Option<SocketAddr>,
    /// The federation listener's certificate chain and key (PEM). Unset, a
    /// self-signed certificate for the server name's host is made once and
    /// kept in the data directory: enough for tests and for peers that do
    /// not check (put a real certificate here, or a TLS proxy in front).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Non-public addresses (CIDR ranges) outbound federation may connect
    /// to; every private, loopback and link-local address is refused
    /// otherwise. Tests allow `127.0.0.0/8`.
    pub federation_ip_range_allowlist: Vec<String>,
    /// Check other servers' TLS certificates. Turn off only for tests
    /// between servers with self-signed certificates.
    pub federation_verify_certificates: bool,
    /// A PEM file of certificate authorities that outbound federation
    /// trusts besides the public roots, for peers whose certificates come
    /// from a private CA (a test network such as Complement's). Peers'
    /// certificates are still checked.
    pub federation_ca_file: Option<PathBuf>,
    /// Servers asked for another server's keys when it cannot be reached
    /// itself (`/_matrix/key/v2/query`).
    pub trusted_key_servers: Vec<String>,
    /// `open`, `token` or `closed`; unset means `open` on `localhost` and
    /// `closed` anywhere else.
    pub registration: Option<RegistrationMode>,
    /// The token `m.login.registration_token` expects in `token` mode.
    pub registration_token: Option<String>,
    /// Enables `/_synapse/admin/v1/register` (HMAC shared-secret registration).
    pub registration_shared_secret: Option<String>,
    /// Guest accounts (`POST /register?kind=guest`), which may read and
    /// join rooms that let guests in (`m.room.guest_access`); off, as in
    /// Synapse.
    pub allow_guest_access: bool,
    /// Largest request body accepted, in bytes: the media upload limit.
    /// Other endpoints take far less (see `http::body_limit`), never more.
    pub max_request_size: usize,
    /// Most bytes the copies of other servers' media may take on disk; the
    /// oldest copies are evicted beyond (and fetched again when asked for).
    pub remote_media_cache_max_bytes: u64,
    /// Most simultaneous connections from one client address; more are
    /// closed at once. 0 turns the cap off (behind a reverse proxy every
    /// connection comes from the proxy: let the proxy cap per client).
    pub max_connections_per_ip: usize,
    /// Most simultaneous connections in all; more are closed at once.
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers; an idle
    /// keep-alive connection is closed after as long.
    pub request_header_timeout_secs: u64,
    /// Seconds a client has to send a request's body; for media uploads,
    /// the longest pause between two parts of it. Answering may take as long
    /// as it needs (a long-polling `/sync` is not cut short).
    pub request_body_timeout_secs: u64,
    /// Sync the write-ahead log before acknowledging a write (power-loss safe).
    pub sync_writes: bool,
    /// Base URL clients should use, advertised in `/.well-known/matrix/client`.
    pub public_baseurl: Option<String>,
    /// The admin's email address, in `/.well-known/matrix/support`.
    pub admin_contact_email: Option<String>,
    /// A web page about getting help, in `/.well-known/matrix/support`.
    pub support_page: Option<String>,
    /// Room version for new rooms.
    pub default_room_version: String,
    /// Serve simplified sliding sync (MSC4186, the sync Element X needs)
    /// and advertise it in `/versions`.
    pub sliding_sync: bool,
    /// Seconds a sliding sync connection is kept unused; a client coming
    /// back later starts a new one (`M_UNKNOWN_POS`).
    pub sliding_sync_connection_expiry_secs: u64,
    /// Keep a full-text index of messages and serve `/search` (Synapse's
    /// `enable_search`). Off, nothing is indexed and `/search` is refused;
    /// the index is built afresh from every room once it is on again.
    pub enable_search: bool,
    /// Serve link previews (`/v1/media/preview_url`); the server then
    /// fetches the pages users ask about.
    pub url_preview_enabled: bool,
    /// Address ranges previews may fetch from besides public ones
    /// (loopback, private and other special ranges are refused otherwise).
    pub url_preview_ip_range_allowlist: Vec<String>,
    /// Files uploaded or fetched from now on are served at the
    /// authenticated media paths only (v1.11); the unauthenticated
    /// `/_matrix/media/v3/` paths keep serving what was stored before.
    pub enable_authenticated_media: bool,
    /// Seconds an access token issued with a refresh token is valid
    /// (clients that ask for refresh tokens; others get lasting tokens).
    pub refreshable_access_token_lifetime_secs: u64,
    pub rate_limits: RateLimits,
    /// The TURN servers clients are given for calls (`[turn]`).
    pub turn: TurnConfig,
    /// The AI users and their model (`[ai]`).
    pub ai: matrixos_kernel::KernelConfig,
    /// Certificates from an ACME CA (`[acme]`).
    pub acme: crate::tls::acme::AcmeConfig,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: 10.0,
            burst: 50.0,
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login: RateLimit::default(),
            register: RateLimit::default(),
            send: RateLimit {
                per_second: 500.0,
                burst: 5000.0,
            },
            token_validity: RateLimit {
                per_second: 0.1,
                burst: 5.0,
            },
            remote_media_download: RateLimit {
                per_second: 87.0 * 1024.0,
                burst: 500.0 * 1024.0 * 1024.0,
            },
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server_name: "localhost".to_owned(),
            data_dir: PathBuf::from("./data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8008)),
            federation_listen: None,
            tls_listen: None,
            metrics_listen: None,
            tls_cert: None,
            tls_key: None,
            federation_ip_range_allowlist: Vec::new(),
            federation_verify_certificates: true,
            federation_ca_file: None,
            trusted_key_servers: vec!["matrix.org".to_owned()],
            registration: None,
            registration_token: None,
            registration_shared_secret: None,
            allow_guest_access: false,
            max_request_size: 50 << 20,
            remote_media_cache_max_bytes: 4 << 30,
            max_connections_per_ip: 100,
            max_connections: 4096,
            request_header_timeout_secs: 30,
            request_body_timeout_secs: 60,
            sync_writes: true,
            public_baseurl: None,
            admin_contact_email: None,
            support_page: None,
            default_room_version: "12".to_owned(),
            sliding_sync: true,
            sliding_sync_connection_expiry_secs: 7 * 24 * 3600,
            enable_search: true,
            url_preview_enabled: false,
            url_preview_ip_range_allowlist: Vec::new(),
            enable_authenticated_media: true,
            refreshable_access_token_lifetime_secs: 300,
            rate_limits: RateLimits::default(),
            turn: TurnConfig::default(),
            ai: matrixos_kernel::KernelConfig::default(),
            acme: crate::tls::acme::AcmeConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("invalid value for {var}: {detail}")]
    Env { var: &'static str, detail: String },
}

/// A comma-separated list; empty items are dropped (so "" is no item).
pub(crate) fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(crate) fn parse_env<T: std::str::FromStr>(
    var: &'static str,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match get(var) {
        None => Ok(None),
        Some(raw) => raw.parse().map(Some).map_err(|e: T::Err| ConfigError::Env {
            var,
            detail: e.to_string(),
        }),
    }
}

impl Config {
    /// Reads the file (if any), then applies `MATRIXOS_*` environment overrides.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str(&text)?
            }
            None => Config::default(),
        };
        config.apply_env(&|name| std::env::var(name).ok())?;
        Ok(config)
    }

    /// Applies the environment overrides; `get` reads one variable.
    pub fn apply_env(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("MATRIXOS_SERVER_NAME") {
            self.server_name = v;
        }
        if let Some(v) = get("MATRIXOS_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = parse_env("MATRIXOS_LISTEN", get)? {
            self.listen = v;
        }
        if let Some(v) = parse_env("MATRIXOS_FEDERATION_LISTEN", get)? {
            self.federation_listen = Some(v);
        }
        if let Some(v) = parse_env("MATRIXOS_TLS_LISTEN", get)? {
            self.tls_listen = Some(v);
        }
        if let Some(v) = parse_env("MATRIXOS_METRICS_LISTEN", get)? {
            self.metrics_listen = Some(v);
        }
        if let Some(v) = get("MATRIXOS_TLS_CERT") {
            self.tls_cert = Some(PathBuf::from(v));
        }
        if let Some(v) = get("MATRIXOS_TLS_KEY") {
            self.tls_key = Some(PathBuf::from(v));
        }
        if let Some(v) = get("MATRIXOS_FEDERATION_IP_RANGE_ALLOWLIST") {
            self.federation_ip_range_allowlist = list(&v);
        }
        if let Some(v) = parse_env("MATRIXOS_FEDERATION_VERIFY_CERTIFICATES", get)? {
            self.federation_verify_certificates = v;
        }
        if let Some(v) = get("MATRIXOS_FEDERATION_CA_FILE") {
            self.federation_ca_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("MATRIXOS_TRUSTED_KEY_SERVERS") {
            self.trusted_key_servers = list(&v);
        }
        if let Some(v) = get("MATRIXOS_REGISTRATION") {
            self.registration = Some(match v.as_str() {
                "open" => RegistrationMode::Open,
                "token" => RegistrationMode::Token,
                "closed" => RegistrationMode::Closed,
                other => {
                    return Err(ConfigError::Env {
                        var: "MATRIXOS_REGISTRATION",
                        detail: format!("{other:?} is not open, token or closed"),
                    })
                }
            });
        }
        if let Some(v) = get("MATRIXOS_REGISTRATION_TOKEN") {
            self.registration_token = Some(v);
        }
        if let Some(v) = get("MATRIXOS_REGISTRATION_SHARED_SECRET") {
            self.registration_shared_secret = Some(v);
        }
        if let Some(v) = parse_env("MATRIXOS_ALLOW_GUEST_ACCESS", get)? {
            self.allow_guest_access = v;
        }
        if let Some(v) = parse_env("MATRIXOS_MAX_REQUEST_SIZE", get)? {
            self.max_request_size = v;
        }
        if let Some(v) = parse_env("MATRIXOS_REMOTE_MEDIA_CACHE_MAX_BYTES", get)? {
            self.remote_media_cache_max_bytes = v;
        }
        if let Some(v) = parse_env("MATRIXOS_MAX_CONNECTIONS_PER_IP", get)? {
            self.max_connections_per_ip = v;
        }
        if let Some(v) = parse_env("MATRIXOS_MAX_CONNECTIONS", get)? {
            self.max_connections = v;
        }
        if let Some(v) = parse_env("MATRIXOS_REQUEST_HEADER_TIMEOUT_SECS", get)? {
            self.request_header_timeout_secs = v;
        }
        if let Some(v) = parse_env("MATRIXOS_REQUEST_BODY_TIMEOUT_SECS", get)? {
            self.request_body_timeout_secs = v;
        }
        if let Some(v) = parse_env("MATRIXOS_SYNC_WRITES", get)? {
            self.sync_writes = v;
        }
        if let Some(v) = get("MATRIXOS_PUBLIC_BASEURL") {
            self.public_baseurl = Some(v);
        }
        if let Some(v) = get("MATRIXOS_ADMIN_CONTACT_EMAIL") {
            self.admin_contact_email = Some(v);
        }
        if let Some(v) = get("MATRIXOS_SUPPORT_PAGE") {
            self.support_page = Some(v);
        }
        if let Some(v) = parse_env("MATRIXOS_ENABLE_SEARCH", get)? {
            self.enable_search = v;
        }
        if let Some(v) = parse_env("MATRIXOS_URL_PREVIEW_ENABLED", get)? {
            self.url_preview_enabled = v;
        }
        if let Some(v) = get("MATRIXOS_URL_PREVIEW_IP_RANGE_ALLOWLIST") {
            self.url_preview_ip_range_allowlist = list(&v);
        }
        if let Some(v) = parse_env("MATRIXOS_ENABLE_AUTHENTICATED_MEDIA", get)? {
            self.enable_authenticated_media = v;
        }
        if let Some(v) = parse_env("MATRIXOS_REFRESHABLE_ACCESS_TOKEN_LIFETIME_SECS", get)? {
            self.refreshable_access_token_lifetime_secs = v;
        }
        if let Some(v) = parse_env::<f64>("MATRIXOS_RATE_LIMIT_SEND", get)? {
            self.rate_limits.send.per_second = v;
        }
        if let Some(v) = parse_env::<f64>("MATRIXOS_RATE_LIMIT_REGISTER", get)? {
            self.rate_limits.register.per_second = v;
        }
        self.apply_ai_env(get)?;
        self.acme.apply_env(get)?;
        Ok(())
    }

    fn apply_ai_env(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = parse_env("MATRIXOS_AI_ENABLED", get)? {
            self.ai.enabled = v;
        }
        if let Some(v) = get("MATRIXOS_AI_PROVIDER") {
            self.ai.provider = serde_json::from_value(serde_json::Value::String(v.clone()))
                .map_err(|_| ConfigError::Env {
                    var: "MATRIXOS_AI_PROVIDER",
                    detail: format!("{v:?} is not none, anthropic or openai"),
                })?;
        }
        if let Some(v) = get("MATRIXOS_AI_BASE_URL") {
            self.ai.base_url = Some(v);
        }
        if let Some(v) = get("MATRIXOS_AI_MODEL") {
            self.ai.model = v;
        }
        if let Some(v) = get("MATRIXOS_AI_API_KEY_ENV") {
            self.ai.api_key_env = Some(v);
        }
        Ok(())
    }

    pub fn registration_mode(&self) -> RegistrationMode {
        self.registration
            .unwrap_or(if self.server_name == "localhost" {
                RegistrationMode::Open
            } else {
                RegistrationMode::Closed
            })
    }

    /// How long a client has to send a request's headers (at least a second).
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.request_header_timeout_secs.max(1))
    }

    /// How long a client has to send a request's body (at least a second).
    pub fn refreshable_token_lifetime(&self) -> Duration {
        Duration::from_secs(self.refreshable_access_token_lifetime_secs.max(1))
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.request_body_timeout_secs.max(1))
    }

    pub fn base_url(&self) -> String {
        self.public_baseurl
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_run_on_localhost_with_open_registration() {
        let c = Config::default();
        assert_eq!(c.server_name, "localhost");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.listen.to_string(), "127.0.0.1:8008");
        assert_eq!(c.registration_mode(), RegistrationMode::Open);
    }

    #[test]
    fn registration_is_closed_by_default_elsewhere() {
        let c: Config = toml::from_str("server_name = \"example.org\"").unwrap();
        assert_eq!(c.registration_mode(), RegistrationMode::Closed);
    }

    #[test]
    fn environment_overrides_file() {
        let mut c: Config = toml::from_str("listen = \"127.0.0.1:9000\"").unwrap();
        let env = |name: &str| match name {
            "MATRIXOS_LISTEN" => Some("127.0.0.1:9100".to_owned()),
            "MATRIXOS_REGISTRATION" => Some("token".to_owned()),
            "MATRIXOS_MAX_REQUEST_SIZE" => Some("1024".to_owned()),
            "MATRIXOS_MAX_CONNECTIONS_PER_IP" => Some("7".to_owned()),
            "MATRIXOS_REQUEST_HEADER_TIMEOUT_SECS" => Some("5".to_owned()),
            "MATRIXOS_FEDERATION_CA_FILE" => Some("/ca/ca.crt".to_owned()),
            _ => None,
        };
        c.apply_env(&env).unwrap();
        assert_eq!(c.max_connections_per_ip, 7);
        assert_eq!(c.header_timeout(), Duration::from_secs(5));
        assert_eq!(c.listen.port(), 9100);
        assert_eq!(c.registration_mode(), RegistrationMode::Token);
        assert_eq!(c.max_request_size, 1024);
        assert_eq!(c.federation_ca_file, Some(PathBuf::from("/ca/ca.crt")));
    }

    #[test]
    fn bad_values_are_reported() {
        let mut c = Config::default();
        let env = |name: &str| (name == "MATRIXOS_REGISTRATION").then(|| "maybe".to_owned());
        assert!(c.apply_env(&env).is_err());
        assert!(toml::from_str::<Config>("no_such_field = 1").is_err());
    }
}
