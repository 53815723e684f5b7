//! The `matrixos` command: run the server, or register an account.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use matrixos::config::Config;
use matrixos::services::Services;

/// Matrix OS: a Matrix homeserver with a personal AI user for every person.
///
/// Configuration comes from an optional TOML file (every field has a default:
/// server name `localhost`, data in `./data`, client API on 127.0.0.1:8008),
/// then from environment variables: MATRIXOS_SERVER_NAME, MATRIXOS_DATA_DIR,
/// MATRIXOS_LISTEN, MATRIXOS_FEDERATION_LISTEN, MATRIXOS_TLS_CERT,
/// MATRIXOS_TLS_KEY, MATRIXOS_FEDERATION_IP_RANGE_ALLOWLIST,
/// MATRIXOS_FEDERATION_VERIFY_CERTIFICATES, MATRIXOS_FEDERATION_CA_FILE,
/// MATRIXOS_TRUSTED_KEY_SERVERS,
/// MATRIXOS_REGISTRATION (open|token|closed),
/// MATRIXOS_REGISTRATION_TOKEN, MATRIXOS_REGISTRATION_SHARED_SECRET,
/// MATRIXOS_MAX_REQUEST_SIZE, MATRIXOS_MAX_CONNECTIONS_PER_IP,
/// MATRIXOS_MAX_CONNECTIONS, MATRIXOS_REQUEST_HEADER_TIMEOUT_SECS,
/// MATRIXOS_REQUEST_BODY_TIMEOUT_SECS, MATRIXOS_SYNC_WRITES,
/// MATRIXOS_PUBLIC_BASEURL, MATRIXOS_RATE_LIMIT_REGISTER,
/// MATRIXOS_RATE_LIMIT_SEND. Logging follows RUST_LOG (default `info`).
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

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("matrixos: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(matrixos::blocking::MAX_THREADS)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("matrixos: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let services = Services::open(config).map_err(|e| e.to_string())?;
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => matrixos::server::serve(services)
                .await
                .map_err(|e| e.to_string()),
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
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("matrixos: {e}");
            ExitCode::FAILURE
        }
    }
}
