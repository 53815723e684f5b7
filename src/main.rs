//! The `matrixos` command: run the server, set one up, back it up and
//! restore it, or register an account.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use matrixos::config::Config;
use matrixos::ops;
use matrixos::services::Services;

/// Matrix OS: a Matrix homeserver with a personal AI user for every person.
///
/// Configuration comes from an optional TOML file (every field has a default:
/// server name `localhost`, data in `./data`, client API on 127.0.0.1:8008),
/// then from environment variables: MATRIXOS_SERVER_NAME, MATRIXOS_DATA_DIR,
/// MATRIXOS_LISTEN, MATRIXOS_FEDERATION_LISTEN, MATRIXOS_METRICS_LISTEN,
/// MATRIXOS_TLS_CERT, MATRIXOS_TLS_KEY,
/// MATRIXOS_FEDERATION_IP_RANGE_ALLOWLIST,
/// MATRIXOS_FEDERATION_VERIFY_CERTIFICATES, MATRIXOS_FEDERATION_CA_FILE,
/// MATRIXOS_TRUSTED_KEY_SERVERS,
/// MATRIXOS_REGISTRATION (open|token|closed),
/// MATRIXOS_REGISTRATION_TOKEN, MATRIXOS_REGISTRATION_SHARED_SECRET,
/// MATRIXOS_MAX_REQUEST_SIZE, MATRIXOS_MAX_CONNECTIONS_PER_IP,
/// MATRIXOS_MAX_CONNECTIONS, MATRIXOS_REQUEST_HEADER_TIMEOUT_SECS,
/// MATRIXOS_REQUEST_BODY_TIMEOUT_SECS, MATRIXOS_SYNC_WRITES,
/// MATRIXOS_PUBLIC_BASEURL, MATRIXOS_RATE_LIMIT_REGISTER,
/// MATRIXOS_RATE_LIMIT_SEND. Logging follows RUST_LOG (default `info`, with
/// the libraries' per-event lines off); MATRIXOS_LOG_FORMAT=json writes JSON
/// lines.
#[derive(Parser)]
#[command(name = "matrixos", version)]
struct Cli {
    /// The TOML configuration file.
    #[arg(long, global = true, env = "MATRIXOS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the homeserver (the default).
    Serve,
    /// Set up a new server: a configuration file, the data directory with
    /// the signing key, and the first admin account.
    Init {
        /// The server name: users are @name:<domain>.
        #[arg(long)]
        domain: String,
        /// The first admin's localpart; their password is printed once.
        #[arg(long)]
        admin: Option<String>,
        /// Where the data lives.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Where clients reach the server, when it is not
        /// https://<domain>/ (another host: `.well-known` delegation).
        #[arg(long)]
        public_baseurl: Option<String>,
        /// Who serves TLS: `acme` (Matrix OS itself, with a certificate
        /// from Let's Encrypt; the default for a public domain) or `proxy`
        /// (Caddy or nginx in front; the default otherwise).
        #[arg(long, value_enum)]
        tls: Option<ops::init::TlsMode>,
    },
    /// Back up the data directory into DEST (absent or empty) while the
    /// server runs (or not): database checkpoint, homes, media, keys.
    Backup { dest: PathBuf },
    /// Restore a backup into the configured data directory, which must be
    /// absent or empty.
    Restore { src: PathBuf },
    /// Exit 0 when the server answers on its client listener (for
    /// container health checks).
    Healthcheck,
    /// Create an account directly in the database (stop the server first).
    Register {
        /// The localpart: `alice` for @alice:<server_name>.
        #[arg(long)]
        user: String,
        #[arg(long)]
        password: String,
        /// Make the account a server admin.
        #[arg(long)]
        admin: bool,
    },
}

/// The log filter when RUST_LOG is not set: the server's own lines at
/// `info`; ruma's event authorisation (a line for every event it allows)
/// and tantivy (a line for every index commit) only when something is
/// wrong.
const DEFAULT_LOG_FILTER: &str = "info,ruma_state_res=warn,tantivy=warn";

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if std::env::var("MATRIXOS_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    let config_path = match &command {
        Command::Init { .. } => Some(
            cli.config
                .clone()
                .unwrap_or_else(|| PathBuf::from("matrixos.toml")),
        ),
        _ => cli.config.clone(),
    };
    // `init` writes the configuration before it is loaded like any other.
    let mut init = None;
    if let Command::Init {
        domain,
        admin,
        data_dir,
        public_baseurl,
        tls,
    } = &command
    {
        let tls = tls.unwrap_or_else(|| ops::init::TlsMode::default_for(domain));
        let asked = match absolute_init(
            domain,
            admin,
            config_path.clone(),
            data_dir,
            public_baseurl,
            tls,
        ) {
            Ok(asked) => asked,
            Err(e) => return fail(&e),
        };
        if let Err(e) = ops::init::write_config(&asked) {
            return fail(&e);
        }
        init = Some(asked);
    }
    let config = match Config::load(config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("matrixos: {e}");
            return ExitCode::from(2);
        }
    };
    match &command {
        Command::Backup { dest } => return report(ops::backup::backup(&config, dest), "backed up"),
        Command::Restore { src } => return report(ops::backup::restore(&config, src), "restored"),
        Command::Healthcheck => return healthcheck(&config),
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(matrixos::blocking::MAX_THREADS)
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    let result = runtime.block_on(async move {
        // The details of an internal error are in the log line above.
        let services = Services::open(config).map_err(|e| e.message)?;
        // Opening the database allocates and frees a good deal (RocksDB
        // checks its options file with a throwaway cache per table).
        matrixos::alloc::release_freed_memory();
        match command {
            Command::Serve => matrixos::server::serve(services)
                .await
                .map_err(|e| e.to_string()),
            Command::Init { admin, .. } => {
                let init = init.ok_or("init was not prepared")?;
                let created = match &admin {
                    Some(localpart) => Some(ops::init::create_admin(&services, localpart).await?),
                    None => None,
                };
                let binary = std::env::current_exe().unwrap_or_else(|_| "matrixos".into());
                print!(
                    "{}",
                    ops::init::next_steps(&init, created.as_ref(), &binary)
                );
                Ok(())
            }
            Command::Register {
                user,
                password,
                admin,
            } => {
                let id = services
                    .accounts
                    .user_id(&user)
                    .map_err(|e| e.to_string())?;
                matrixos::ai::provision::register_person(&services, &id, Some(&password), admin)
                    .await
                    .map_err(|e| e.to_string())?;
                println!("registered {id}");
                Ok(())
            }
            Command::Backup { .. } | Command::Restore { .. } | Command::Healthcheck => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn absolute_init(
    domain: &str,
    admin: &Option<String>,
    config_path: Option<PathBuf>,
    data_dir: &std::path::Path,
    public_baseurl: &Option<String>,
    tls: ops::init::TlsMode,
) -> Result<ops::init::Init, String> {
    let absolute =
        |p: &std::path::Path| std::path::absolute(p).map_err(|e| format!("{}: {e}", p.display()));
    Ok(ops::init::Init {
        domain: domain.to_owned(),
        admin: admin.clone(),
        config_path: absolute(&config_path.unwrap_or_else(|| PathBuf::from("matrixos.toml")))?,
        data_dir: absolute(data_dir)?,
        public_baseurl: public_baseurl.clone(),
        tls,
    })
}

fn report(done: Result<ops::backup::Done, String>, what: &str) -> ExitCode {
    match done {
        Ok(done) => {
            let source = if done.live {
                " (database checkpoint from the running server)"
            } else {
                ""
            };
            println!(
                "{what}: {} files, {} bytes besides the database{source}",
                done.copied.files, done.copied.bytes
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// A plain HTTP/1.1 GET of `/health` on the client listener.
fn healthcheck(config: &Config) -> ExitCode {
    use std::io::{Read, Write};
    let mut address = config.listen;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let timeout = std::time::Duration::from_secs(5);
    let answer = std::net::TcpStream::connect_timeout(&address, timeout).and_then(|mut stream| {
        stream.set_read_timeout(Some(timeout))?;
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut answer = String::new();
        stream.take(4096).read_to_string(&mut answer)?;
        Ok(answer)
    });
    match answer {
        Ok(text) if text.starts_with("HTTP/1.1 200") => ExitCode::SUCCESS,
        Ok(text) => fail(&format!("unhealthy: {}", text.lines().next().unwrap_or(""))),
        Err(e) => fail(&format!("no answer on {address}: {e}")),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("matrixos: {message}");
    ExitCode::FAILURE
}
