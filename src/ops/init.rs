//! `matrixos init --domain example.org [--admin alice]`: a commented
//! configuration file, the data directory with the server's signing key,
//! the first admin account (its password printed once), and what to do
//! next (DNS, TLS, the command that starts the server).

use std::path::{Path, PathBuf};

use ruma::{OwnedUserId, ServerName};

use crate::services::Services;

/// What `init` is asked to set up.
pub struct Init {
    pub domain: String,
    pub admin: Option<String>,
    pub config_path: PathBuf,
    pub data_dir: PathBuf,
    /// Where clients reach the server, when not `https://<domain>/`
    /// (a server on another host: `.well-known` delegation).
    pub public_baseurl: Option<String>,
    pub tls: TlsMode,
}

/// Who serves TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsMode {
    /// Matrix OS itself, with a certificate from Let's Encrypt (ACME).
    Acme,
    /// A reverse proxy in front (Caddy, nginx).
    Proxy,
}

/// Top-level domains no public CA issues certificates for.
const PRIVATE_TLDS: [&str; 8] = [
    "localhost",
    "test",
    "example",
    "invalid",
    "local",
    "internal",
    "lan",
    "arpa",
];

impl TlsMode {
    /// ACME for a public DNS name; a proxy for names a CA will not sign
    /// (`localhost`, `.test`, IP literals, names with a port).
    pub fn default_for(domain: &str) -> Self {
        let is_ip = domain.parse::<std::net::IpAddr>().is_ok() || domain.starts_with('[');
        let tld = domain
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let public = !is_ip
            && domain.contains('.')
            && !domain.contains(':')
            && !PRIVATE_TLDS.contains(&tld.as_str());
        if public {
            Self::Acme
        } else {
            Self::Proxy
        }
    }
}

impl Init {
    fn baseurl(&self) -> String {
        self.public_baseurl
            .clone()
            .unwrap_or_else(|| format!("https://{}/", self.domain))
    }

    /// The host clients and peers reach, when it is not the domain.
    fn delegated_host(&self) -> Option<String> {
        let url = url::Url::parse(&self.baseurl()).ok()?;
        let host = url.host_str()?.to_owned();
        (host != self.domain).then_some(host)
    }
}

/// Checks the request and writes the configuration file (mode 0600: it
/// holds the registration secret). Refuses to overwrite anything.
pub fn write_config(init: &Init) -> Result<(), String> {
    ServerName::parse(&init.domain)
        .map_err(|e| format!("{:?} is not a server name: {e}", init.domain))?;
    if let Some(url) = &init.public_baseurl {
        let parsed = url::Url::parse(url).map_err(|e| format!("--public-baseurl: {e}"))?;
        if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
            return Err("--public-baseurl must be an http(s) URL with a host".to_owned());
        }
    }
    if init.config_path.exists() {
        return Err(format!(
            "{} already exists: init does not overwrite a configuration",
            init.config_path.display()
        ));
    }
    let has_data = std::fs::read_dir(&init.data_dir).is_ok_and(|mut e| e.next().is_some());
    if has_data {
        return Err(format!(
            "{} is not empty: init sets up a new server only",
            init.data_dir.display()
        ));
    }
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&init.config_path)
        .map_err(|e| format!("{}: {e}", init.config_path.display()))?;
    file.write_all(config_text(init).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", init.config_path.display()))
}

fn toml_string(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
}

fn config_text(init: &Init) -> String {
    let secret = crate::random::random_string(40);
    format!(
        r#"# Matrix OS configuration, written by `matrixos init`.
# Every setting not written here has a default; `matrixos --help` lists the
# MATRIXOS_* environment variables that override this file.

# The name in every user id (@alice:{domain}). It cannot change later.
server_name = {server_name}

# RocksDB, the people's git homes, media and keys. Back it up with
# `matrixos backup DEST` (the server may keep running).
data_dir = {data_dir}

{listeners}
# Where clients reach the server; advertised in /.well-known/matrix/client.
public_baseurl = {baseurl}

# Who may create accounts: "open", "token" (registration_token = "...")
# or "closed". Admins create accounts with the shared secret below
# (Synapse's /_synapse/admin/v1/register) or `matrixos register`.
registration = "closed"
registration_shared_secret = {secret}

# Prometheus metrics at http://<address>/metrics; off unless set. Keep it
# on a private address.
# metrics_listen = "127.0.0.1:9090"

{acme}
# The AI users (@alice_ai for @alice). Without a provider they answer that
# no model is configured.
[ai]
# provider = "anthropic"        # or "openai" (any OpenAI-compatible server)
# model = "claude-sonnet-4-5"
# api_key_env = "ANTHROPIC_API_KEY"
"#,
        domain = init.domain,
        server_name = toml_string(&init.domain),
        data_dir = toml_string(&init.data_dir.to_string_lossy()),
        baseurl = toml_string(&init.baseurl()),
        secret = toml_string(&secret),
        listeners = listeners_text(init),
        acme = acme_text(init),
    )
}

fn listeners_text(init: &Init) -> String {
    match init.tls {
        TlsMode::Proxy => format!(
            r#"# The client API and federation, as plain HTTP. Put a TLS proxy in front
# (see the README for Caddy and nginx): it serves https://{domain}/ on 443
# and federation on 8448, both to this address.
listen = "127.0.0.1:8008"

# Or let Matrix OS serve TLS itself: with a certificate from Let's Encrypt
# (tls_listen, federation_listen and [acme] enabled = true, as
# `matrixos init --tls acme` writes them), or with your own certificate:
# federation_listen = "0.0.0.0:8448"
# tls_cert = "/etc/letsencrypt/live/{domain}/fullchain.pem"
# tls_key = "/etc/letsencrypt/live/{domain}/privkey.pem"
"#,
            domain = init.domain
        ),
        TlsMode::Acme => r#"# Matrix OS serves TLS itself, with a certificate from Let's Encrypt it
# obtains and renews by itself ([acme] below): the client API on 443 and
# federation on 8448. Ports 80, 443 and 8448 must reach this machine (80
# answers the CA's checks and sends browsers on to HTTPS).
tls_listen = "0.0.0.0:443"
federation_listen = "0.0.0.0:8448"
# Plain HTTP, for tools on this machine only (health checks, `matrixos
# backup`).
listen = "127.0.0.1:8008"
"#
        .to_owned(),
    }
}

fn acme_text(init: &Init) -> String {
    match init.tls {
        TlsMode::Proxy => String::new(),
        TlsMode::Acme => {
            r#"# The certificate for the host in public_baseurl, from Let's Encrypt. Kept
# in <data_dir>/tls/acme/ and renewed 30 days before it ends.
[acme]
enabled = true
# The CA writes here before a certificate expires, e.g. ["mailto:you@example.org"].
contact = []
# directory_url = "https://acme-staging-v02.api.letsencrypt.org/directory"  # to try things out
"#
            .to_owned()
        }
    }
}

/// Creates the first admin with a new random password.
pub async fn create_admin(
    services: &Services,
    localpart: &str,
) -> Result<(OwnedUserId, String), String> {
    let user = services
        .accounts
        .user_id(localpart)
        .map_err(|e| format!("--admin: {e}"))?;
    let password = crate::random::random_string(24);
    crate::ai::provision::register_person(services, &user, Some(&password), true)
        .await
        .map_err(|e| e.to_string())?;
    Ok((user, password))
}

/// What the person does next.
pub fn next_steps(init: &Init, admin: Option<&(OwnedUserId, String)>, binary: &Path) -> String {
    let mut out = format!(
        "Matrix OS is set up for {domain}.\n\n  configuration  {config}\n  data           {data}\n",
        domain = init.domain,
        config = init.config_path.display(),
        data = init.data_dir.display(),
    );
    if let Some((user, password)) = admin {
        out += &format!(
            "  admin          {user}\n  password       {password}\n\n\
             The password is shown this once: keep it in a password manager.\n"
        );
    }
    let host = init.delegated_host();
    let target = host.as_deref().unwrap_or(&init.domain);
    out += &format!(
        "\nDNS: at your DNS provider, point {target} at this machine:\n\
         \x20 {target}.  A     <this machine's IPv4 address>\n\
         \x20 {target}.  AAAA  <its IPv6 address, if it has one>\n"
    );
    if let Some(host) = &host {
        out += &format!(
            "\nDelegation: the server runs at {host}, so https://{domain}/ must answer\n\
             \x20 /.well-known/matrix/server  {{\"m.server\": \"{host}:443\"}}\n\
             \x20 /.well-known/matrix/client  {{\"m.homeserver\": {{\"base_url\": \"{base}\"}}}}\n",
            domain = init.domain,
            base = init.baseurl(),
        );
    }
    out += &match init.tls {
        TlsMode::Proxy => format!(
            "\nTLS: put Caddy or nginx in front for https://{target}/ (443) and federation (8448),\n\
             both passing requests unchanged to 127.0.0.1:8008 (the README has both configurations).\n"
        ),
        TlsMode::Acme => format!(
            "\nTLS: Matrix OS gets a certificate for {target} from Let's Encrypt when it starts, once\n\
             DNS points at this machine. Open ports 80, 443 and 8448 to it; binding ports below 1024\n\
             needs root or CAP_NET_BIND_SERVICE (the systemd unit in deploy/ grants it).\n"
        ),
    };
    out += &format!(
        "\nStart the server:\n  {binary} --config {config} serve\n",
        binary = binary.display(),
        config = init.config_path.display(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn init(domain: &str, tls: TlsMode) -> Init {
        Init {
            domain: domain.to_owned(),
            admin: None,
            config_path: PathBuf::from("/etc/matrixos/matrixos.toml"),
            data_dir: PathBuf::from("/var/lib/matrixos"),
            public_baseurl: None,
            tls,
        }
    }

    #[test]
    fn acme_is_the_default_only_for_names_a_public_ca_signs() {
        for public in ["example.org", "matrix.example.co.uk"] {
            assert_eq!(TlsMode::default_for(public), TlsMode::Acme, "{public}");
        }
        for private in [
            "localhost",
            "ops.test",
            "box.local",
            "example.org:8448",
            "127.0.0.1",
            "[::1]",
            "intranet",
        ] {
            assert_eq!(TlsMode::default_for(private), TlsMode::Proxy, "{private}");
        }
    }

    #[test]
    fn the_written_configurations_load_as_asked() {
        let acme: Config = toml::from_str(&config_text(&init("example.org", TlsMode::Acme)))
            .expect("the ACME configuration loads");
        assert!(acme.acme.enabled);
        assert_eq!(acme.tls_listen.map(|a| a.port()), Some(443));
        assert_eq!(acme.federation_listen.map(|a| a.port()), Some(8448));
        assert_eq!(crate::tls::acme::domains(&acme), ["example.org"]);
        let proxy: Config = toml::from_str(&config_text(&init("example.org", TlsMode::Proxy)))
            .expect("the proxy configuration loads");
        assert!(!proxy.acme.enabled);
        assert_eq!(proxy.tls_listen, None);
        assert_eq!(proxy.listen.to_string(), "127.0.0.1:8008");
    }
}
