//! Requests per route, method and status, and their durations.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use parking_lot::Mutex;

use super::Metrics;

/// Upper bounds of the duration histogram's buckets, in seconds.
pub(super) const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// One route and method: answers by status, and the duration histogram.
#[derive(Default, Clone)]
pub(super) struct RouteRecord {
    pub statuses: HashMap<u16, u64>,
    /// Cumulative counts per bucket of `BUCKETS`.
    pub buckets: [u64; BUCKETS.len()],
    pub count: u64,
    pub sum_seconds: f64,
}

#[derive(Default)]
pub(super) struct RouteStats {
    /// (method, route template) → record.
    pub records: Mutex<HashMap<(&'static str, Arc<str>), RouteRecord>>,
    pub in_flight: AtomicI64,
    pub syncs_in_flight: AtomicI64,
}

fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::HEAD => "HEAD",
        http::Method::PATCH => "PATCH",
        _ => "other",
    }
}

fn is_sync(route: &str) -> bool {
    route.ends_with("/sync") || route.ends_with("/events")
}

/// Counts a request in flight until dropped (also when the client goes
/// away mid-request and the handler's future is dropped).
struct InFlight<'a> {
    stats: &'a RouteStats,
    sync: bool,
}

impl<'a> InFlight<'a> {
    fn enter(stats: &'a RouteStats, sync: bool) -> Self {
        stats.in_flight.fetch_add(1, Ordering::Relaxed);
        if sync {
            stats.syncs_in_flight.fetch_add(1, Ordering::Relaxed);
        }
        Self { stats, sync }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        if self.sync {
            self.stats.syncs_in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The route layer that counts every routed request.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route: Arc<str> = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| Arc::from("unmatched"), |p| Arc::from(p.as_str()));
    let method = method_label(request.method());
    let stats = &metrics.routes;
    let _in_flight = InFlight::enter(stats, is_sync(&route));
    let started = Instant::now();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let mut records = stats.records.lock();
    let record = records.entry((method, route)).or_default();
    *record
        .statuses
        .entry(response.status().as_u16())
        .or_default() += 1;
    for (bucket, bound) in record.buckets.iter_mut().zip(BUCKETS) {
        if seconds <= bound {
            *bucket += 1;
        }
    }
    record.count += 1;
    record.sum_seconds += seconds;
    drop(records);
    response
}
