//! Prometheus metrics: counters the server keeps as it works, served as
//! text at `/metrics` on their own listener (`metrics_listen`), off unless
//! configured. Label sets are bounded: routes are the router's templates,
//! methods the standard ones, statuses three digits.

mod http_layer;
mod render;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use matrixos_storage::Batch;
use ruma::OwnedServerName;

pub use http_layer::track;
use http_layer::RouteStats;

use crate::rooms::{AppendHook, Appended, Rooms};
use crate::services::Services;

/// Every counter; one per server.
#[derive(Default)]
pub struct Metrics {
    routes: RouteStats,
    events_local: AtomicU64,
    events_remote: AtomicU64,
    federation_sent: AtomicU64,
    federation_failed: AtomicU64,
    federation_refused: AtomicU64,
    ai_runs_ok: AtomicU64,
    ai_runs_failed: AtomicU64,
    ai_tokens_in: AtomicU64,
    ai_tokens_out: AtomicU64,
    /// In millionths of a dollar.
    ai_cost_micro_usd: AtomicU64,
}

/// How a federation transaction ended.
pub enum Transaction {
    Sent,
    Failed,
    Refused,
}

/// One AI run, as the ledger records it.
pub struct AiRun {
    pub ok: bool,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
}

impl Metrics {
    pub fn transaction(&self, outcome: Transaction) {
        let counter = match outcome {
            Transaction::Sent => &self.federation_sent,
            Transaction::Failed => &self.federation_failed,
            Transaction::Refused => &self.federation_refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn ai_run(&self, run: AiRun) {
        let runs = if run.ok {
            &self.ai_runs_ok
        } else {
            &self.ai_runs_failed
        };
        runs.fetch_add(1, Ordering::Relaxed);
        self.ai_tokens_in
            .fetch_add(run.tokens_in, Ordering::Relaxed);
        self.ai_tokens_out
            .fetch_add(run.tokens_out, Ordering::Relaxed);
        let micro = (run.cost_usd.max(0.0) * 1e6).round() as u64;
        self.ai_cost_micro_usd.fetch_add(micro, Ordering::Relaxed);
    }
}

/// Counts every event appended to a timeline, by where its sender lives.
pub struct EventCounter {
    pub metrics: Arc<Metrics>,
    pub server_name: OwnedServerName,
}

impl AppendHook for EventCounter {
    fn appended(&self, _: &Rooms, _: &mut Batch, event: &Appended<'_>) -> crate::error::Result<()> {
        let counter = if event.pdu.sender.server_name() == self.server_name {
            &self.metrics.events_local
        } else {
            &self.metrics.events_remote
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Serves `/metrics` on `metrics_listen`, if configured, while the
/// services live.
pub async fn start_listener(services: &Arc<Services>) -> std::io::Result<()> {
    let Some(address) = services.config.metrics_listen else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(address = %listener.local_addr()?, "metrics listening");
    let services = Arc::downgrade(services);
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let services = services.clone();
            async move {
                let Some(services) = services.upgrade() else {
                    return (http::StatusCode::SERVICE_UNAVAILABLE, String::new());
                };
                let text = tokio::task::spawn_blocking(move || render::text(&services))
                    .await
                    .unwrap_or_default();
                (http::StatusCode::OK, text)
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "metrics listener stopped");
        }
    });
    Ok(())
}
