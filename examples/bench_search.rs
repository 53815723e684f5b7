//! The `/search` benchmark: starts the real `matrixos` binary, fills four
//! rooms with varied messages (100,000 in all; 10,000 with `--quick`)
//! over the client API, then times searches of several kinds, best match
//! first and newest first. It never fails on a time.
//!
//!   cargo run --example bench_search            # full run
//!   cargo run --example bench_search -- --quick # small numbers (CI)

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::client::User;
use support::{cpu_ms, rss_kib, Api};

mod support;

const ROOMS: usize = 4;
const SENDERS: usize = 8;
/// Searches of each kind timed.
const SAMPLES: usize = 40;

/// A word list: syllables make thousands of distinct words, a few of them
/// common (Zipf-like: low numbers come up far more often).
fn word(n: u64) -> String {
    const SYLLABLES: [&str; 24] = [
        "ka", "lo", "mi", "ne", "ru", "ta", "so", "vi", "de", "pa", "zu", "ro", "fe", "gi", "ho",
        "ja", "be", "cu", "di", "fo", "ga", "hi", "ju", "ke",
    ];
    let mut out = String::new();
    let mut rest = n;
    loop {
        out.push_str(SYLLABLES[(rest % 24) as usize]);
        rest /= 24;
        if rest == 0 {
            break;
        }
    }
    out
}

/// Makes one search term of a kind from the random numbers.
type TermMaker = Box<dyn Fn(&mut Rng) -> String>;

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A word number, small ones far more likely.
    fn zipf(&mut self, vocabulary: u64) -> u64 {
        let a = self.next() % vocabulary + 1;
        let b = self.next() % a + 1;
        self.next() % b
    }
}

fn message(rng: &mut Rng) -> String {
    let words = 6 + rng.next() % 12;
    (0..words)
        .map(|_| word(rng.zipf(5_000)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn fill(api: &Arc<Api>, messages: usize) -> (Vec<User>, Vec<String>) {
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        senders.push(api.register(&format!("searcher{i}")).await);
    }
    let mut rooms = Vec::new();
    for _ in 0..ROOMS {
        let room = api.create_room(&senders[0], &[]).await;
        for s in &senders[1..] {
            api.join(s, &room).await;
        }
        rooms.push(room);
    }
    let per_sender = messages / SENDERS;
    let mut tasks = Vec::new();
    for (i, s) in senders.iter().cloned().enumerate() {
        let (api, rooms) = (api.clone(), rooms.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1));
            for n in 0..per_sender {
                let room = &rooms[n % ROOMS];
                api.send(&s, room, &format!("s{i}-{n}"), &message(&mut rng))
                    .await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender task");
    }
    (senders, rooms)
}

async fn search(api: &Api, user: &User, term: &str, order: &str) -> (Duration, u64) {
    let body = json!({ "search_categories": { "room_events": {
        "search_term": term, "order_by": order,
        "event_context": { "before_limit": 1, "after_limit": 1, "include_profile": true },
        "filter": { "limit": 10 } } } });
    let started = Instant::now();
    let answer = api
        .call(
            reqwest::Method::POST,
            "/_matrix/client/v3/search",
            Some(&user.token),
            Some(body),
        )
        .await;
    let took = started.elapsed();
    let count = answer["search_categories"]["room_events"]["count"]
        .as_u64()
        .unwrap_or_default();
    (took, count)
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let messages = if quick { 10_000 } else { 100_000 };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = support::free_port();
    let server = support::spawn(
        support::server_command(dir.path(), port).env("MATRIXOS_AI_ENABLED", "false"),
    );
    let api = Arc::new(Api {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}"),
    });
    support::wait_ready(&api.http, &api.base).await;
    println!(
        "search benchmark ({} mode: {messages} messages in {ROOMS} rooms, loopback HTTP)",
        if quick { "quick" } else { "full" }
    );
    let cpu_before = cpu_ms(server.id());
    let started = Instant::now();
    let (senders, _rooms) = fill(&api, messages).await;
    let sent = started.elapsed();
    // The first search waits for the index to take in every message.
    let (caught_up, _) = search(&api, &senders[0], &word(1), "rank").await;
    println!(
        "  {messages} messages sent in {:.1} s ({:.0}/s, indexing included: server CPU {:.0} µs per message); first search after the last send {:.0} ms",
        sent.as_secs_f64(),
        messages as f64 / sent.as_secs_f64(),
        (cpu_ms(server.id()) - cpu_before) as f64 * 1000.0 / messages as f64,
        caught_up.as_secs_f64() * 1e3
    );
    let mut rng = Rng(7);
    let kinds: [(&str, TermMaker); 4] = [
        ("common word", Box::new(|r: &mut Rng| word(r.next() % 5))),
        (
            "rare word",
            Box::new(|r: &mut Rng| word(1_000 + r.next() % 4_000)),
        ),
        (
            "two words",
            Box::new(|r: &mut Rng| format!("{} {}", word(r.next() % 50), word(r.next() % 50))),
        ),
        (
            "prefix",
            Box::new(|r: &mut Rng| {
                let w = word(600 + r.next() % 4_000);
                w[..w.len().min(4)].to_owned()
            }),
        ),
    ];
    for order in ["rank", "recent"] {
        for (label, term) in &kinds {
            let mut times = Vec::new();
            let mut matched = 0;
            for n in 0..SAMPLES {
                let user = &senders[n % SENDERS];
                let (took, count) = search(&api, user, &term(&mut rng), order).await;
                matched += count;
                times.push(took);
            }
            times.sort();
            println!(
                "  {order:>6}, {label:<11}: p50 {:.2} ms, p99 {:.2} ms (mean {} matches)",
                percentile(&times, 0.5).as_secs_f64() * 1e3,
                percentile(&times, 0.99).as_secs_f64() * 1e3,
                matched / SAMPLES as u64
            );
        }
    }
    let index_bytes: u64 = std::fs::read_dir(dir.path().join("search-v1"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or_default();
    println!(
        "  index on disk {:.1} MiB; server RSS {:.0} MiB",
        index_bytes as f64 / (1 << 20) as f64,
        rss_kib(server.id()) as f64 / 1024.0
    );
}
