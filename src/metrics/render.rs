//! The Prometheus text format (version 0.0.4).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use matrixos_storage::tables;

use super::http_layer::BUCKETS;
use crate::services::Services;

/// Outbox rows counted at most, so a scrape stays quick on a huge queue.
const OUTBOX_COUNT_CAP: usize = 1_000_000;

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn http(out: &mut String, s: &Services) {
    let stats = &s.metrics.routes;
    let mut records: Vec<_> = stats
        .records
        .lock()
        .iter()
        .map(|(key, record)| (key.clone(), record.clone()))
        .collect();
    records.sort_by(|a, b| a.0.cmp(&b.0));
    family(
        out,
        "matrixos_http_requests_total",
        "counter",
        "Requests answered, by route, method and status.",
    );
    for ((method, route), record) in &records {
        let mut statuses: Vec<_> = record.statuses.iter().collect();
        statuses.sort();
        for (status, count) in statuses {
            let _ = writeln!(
                out,
                "matrixos_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
                escape(route)
            );
        }
    }
    let name = "matrixos_http_request_duration_seconds";
    family(
        out,
        name,
        "histogram",
        "Time to answer, by route and method.",
    );
    for ((method, route), record) in &records {
        let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
        for (bound, count) in BUCKETS.iter().zip(record.buckets) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels},le=\"+Inf\"}} {}",
            record.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", record.sum_seconds);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", record.count);
    }
    let gauges = [
        (
            "matrixos_http_requests_in_flight",
            "Requests being answered.",
            &stats.in_flight,
        ),
        (
            "matrixos_sync_requests_in_flight",
            "Syncs being answered or long-polling.",
            &stats.syncs_in_flight,
        ),
    ];
    for (name, help, value) in gauges {
        family(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
    }
}

fn counters(out: &mut String, s: &Services) {
    let m = &s.metrics;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    family(
        out,
        "matrixos_events_appended_total",
        "counter",
        "Events added to room timelines, by the sender's server.",
    );
    let _ = writeln!(
        out,
        "matrixos_events_appended_total{{origin=\"local\"}} {}",
        load(&m.events_local)
    );
    let _ = writeln!(
        out,
        "matrixos_events_appended_total{{origin=\"remote\"}} {}",
        load(&m.events_remote)
    );
    family(
        out,
        "matrixos_federation_transactions_total",
        "counter",
        "Transactions to other servers, by outcome.",
    );
    for (outcome, counter) in [
        ("sent", &m.federation_sent),
        ("failed", &m.federation_failed),
        ("refused", &m.federation_refused),
    ] {
        let _ = writeln!(
            out,
            "matrixos_federation_transactions_total{{outcome=\"{outcome}\"}} {}",
            load(counter)
        );
    }
    family(
        out,
        "matrixos_ai_runs_total",
        "counter",
        "AI runs, by outcome.",
    );
    let _ = writeln!(
        out,
        "matrixos_ai_runs_total{{outcome=\"ok\"}} {}",
        load(&m.ai_runs_ok)
    );
    let _ = writeln!(
        out,
        "matrixos_ai_runs_total{{outcome=\"error\"}} {}",
        load(&m.ai_runs_failed)
    );
    family(
        out,
        "matrixos_ai_tokens_total",
        "counter",
        "Model tokens used by AI runs.",
    );
    let _ = writeln!(
        out,
        "matrixos_ai_tokens_total{{direction=\"in\"}} {}",
        load(&m.ai_tokens_in)
    );
    let _ = writeln!(
        out,
        "matrixos_ai_tokens_total{{direction=\"out\"}} {}",
        load(&m.ai_tokens_out)
    );
    family(
        out,
        "matrixos_ai_cost_usd_total",
        "counter",
        "What AI runs cost, in US dollars.",
    );
    let _ = writeln!(
        out,
        "matrixos_ai_cost_usd_total {}",
        load(&m.ai_cost_micro_usd) as f64 / 1e6
    );
}

fn gauges(out: &mut String, s: &Services) {
    let queued = tables::FEDERATION_OUTBOX
        .scan_prefix(&s.store.db, b"")
        .take(OUTBOX_COUNT_CAP)
        .count();
    family(
        out,
        "matrixos_federation_outbox_rows",
        "gauge",
        "Events and EDUs waiting to go to other servers (counted up to a million).",
    );
    let _ = writeln!(out, "matrixos_federation_outbox_rows {queued}");
    if let Some(bytes) = resident_bytes() {
        family(
            out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        let _ = writeln!(out, "process_resident_memory_bytes {bytes}");
    }
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Every metric, as Prometheus scrapes it.
pub fn text(s: &Services) -> String {
    let mut out = String::with_capacity(16 * 1024);
    http(&mut out, s);
    counters(&mut out, s);
    gauges(&mut out, s);
    out
}
