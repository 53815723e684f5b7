//! The AI user benchmark: the real `matrixos` binary with an
//! OpenAI-compatible model endpoint served here (it answers at once, so
//! what is measured is Matrix OS, not a model). Prints the kernel's own
//! time per run (from the usage ledger: run time minus time waiting for
//! the model), message-to-answer time, and resident memory per idle
//! person-with-AI. It never fails on a time.
//!
//!   cargo run --example bench_ai            # full run
//!   cargo run --example bench_ai -- --quick # small numbers (CI)

use std::time::{Duration, Instant};

use axum::routing::post;
use serde_json::json;
use support::{enc, hwm_kib, rss_kib, Api};

mod support;

/// An OpenAI-style stream that says "ok".
async fn model() -> ([(&'static str, &'static str); 1], String) {
    let chunk = json!({ "choices": [{ "index": 0, "delta": { "content": "ok" }, "finish_reason": "stop" }] });
    let usage = json!({ "choices": [], "usage": { "prompt_tokens": 500, "completion_tokens": 2 } });
    (
        [("content-type", "text/event-stream")],
        format!("data: {chunk}\n\ndata: {usage}\n\ndata: [DONE]\n\n"),
    )
}

fn start_server(data: &std::path::Path, port: u16, model_base: &str) -> support::Server {
    support::spawn(
        support::server_command(data, port)
            .env("MATRIXOS_RATE_LIMIT_REGISTER", "0")
            .env("MATRIXOS_AI_PROVIDER", "openai")
            .env("MATRIXOS_AI_BASE_URL", model_base)
            .env("MATRIXOS_AI_MODEL", "bench"),
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (people, runs) = if quick { (20, 10) } else { (200, 100) };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind model");
    let model_base = format!("http://{}/v1", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let app = axum::Router::new().route("/v1/chat/completions", post(model));
        let _ = axum::serve(listener, app).await;
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let port = support::free_port();
    let mut server = start_server(dir.path(), port, &model_base);
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}"),
    };
    support::wait_ready(&api.http, &api.base).await;
    println!(
        "matrixos AI benchmark ({} mode)",
        if quick { "quick" } else { "full" }
    );

    // Runs: one person talks to their AI, one message at a time.
    let token = api.register("talker").await.token;
    let direct = api
        .call(
            reqwest::Method::GET,
            "/_matrix/client/v3/user/%40talker%3Alocalhost/account_data/m.direct",
            Some(&token),
            None,
        )
        .await;
    let room = direct["@talker_ai:localhost"][0]
        .as_str()
        .expect("DM room")
        .to_owned();
    let mut since = api
        .call(
            reqwest::Method::GET,
            "/_matrix/client/v3/sync?timeout=0",
            Some(&token),
            None,
        )
        .await["next_batch"]
        .as_str()
        .expect("next_batch")
        .to_owned();
    let mut round_trips = Vec::new();
    for n in 0..runs {
        let started = Instant::now();
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/b{n}",
            enc(&room)
        );
        api.call(
            reqwest::Method::PUT,
            &path,
            Some(&token),
            Some(json!({ "msgtype": "m.text", "body": "hello" })),
        )
        .await;
        'wait: loop {
            let path = format!(
                "/_matrix/client/v3/sync?timeout=10000&since={}",
                enc(&since)
            );
            let body = api
                .call(reqwest::Method::GET, &path, Some(&token), None)
                .await;
            since = body["next_batch"].as_str().expect("next_batch").to_owned();
            for ev in body["rooms"]["join"][&room]["timeline"]["events"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if ev["sender"] == "@talker_ai:localhost" && ev["type"] == "m.room.message" {
                    break 'wait;
                }
            }
        }
        round_trips.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let usage = api
        .call(
            reqwest::Method::GET,
            "/_matrixos/v1/usage",
            Some(&token),
            None,
        )
        .await;
    let mut overhead: Vec<f64> = usage["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["kernel_us"].as_f64().unwrap_or(0.0) / 1000.0)
        .collect();
    overhead.sort_by(f64::total_cmp);
    round_trips.sort_by(f64::total_cmp);
    println!(
        "kernel time per run (all but the model wait): p50 {:.2} ms, p99 {:.2} ms ({} runs)",
        percentile(&overhead, 0.5),
        percentile(&overhead, 0.99),
        overhead.len()
    );
    println!(
        "message to AI answer through /sync (instant model): p50 {:.1} ms, p99 {:.1} ms",
        percentile(&round_trips, 0.5),
        percentile(&round_trips, 0.99)
    );

    // Memory: people registered (each with an AI user, home, device, DM).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(server.id());
    let started = Instant::now();
    for n in 0..people {
        api.register(&format!("idle{n}")).await;
    }
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = rss_kib(server.id());
    let per = (after.saturating_sub(before)) as f64 / people as f64;
    println!(
        "{people} people with their AI users registered in {:.1} s; RSS {:.1} -> {:.1} MiB ({:.0} KiB each, RocksDB memtables included)",
        took.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        per
    );
    println!(
        "peak RSS during the run: {:.1} MiB",
        hwm_kib(server.id()) as f64 / 1024.0
    );
    let _ = server.kill();
    let _ = server.wait();

    // The same server restarted: what idle AI users cost once loaded (the
    // reminder scheduler opens every home at start), against an empty one.
    let empty_dir = tempfile::tempdir().expect("temp dir");
    let mut empty = start_server(empty_dir.path(), port, &model_base);
    let empty_rss = settled_rss(&api, &empty).await;
    let _ = empty.kill();
    let _ = empty.wait();
    let mut server = start_server(dir.path(), port, &model_base);
    let loaded_rss = settled_rss(&api, &server).await;
    let per = loaded_rss.saturating_sub(empty_rss) as f64 / (people + 1) as f64;
    println!(
        "restarted with {} people: RSS {:.1} MiB (empty server {:.1} MiB): {:.0} KiB per idle AI user",
        people + 1,
        loaded_rss as f64 / 1024.0,
        empty_rss as f64 / 1024.0,
        per
    );
    if per > 0.0 {
        println!(
            "idle AI users per GiB of RAM at that rate: about {:.0}",
            (1024.0 * 1024.0) / per
        );
    }
    let _ = server.kill();
    let _ = server.wait();
}

/// RSS once the server answers and has had two seconds to settle.
async fn settled_rss(api: &Api, server: &std::process::Child) -> u64 {
    support::wait_ready(&api.http, &api.base).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    rss_kib(server.id())
}
