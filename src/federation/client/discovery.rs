//! Where to reach a server name, as the spec's "Resolving server names"
//! orders it: an IP literal or an explicit port is used as is; otherwise
//! `/.well-known/matrix/server` may delegate to another name (resolved the
//! same way, without a second delegation), then SRV records
//! (`_matrix-fed._tcp`, then the older `_matrix._tcp`), then port 8448.
//! Each answer carries the `Host` header and TLS name that go with it.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ruma::{OwnedServerName, ServerName};

use crate::bounded_map::BoundedMap;
use crate::error::{Error, Result};

/// The federation port when nothing says otherwise.
pub const DEFAULT_PORT: u16 = 8448;

/// How to reach a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Where to connect, in order of preference (resolved addresses).
    pub addrs: Vec<SocketAddr>,
    /// The `Host` header of requests.
    pub host: String,
    /// The name the server's certificate must have (SNI).
    pub tls_name: String,
}

/// Where a name was delegated to by `.well-known`, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WellKnown {
    pub server: Option<String>,
    pub valid_for: Duration,
}

/// The lookups discovery needs: DNS and the `.well-known` document.
pub trait Lookups: Send + Sync {
    /// SRV targets (host, port) of `name`, best first; empty when none.
    fn srv(&self, name: &str) -> impl std::future::Future<Output = Vec<(String, u16)>> + Send;
    /// Addresses of a host name.
    fn ips(&self, host: &str) -> impl std::future::Future<Output = Result<Vec<IpAddr>>> + Send;
    /// The `m.server` of `https://<host>/.well-known/matrix/server`.
    fn well_known(&self, host: &str) -> impl std::future::Future<Output = WellKnown> + Send;
}

/// How long a resolution without a `.well-known` answer is kept.
const NO_WELL_KNOWN_TTL: Duration = Duration::from_secs(60 * 60);
/// Most server names remembered at once.
const CACHE_CAP: usize = 10_000;

/// Resolves server names, remembering each answer for as long as its
/// `.well-known` allows.
pub struct Discovery<L> {
    lookups: L,
    cache: Mutex<BoundedMap<OwnedServerName, (Destination, Instant)>>,
}

/// A server name split into host and optional port (`[::1]:8448` →
/// `::1`, 8448); None when it is not one.
pub fn split(name: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = name.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((ip, port));
    }
    match name.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((name, None)),
    }
}

impl<L: Lookups> Discovery<L> {
    pub fn new(lookups: L) -> Self {
        Self {
            lookups,
            cache: Mutex::new(BoundedMap::new(CACHE_CAP)),
        }
    }

    pub fn lookups(&self) -> &L {
        &self.lookups
    }

    /// Where to reach `server`, from the cache while it is valid.
    pub async fn resolve(&self, server: &ServerName) -> Result<Destination> {
        let now = Instant::now();
        if let Some((destination, until)) = self.cache.lock().get(server) {
            if *until > now {
                return Ok(destination.clone());
            }
        }
        let (destination, ttl) = self.look_up(server).await?;
        self.cache
            .lock()
            .insert(server.to_owned(), (destination.clone(), now + ttl), now);
        Ok(destination)
    }

    /// Forgets what is known of `server` (after failing to reach it).
    pub fn forget(&self, server: &ServerName) {
        self.cache.lock().remove(server);
    }

    async fn look_up(&self, server: &ServerName) -> Result<(Destination, Duration)> {
        let (host, port) = split(server.as_str())
            .ok_or_else(|| Error::bad_json(format!("Invalid server name {server}")))?;
        if let Some(destination) = self.direct(server.as_str(), host, port).await? {
            return Ok((destination, NO_WELL_KNOWN_TTL));
        }
        let well_known = self.lookups.well_known(host).await;
        if let Some(delegated) = well_known.server.as_deref() {
            if let Some((d_host, d_port)) = split(delegated) {
                let destination = match self.direct(delegated, d_host, d_port).await? {
                    Some(destination) => destination,
                    None => self.by_srv(d_host).await?,
                };
                return Ok((destination, well_known.valid_for));
            }
            tracing::info!(%server, %delegated, "ignoring an invalid .well-known delegation");
        }
        Ok((self.by_srv(host).await?, well_known.valid_for))
    }

    /// An IP literal, or a host with an explicit port: no lookup beyond
    /// the host's addresses.
    async fn direct(
        &self,
        name: &str,
        host: &str,
        port: Option<u16>,
    ) -> Result<Option<Destination>> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            let addr = SocketAddr::new(ip, port.unwrap_or(DEFAULT_PORT));
            return Ok(Some(Destination {
                addrs: vec![addr],
                host: name.to_owned(),
                tls_name: host.to_owned(),
            }));
        }
        let Some(port) = port else {
            return Ok(None);
        };
        Ok(Some(Destination {
            addrs: self.addrs(host, port).await?,
            host: name.to_owned(),
            tls_name: host.to_owned(),
        }))
    }

    /// A host without a port: its SRV records, else port 8448.
    async fn by_srv(&self, host: &str) -> Result<Destination> {
        for prefix in ["_matrix-fed._tcp", "_matrix._tcp"] {
            let targets = self.lookups.srv(&format!("{prefix}.{host}")).await;
            let mut addrs = Vec::new();
            for (target, port) in targets {
                if let Ok(found) = self.addrs(&target, port).await {
                    addrs.extend(found);
                }
            }
            if !addrs.is_empty() {
                return Ok(Destination {
                    addrs,
                    host: host.to_owned(),
                    tls_name: host.to_owned(),
                });
            }
        }
        Ok(Destination {
            addrs: self.addrs(host, DEFAULT_PORT).await?,
            host: host.to_owned(),
            tls_name: host.to_owned(),
        })
    }

    async fn addrs(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>> {
        let ips = self.lookups.ips(host).await?;
        if ips.is_empty() {
            return Err(Error::unavailable(format!("{host} has no address")));
        }
        Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Lookups from tables.
    #[derive(Default)]
    struct Fake {
        srv: HashMap<String, Vec<(String, u16)>>,
        ips: HashMap<String, Vec<IpAddr>>,
        well_known: HashMap<String, String>,
    }

    impl Lookups for Fake {
        async fn srv(&self, name: &str) -> Vec<(String, u16)> {
            self.srv.get(name).cloned().unwrap_or_default()
        }
        async fn ips(&self, host: &str) -> Result<Vec<IpAddr>> {
            Ok(self.ips.get(host).cloned().unwrap_or_default())
        }
        async fn well_known(&self, host: &str) -> WellKnown {
            WellKnown {
                server: self.well_known.get(host).cloned(),
                valid_for: Duration::from_secs(10),
            }
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    async fn resolve(fake: Fake, name: &str) -> Result<Destination> {
        Discovery::new(fake)
            .resolve(&ServerName::parse(name).unwrap())
            .await
    }

    fn dest(addrs: &[&str], host: &str, tls_name: &str) -> Destination {
        Destination {
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            host: host.into(),
            tls_name: tls_name.into(),
        }
    }

    #[tokio::test]
    async fn ip_literals_and_explicit_ports_are_used_as_given() {
        let got = resolve(Fake::default(), "1.2.3.4").await.unwrap();
        assert_eq!(got, dest(&["1.2.3.4:8448"], "1.2.3.4", "1.2.3.4"));
        let got = resolve(Fake::default(), "[2001:db8::1]:1234")
            .await
            .unwrap();
        assert_eq!(
            got,
            dest(&["[2001:db8::1]:1234"], "[2001:db8::1]:1234", "2001:db8::1")
        );
        let mut fake = Fake::default();
        fake.ips.insert("example.org".into(), vec![ip("5.6.7.8")]);
        // An explicit port skips .well-known and SRV altogether.
        fake.well_known
            .insert("example.org".into(), "elsewhere.org".into());
        let got = resolve(fake, "example.org:9000").await.unwrap();
        assert_eq!(
            got,
            dest(&["5.6.7.8:9000"], "example.org:9000", "example.org")
        );
    }

    #[tokio::test]
    async fn well_known_delegates_and_srv_of_the_delegated_name_applies() {
        let mut fake = Fake::default();
        fake.well_known
            .insert("example.org".into(), "matrix.example.org".into());
        fake.srv.insert(
            "_matrix-fed._tcp.matrix.example.org".into(),
            vec![("backend.example.org".into(), 8443)],
        );
        fake.ips
            .insert("backend.example.org".into(), vec![ip("5.6.7.8")]);
        let got = resolve(fake, "example.org").await.unwrap();
        assert_eq!(
            got,
            dest(
                &["5.6.7.8:8443"],
                "matrix.example.org",
                "matrix.example.org"
            )
        );
    }

    #[tokio::test]
    async fn a_delegation_with_a_port_is_used_as_given() {
        let mut fake = Fake::default();
        fake.well_known
            .insert("example.org".into(), "matrix.example.org:443".into());
        fake.ips
            .insert("matrix.example.org".into(), vec![ip("5.6.7.8")]);
        let got = resolve(fake, "example.org").await.unwrap();
        assert_eq!(
            got,
            dest(
                &["5.6.7.8:443"],
                "matrix.example.org:443",
                "matrix.example.org"
            )
        );
    }

    #[tokio::test]
    async fn without_well_known_srv_then_the_older_srv_then_8448() {
        let mut fake = Fake::default();
        fake.srv.insert(
            "_matrix._tcp.example.org".into(),
            vec![("old.example.org".into(), 8555)],
        );
        fake.ips
            .insert("old.example.org".into(), vec![ip("5.6.7.8")]);
        fake.ips.insert("example.org".into(), vec![ip("9.9.9.9")]);
        let got = resolve(fake, "example.org").await.unwrap();
        assert_eq!(got, dest(&["5.6.7.8:8555"], "example.org", "example.org"));

        let mut fake = Fake::default();
        fake.ips.insert("example.org".into(), vec![ip("9.9.9.9")]);
        let got = resolve(fake, "example.org").await.unwrap();
        assert_eq!(got, dest(&["9.9.9.9:8448"], "example.org", "example.org"));
    }

    #[tokio::test]
    async fn a_name_without_addresses_is_unreachable() {
        assert!(resolve(Fake::default(), "nowhere.example").await.is_err());
    }
}
