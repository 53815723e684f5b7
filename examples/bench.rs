//! The Matrix OS benchmark: starts the real `matrixos` binary on a loopback
//! port with a fresh data directory and drives it over the public client
//! API, then prints figures. It never fails on a time.
//!
//!   cargo run --example bench            # full run
//!   cargo run --example bench -- --quick # small numbers (CI)

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::client::{send_from_each, User};
use support::{cpu_ms, enc, hwm_kib, rss_kib, Api};

mod support;

struct Sizes {
    events: usize,
    latency_samples: usize,
    sync_rooms: usize,
    sync_events: usize,
    pages: usize,
    rooms: usize,
}

const FULL: Sizes = Sizes {
    events: 20_000,
    latency_samples: 500,
    sync_rooms: 50,
    sync_events: 100,
    pages: 500,
    rooms: 500,
};
const QUICK: Sizes = Sizes {
    events: 2_000,
    latency_samples: 50,
    sync_rooms: 10,
    sync_events: 20,
    pages: 50,
    rooms: 50,
};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn start_server(data: &std::path::Path, port: u16, sync_writes: bool) -> support::Server {
    // The homeserver core alone: no AI users (whose DM rooms would change
    // the room counts); `bench_ai` measures those.
    support::spawn(
        support::server_command(data, port)
            .env("MATRIXOS_SYNC_WRITES", sync_writes.to_string())
            .env("MATRIXOS_AI_ENABLED", "false"),
    )
}

async fn wait_ready(api: &Api) {
    support::wait_ready(&api.http, &api.base).await;
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = if quick { QUICK } else { FULL };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = support::free_port();
    let mut server = start_server(dir.path(), port, true);
    let api = Arc::new(Api {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}"),
    });
    wait_ready(&api).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_rss = rss_kib(server.id());
    println!(
        "matrixos benchmark ({} mode, durable writes, loopback HTTP)",
        if quick { "quick" } else { "full" }
    );
    println!("idle RSS: {:.1} MiB", idle_rss as f64 / 1024.0);

    // 1. Send throughput: 8 senders in one room.
    let (senders, room, rate, cpu) = send_throughput(&api, sizes.events, server.id()).await;
    println!(
        "send throughput, 1 room, 8 senders: {rate:.0} events/s ({} events; CPU per event: server {:.0} µs, load generator {:.0} µs)",
        sizes.events / 8 * 8,
        cpu.server,
        cpu.load
    );

    // 2. Send-to-sync delivery latency for a long-polling receiver.
    let receiver = senders[1].clone();
    let mut since = api
        .sync(
            &receiver,
            None,
            0,
            Some(r#"{"room":{"timeline":{"limit":1}}}"#),
        )
        .await["next_batch"]
        .as_str()
        .expect("next_batch")
        .to_owned();
    let mut latencies = Vec::new();
    for n in 0..sizes.latency_samples {
        let (api2, recv, s2) = (api.clone(), receiver.clone(), since.clone());
        let poll = tokio::spawn(async move {
            (
                api2.sync(&recv, Some(&s2), 30_000, None).await,
                Instant::now(),
            )
        });
        tokio::time::sleep(Duration::from_millis(2)).await;
        let sent_at = Instant::now();
        let event_id = api
            .send(&senders[0], &room, &format!("lat{n}"), "ping")
            .await;
        let (mut body, mut got_at) = poll.await.expect("poll");
        // The long-poll may have returned before the event was visible; poll on.
        loop {
            let found = body["rooms"]["join"][&room]["timeline"]["events"]
                .as_array()
                .is_some_and(|evs| evs.iter().any(|e| e["event_id"] == event_id));
            since = body["next_batch"].as_str().expect("next_batch").to_owned();
            if found {
                break;
            }
            body = api.sync(&receiver, Some(&since), 30_000, None).await;
            got_at = Instant::now();
        }
        latencies.push(got_at - sent_at);
    }
    latencies.sort();
    println!(
        "send-to-sync delivery latency: p50 {:.2} ms, p99 {:.2} ms ({} samples)",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.len()
    );

    // 3. Initial sync for one user in N rooms × M events.
    let reader = api.register("reader").await;
    let others: Vec<User> = senders[2..6].to_vec();
    for r in 0..sizes.sync_rooms {
        let room = api.create_room(&reader, &[]).await;
        for o in &others {
            api.join(o, &room).await;
        }
        for n in 0..sizes.sync_events {
            let who = &others[n % others.len()];
            api.send(who, &room, &format!("s{r}-{n}"), "history").await;
        }
    }
    for (label, filter) in [
        ("full members", None),
        (
            "lazy-loaded members",
            Some(r#"{"room":{"state":{"lazy_load_members":true}}}"#),
        ),
    ] {
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let body = api.sync(&reader, None, 0, filter).await;
            times.push(t.elapsed());
            assert_eq!(
                body["rooms"]["join"].as_object().map(|m| m.len()),
                Some(sizes.sync_rooms)
            );
        }
        times.sort();
        println!(
            "initial sync, {} rooms x {} events, {label}: median {:.1} ms",
            sizes.sync_rooms,
            sizes.sync_events,
            times[2].as_secs_f64() * 1e3
        );
    }

    // 4. /messages pagination, pages of 100 backwards through the busy room.
    let started = Instant::now();
    let cpu_before = cpu_ms(server.id());
    let mut from: Option<String> = None;
    let mut pages = 0;
    while pages < sizes.pages {
        let mut path = format!(
            "/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100",
            enc(&room)
        );
        if let Some(f) = &from {
            path.push_str(&format!("&from={f}"));
        }
        let body = api
            .call(reqwest::Method::GET, &path, Some(&senders[0].token), None)
            .await;
        pages += 1;
        match body["end"].as_str() {
            Some(end) => from = Some(end.to_owned()),
            None => from = None,
        }
    }
    let elapsed = started.elapsed();
    println!(
        "/messages pagination: {:.0} pages of 100 events/s ({pages} pages; server CPU per page {:.0} µs)",
        pages as f64 / elapsed.as_secs_f64(),
        (cpu_ms(server.id()) - cpu_before) as f64 * 1000.0 / pages as f64
    );

    // 5. Room creation rate (sequential, one creator).
    let started = Instant::now();
    let cpu_before = cpu_ms(server.id());
    for _ in 0..sizes.rooms {
        api.create_room(&senders[7], &[]).await;
    }
    let elapsed = started.elapsed();
    println!(
        "room creation: {:.0} rooms/s ({} rooms; server CPU per room {:.0} µs)",
        sizes.rooms as f64 / elapsed.as_secs_f64(),
        sizes.rooms,
        (cpu_ms(server.id()) - cpu_before) as f64 * 1000.0 / sizes.rooms as f64
    );

    // 6. Simplified sliding sync for the user now in those rooms.
    sliding_sync(&api, &senders[7], &senders[6]).await;

    println!(
        "peak RSS: {:.1} MiB; RSS now: {:.1} MiB",
        hwm_kib(server.id()) as f64 / 1024.0,
        rss_kib(server.id()) as f64 / 1024.0
    );
    let _ = server.kill();
    let _ = server.wait();

    // The same send load with the WAL written but not synced per write:
    // still safe against kill -9 (the OS has the log), not power loss.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = start_server(dir.path(), port, false);
    wait_ready(&api).await;
    let (_, _, rate, _) = send_throughput(&api, sizes.events, server.id()).await;
    println!(
        "send throughput without per-write WAL sync (sync_writes = false): {rate:.0} events/s"
    );
    let _ = server.kill();
    let _ = server.wait();
}

/// Registers 8 users in one room and has each send `events / 8` messages
/// one after another, all 8 at once; answers the users, the room, the rate
/// in events/s and the server's CPU time per event in µs.
/// CPU time per event sent, in µs: the server's, and this load generator's
/// (which shares the same cores).
struct CpuPerEvent {
    server: f64,
    load: f64,
}

async fn send_throughput(
    api: &Arc<Api>,
    events: usize,
    server: u32,
) -> (Vec<User>, String, f64, CpuPerEvent) {
    let (senders, room) = api.senders_in_one_room(8).await;
    let per_sender = events / senders.len();
    let started = Instant::now();
    let cpu_before = cpu_ms(server);
    let own_cpu_before = cpu_ms(std::process::id());
    let sent = send_from_each(api, &senders, &room, per_sender, "t").await as f64;
    let rate = sent / started.elapsed().as_secs_f64();
    let per_event = |ms: u64| ms as f64 * 1000.0 / sent;
    let cpu = CpuPerEvent {
        server: per_event(cpu_ms(server) - cpu_before),
        load: per_event(cpu_ms(std::process::id()) - own_cpu_before),
    };
    (senders, room, rate, cpu)
}

const SLIDING_SYNC: &str = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync";

/// The first sliding sync answer of a new connection as Element X asks it
/// (the 20 most recent rooms, one event each, its state list) and for the
/// whole list at once; then an incremental answer after one new message.
async fn sliding_sync(api: &Api, user: &User, other: &User) {
    let request = |end: usize, conn: &str| {
        serde_json::json!({ "conn_id": conn, "lists": { "all": {
            "ranges": [[0, end]], "timeline_limit": 1,
            "required_state": [["m.room.name", ""], ["m.room.encryption", ""],
                ["m.room.member", "$LAZY"], ["m.room.member", "$ME"], ["m.room.topic", ""],
                ["m.room.avatar", ""], ["m.room.canonical_alias", ""],
                ["m.room.power_levels", ""], ["m.room.join_rules", ""],
                ["m.room.create", ""], ["m.room.history_visibility", ""],
                ["m.space.parent", "*"], ["m.space.child", "*"]] } },
            "extensions": { "account_data": { "enabled": true },
                "receipts": { "enabled": true }, "typing": { "enabled": true } } })
    };
    let post = |path: String, body: serde_json::Value| async move {
        let started = Instant::now();
        let answer = api
            .call(reqwest::Method::POST, &path, Some(&user.token), Some(body))
            .await;
        (started.elapsed(), answer)
    };
    let mut count = 0;
    for (label, end) in [("20-room window", 19), ("every room", 9_999)] {
        let mut times = Vec::new();
        for n in 0..5 {
            let (took, answer) = post(
                format!("{SLIDING_SYNC}?timeout=0"),
                request(end, &format!("b{end}-{n}")),
            )
            .await;
            count = answer["lists"]["all"]["count"].as_u64().unwrap_or_default();
            times.push(took);
        }
        times.sort();
        println!(
            "sliding sync, first answer for a user in {count} rooms, {label}: median {:.1} ms",
            times[2].as_secs_f64() * 1e3
        );
    }
    let (_, first) = post(
        format!("{SLIDING_SYNC}?timeout=0"),
        request(19, "incremental"),
    )
    .await;
    let mut pos = first["pos"].as_str().expect("pos").to_owned();
    let room = first["rooms"]
        .as_object()
        .and_then(|r| r.keys().next_back().cloned())
        .expect("room");
    api.join(other, &room).await;
    let mut times = Vec::new();
    for n in 0..20 {
        api.send(other, &room, &format!("ss{n}"), "news").await;
        let path = format!("{SLIDING_SYNC}?timeout=0&pos={}", enc(&pos));
        let (took, answer) = post(path, request(19, "incremental")).await;
        pos = answer["pos"].as_str().expect("pos").to_owned();
        times.push(took);
    }
    times.sort();
    println!(
        "sliding sync, incremental answer (one new message) for a user in {count} rooms: median {:.2} ms, p99 {:.2} ms",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3
    );
}
