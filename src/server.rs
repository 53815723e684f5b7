//! The HTTP server: routes, fallbacks, limits and the listener.

use std::sync::Arc;

use axum::response::IntoResponse;
use axum::Router;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower_http::cors::CorsLayer;
use tower_http::trace::TraceLayer;

use crate::error::Error;
use crate::http::connections::ConnectionGate;
use crate::http::listener::{self, ListenerSettings};
use crate::services::Services;
use crate::tls::acme;

async fn unknown_endpoint() -> impl IntoResponse {
    Error::unrecognized("Unrecognized request")
}

async fn wrong_method() -> impl IntoResponse {
    Error::method_not_allowed()
}

/// Every endpoint, each with its body limits (`http::body_guard`, a route
/// layer: it needs to know which endpoint was matched).
pub fn app(services: Arc<Services>) -> Router {
    let body_guard =
        axum::middleware::from_fn_with_state(services.clone(), crate::http::body_guard::guard);
    let mut routes = crate::client::routes()
        .merge(crate::federation::routes())
        .merge(crate::ai::http::routes())
        .merge(crate::desktop::routes())
        .route_layer(body_guard);
    if services.config.metrics_listen.is_some() {
        routes = routes.route_layer(axum::middleware::from_fn_with_state(
            services.metrics.clone(),
            crate::metrics::track,
        ));
    }
    routes
        .route("/health", axum::routing::get(|| async { "OK" }))
        .fallback(unknown_endpoint)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn(
            crate::http::stray_errors::matrix_errors,
        ))
        .layer(CorsLayer::permissive())
        .layer(TraceLayer::new_for_http())
        .with_state(services)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

/// Serves the client API (and the TLS listeners, when configured) until
/// SIGINT or SIGTERM, then lets open requests finish; the database closes
/// when the services are dropped.
pub async fn serve(services: Arc<Services>) -> std::io::Result<()> {
    let listeners = bind(&services.config).await?;
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = serve_on(listeners, services, async move {
        shutdown_signal().await;
        let _ = stopping.send(());
    });
    // Long-polling syncs would hold a graceful shutdown for minutes: give
    // open requests a few seconds, then stop.
    let grace = async {
        if stopped.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result,
        _ = grace => Ok(()),
    }
}

/// The sockets a server answers on.
pub struct Listeners {
    /// Every endpoint in plain HTTP (`listen`).
    pub plain: TcpListener,
    /// The same endpoints over TLS: the federation port and the HTTPS port.
    pub tls: Vec<(TcpListener, TlsAcceptor)>,
    /// The ACME CA's port: challenge answers, and redirects to HTTPS.
    pub acme_http: Option<(TcpListener, Router)>,
}

impl Listeners {
    /// The client API, and the federation listener if there is one.
    pub fn new(plain: TcpListener, federation: Option<(TcpListener, TlsAcceptor)>) -> Self {
        Self {
            plain,
            tls: federation.into_iter().collect(),
            acme_http: None,
        }
    }
}

/// Binds every listener the configuration asks for, and starts keeping an
/// ACME certificate when `[acme]` is enabled.
async fn bind(config: &crate::config::Config) -> std::io::Result<Listeners> {
    let plain = TcpListener::bind(config.listen).await?;
    tracing::info!(address = %plain.local_addr()?, server_name = %config.server_name, "client API listening");
    let mut listeners = Listeners::new(plain, None);
    let tls_addresses: Vec<_> = config
        .federation_listen
        .into_iter()
        .chain(config.tls_listen)
        .collect();
    if tls_addresses.is_empty() && !config.acme.enabled {
        return Ok(listeners);
    }
    let io = |e: crate::error::Error| std::io::Error::other(e.to_string());
    let certs = crate::tls::server_certs(config).map_err(io)?;
    let acceptor = crate::tls::acceptor(certs.clone()).map_err(io)?;
    for address in tls_addresses {
        let listener = TcpListener::bind(address).await?;
        tracing::info!(address = %listener.local_addr()?, "listening (TLS)");
        listeners.tls.push((listener, acceptor.clone()));
    }
    if config.acme.enabled {
        let challenges = Arc::new(acme::Challenges::default());
        let listener = TcpListener::bind(config.acme.http_listen).await?;
        tracing::info!(address = %listener.local_addr()?, "ACME challenges and redirects to HTTPS listening");
        listeners.acme_http = Some((listener, acme::http01::router(config, challenges.clone())));
        acme::start(config, certs, challenges);
    }
    Ok(listeners)
}

const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Applies presence timeouts every few seconds while the services live.
fn start_presence_timeouts(services: &Arc<Services>) {
    let services = Arc::downgrade(services);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            let Some(services) = services.upgrade() else {
                return;
            };
            match services.presence.expire().await {
                Ok(changed) => {
                    for user in changed {
                        crate::federation::edus::presence_changed(&services, &user).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "presence timeouts"),
            }
        }
    });
}

/// Serves on already bound listeners until `shutdown` resolves (tests bind
/// port 0 themselves and never shut down).
pub async fn serve_on(
    listeners: Listeners,
    services: Arc<Services>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::ai::Ai::start(&services);
    start_presence_timeouts(&services);
    crate::push::gateway::start(&services);
    crate::federation::sender::start(&services);
    crate::search::start(&services);
    crate::ops::control::start(&services);
    if let Err(e) = crate::client::admin::resume_interrupted_room_deletions(&services) {
        tracing::error!(error = %e, "could not take up the interrupted room deletions");
    }
    crate::metrics::start_listener(&services).await?;
    let config = &services.config;
    let settings = ListenerSettings {
        gate: ConnectionGate::new(config.max_connections_per_ip, config.max_connections),
        header_timeout: config.header_timeout(),
        tls: None,
    };
    let router = app(services);
    // One shutdown signal for every listener.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = move |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let mut servers = vec![listener::serve(
        listeners.plain,
        router.clone(),
        settings.clone(),
        until_stopped(stopped.clone()),
    )];
    for (tls_listener, tls) in listeners.tls {
        let tls_settings = ListenerSettings {
            tls: Some(tls),
            ..settings.clone()
        };
        servers.push(listener::serve(
            tls_listener,
            router.clone(),
            tls_settings,
            until_stopped(stopped.clone()),
        ));
    }
    if let Some((port80, redirects)) = listeners.acme_http {
        servers.push(listener::serve(
            port80,
            redirects,
            settings,
            until_stopped(stopped),
        ));
    }
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    futures::future::join_all(servers)
        .await
        .into_iter()
        .collect()
}
