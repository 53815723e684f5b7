//! Sync fan-out benchmark: many users long-poll `/sync` while messages go
//! to many rooms, one sender per room. It measures how soon each message
//! reaches its room's other member (send → that member's long-poll answer)
//! and the server's CPU time per message; then the same load with ten
//! times fewer syncing users, to show whether idle syncs cost anything.
//! Prints figures; never fails on a time.
//!
//!   cargo run --example bench_fanout              # 1,000 users and rooms
//!   cargo run --example bench_fanout -- --quick   # 200 (CI)
//!   MATRIXOS_BASELINE_BIN=/path/to/older/matrixos cargo run --example bench_fanout
//!       # also runs the same load against another build, for comparison

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::watch::Arrivals;
use support::{cpu_ms, hwm_kib, rss_kib, Api};

mod support;

/// One run's load: `users` syncing, the first `active` rooms receiving
/// `messages` in turn.
struct Load {
    users: usize,
    active: usize,
    messages: usize,
    /// Messages per second, paced.
    rate: u64,
}

struct Figures {
    p50: Duration,
    p99: Duration,
    missing: usize,
    cpu_us: f64,
    /// The server's resident memory with every long-poll waiting, and its
    /// peak, in MiB.
    rss: f64,
    peak: f64,
}

fn start(bin: Option<&Path>, data: &Path, port: u16) -> support::Server {
    let ours = support::server_command(data, port);
    let mut command = match bin {
        Some(bin) => {
            let mut other = std::process::Command::new(bin);
            for (k, v) in ours.get_envs() {
                if let Some(v) = v {
                    other.env(k, v);
                }
            }
            other
        }
        None => ours,
    };
    support::spawn(
        command
            .env("MATRIXOS_AI_ENABLED", "false")
            .env("MATRIXOS_RATE_LIMIT_REGISTER", "0")
            .env("MATRIXOS_MAX_CONNECTIONS_PER_IP", "0")
            .env("MATRIXOS_MAX_CONNECTIONS", "20000")
            .stdout(std::process::Stdio::null()),
    )
}

/// Each user's sync filter: recent events, members lazily, no presence.
const FILTER: &str = r#"{"room":{"timeline":{"limit":50},"state":{"lazy_load_members":true}},"presence":{"not_types":["*"]}}"#;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn run(bin: Option<&Path>, load: &Load) -> Figures {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = support::free_port();
    let mut server = start(bin, dir.path(), port);
    let api = Arc::new(Api {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(usize::MAX)
            .build()
            .expect("client"),
        base: format!("http://127.0.0.1:{port}"),
    });
    support::wait_ready(&api.http, &api.base).await;

    // Users, eight registrations at a time; room i is user i's, and user
    // i + 1 is its other member.
    let mut users = Vec::with_capacity(load.users);
    for chunk in (0..load.users).collect::<Vec<_>>().chunks(8) {
        let batch = chunk.iter().map(|i| {
            let api = api.clone();
            async move { api.register(&format!("fan{i}")).await }
        });
        users.extend(futures::future::join_all(batch).await);
    }
    let mut rooms = Vec::with_capacity(load.active);
    for i in 0..load.active {
        let room = api.create_room(&users[i], &[]).await;
        api.join(&users[(i + 1) % load.users], &room).await;
        rooms.push(room);
    }

    let arrivals: Arrivals = Arc::default();
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut loops = Vec::new();
    for user in &users {
        loops.push(tokio::spawn(support::watch::sync_loop(
            api.clone(),
            user.clone(),
            FILTER,
            arrivals.clone(),
            stop.clone(),
        )));
    }
    // Let every long-poll settle into waiting.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let rss = rss_kib(server.id()) as f64 / 1024.0;
    let cpu_before = cpu_ms(server.id());
    let started = Instant::now();
    let interval = Duration::from_micros(1_000_000 / load.rate.max(1));
    let mut sends = Vec::with_capacity(load.messages);
    for k in 0..load.messages {
        tokio::time::sleep_until((started + interval * k as u32).into()).await;
        let room_index = k % load.active;
        let (api, sender, room) = (
            api.clone(),
            users[room_index].clone(),
            rooms[room_index].clone(),
        );
        sends.push(tokio::spawn(async move {
            let body = format!("m{k}");
            let sent_at = Instant::now();
            api.send(&sender, &room, &format!("t{k}"), &body).await;
            (body, sent_at)
        }));
    }
    let mut sent = Vec::with_capacity(sends.len());
    for s in sends {
        sent.push(s.await.expect("send"));
    }
    // Wait (bounded) for the last deliveries.
    for _ in 0..100 {
        if sent.iter().all(|(b, _)| arrivals.lock().contains_key(b)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cpu_us = (cpu_ms(server.id()) - cpu_before) as f64 * 1000.0 / load.messages as f64;
    stop.notify_waiters();
    for l in loops {
        l.abort();
    }
    let seen = arrivals.lock();
    let mut latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(b, at)| seen.get(b).map(|got| got.saturating_duration_since(*at)))
        .collect();
    latencies.sort();
    let missing = sent.len() - latencies.len();
    let peak = hwm_kib(server.id()) as f64 / 1024.0;
    let _ = server.kill();
    let _ = server.wait();
    Figures {
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        missing,
        cpu_us,
        rss,
        peak,
    }
}

fn print(label: &str, load: &Load, f: &Figures) {
    println!(
        "{label}: {} syncing users, {} rooms, {} messages at {}/s: delivery p50 {:.1} ms, p99 {:.1} ms{}; server CPU per message {:.0} µs; RSS {:.0} MiB, peak {:.0} MiB",
        load.users,
        load.active,
        load.messages,
        load.rate,
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3,
        if f.missing > 0 {
            format!(" ({} not delivered within 10 s)", f.missing)
        } else {
            String::new()
        },
        f.cpu_us,
        f.rss,
        f.peak
    );
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 200 } else { 1000 };
    let baseline = std::env::var_os("MATRIXOS_BASELINE_BIN").map(std::path::PathBuf::from);
    println!(
        "matrixos sync fan-out benchmark ({} mode)",
        if quick { "quick" } else { "full" }
    );
    let loads = [
        (
            "every room busy",
            Load {
                users: n,
                active: n,
                messages: 2 * n,
                rate: 200,
            },
        ),
        (
            "few rooms busy, all syncing",
            Load {
                users: n,
                active: n / 10,
                messages: n,
                rate: 200,
            },
        ),
        (
            "few rooms busy, few syncing",
            Load {
                users: n / 10,
                active: n / 10,
                messages: n,
                rate: 200,
            },
        ),
    ];
    for (label, load) in &loads {
        let figures = run(None, load).await;
        print(&format!("this build, {label}"), load, &figures);
        if let Some(bin) = &baseline {
            let figures = run(Some(bin), load).await;
            print(&format!("baseline, {label}"), load, &figures);
        }
    }
}
