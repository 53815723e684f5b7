//! Accepting and serving HTTP/1.1 connections.
//!
//! `axum::serve` gives no access to hyper's connection settings, so the
//! server runs its own accept loop: it admits a connection only within the
//! caps of [`ConnectionGate`], gives each client `header_timeout` to send a
//! request's headers (which also closes idle keep-alive connections), tells
//! handlers the peer's address (`ConnectInfo`), and on shutdown stops
//! accepting, lets open requests finish and waits for every connection.
//! The federation listener speaks TLS on the same loop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::connections::{Admitted, ConnectionGate};

/// What each connection is held to.
#[derive(Clone)]
pub struct ListenerSettings {
    pub gate: Arc<ConnectionGate>,
    pub header_timeout: Duration,
    /// TLS on every connection (the federation listener), within the
    /// header timeout.
    pub tls: Option<TlsAcceptor>,
}

/// Serves `router` on `listener` until `shutdown` resolves, then waits for
/// the open connections to finish their requests and close.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ListenerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Every connection holds a receiver: a change asks it to finish, and
    // the sender sees it closed once the last connection is gone.
    let (stop, _) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(admitted) = settings.gate.admit(peer.ip()) else {
            tracing::debug!(peer = %peer, "connection refused: over the connection cap");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (router, stop, timeout) = (router.clone(), stop.subscribe(), settings.header_timeout);
        match settings.tls.clone() {
            None => {
                tokio::spawn(serve_connection(
                    stream, peer, router, timeout, stop, admitted,
                ));
            }
            Some(tls) => {
                tokio::spawn(async move {
                    match tokio::time::timeout(timeout, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, peer, router, timeout, stop, admitted).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
    drop(listener);
    let _ = stop.send(());
    stop.closed().await;
    Ok(())
}

/// Failed accepts are mostly the peer giving up (skip it); running out of
/// file descriptors is not, and retrying at once would spin.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    ) {
        return;
    }
    tracing::warn!(error = %e, "accepting a connection");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    peer: SocketAddr,
    router: Router,
    header_timeout: Duration,
    mut stop: watch::Receiver<()>,
    _admitted: Admitted,
) {
    let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(request)
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(peer = %peer, error = %e, "connection ended");
            }
            return;
        }
        _ = stop.changed() => {}
    }
    connection.as_mut().graceful_shutdown();
    if let Err(e) = connection.await {
        tracing::debug!(peer = %peer, error = %e, "connection ended");
    }
}
