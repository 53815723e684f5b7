//! Federation fan-out benchmark: one Matrix OS server with a room that
//! users of N other Matrix OS servers have joined (loopback, TLS). A burst
//! of messages is sent on the first; it measures how long until every
//! server's long-polling client has every message, the spread between the
//! first and the last server, and the sending server's CPU time per PDU
//! delivered. Prints figures; never fails on a time.
//!
//!   cargo run --example bench_federation_fanout              # 20 servers, 300 messages
//!   cargo run --example bench_federation_fanout -- --quick   # 8 servers, 100 messages

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::federation::{arrived, join, start, Peer, FILTER};
use support::watch::Arrivals;
use support::{cpu_ms, hwm_kib};

mod support;

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (servers, burst) = if quick { (8, 100) } else { (20, 300) };
    let dirs: Vec<_> = (0..=servers)
        .map(|_| tempfile::tempdir().expect("dir"))
        .collect();
    let origin = start(dirs[0].path()).await;
    let mut others: Vec<Peer> = Vec::with_capacity(servers);
    for dir in &dirs[1..] {
        others.push(start(dir.path()).await);
    }
    let alice = origin.api.register("alice").await;
    let room = origin.api.create_room(&alice, &[]).await;
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut watchers = Vec::new();
    let mut arrivals: Vec<Arrivals> = Vec::new();
    for peer in &others {
        let user = peer.api.register("bob").await;
        join(peer, &user, &room, &origin.name).await;
        let seen: Arrivals = Arc::default();
        watchers.push(tokio::spawn(support::watch::sync_loop(
            peer.api.clone(),
            user,
            FILTER,
            seen.clone(),
            stop.clone(),
        )));
        arrivals.push(seen);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let cpu_before = cpu_ms(origin.process.id());
    let started = Instant::now();
    for i in 0..burst {
        origin
            .api
            .send(&alice, &room, &format!("f{i}"), &format!("fan {i}"))
            .await;
    }
    let sent_in = started.elapsed();
    let last_text = format!("fan {}", burst - 1);
    let mut finished = Vec::with_capacity(servers);
    let mut complete = 0;
    for seen in &arrivals {
        let left = Duration::from_secs(120).saturating_sub(started.elapsed());
        if let Some(at) = arrived(seen, &last_text, left).await {
            finished.push(at.saturating_duration_since(started));
        }
        let got = (0..burst)
            .filter(|i| seen.lock().contains_key(&format!("fan {i}")))
            .count();
        complete += usize::from(got == burst);
    }
    let cpu = cpu_ms(origin.process.id()).saturating_sub(cpu_before);
    let peak = hwm_kib(origin.process.id());
    stop.notify_waiters();
    for watcher in watchers {
        let _ = watcher.await;
    }
    finished.sort();
    let (first, last) = (
        finished.first().copied().unwrap_or_default(),
        finished.last().copied().unwrap_or_default(),
    );
    let delivered = (burst * finished.len()) as f64;
    println!(
        "federation fan-out benchmark (Matrix OS to {servers} Matrix OS servers, loopback, TLS)"
    );
    println!(
        "  {burst} messages sent in {:.2} s; {complete}/{servers} servers got all of them",
        sent_in.as_secs_f64()
    );
    println!(
        "  last message at every server: first {:.2} s, last {:.2} s after the burst began",
        first.as_secs_f64(),
        last.as_secs_f64()
    );
    println!(
        "  {:.0} PDU deliveries/s; sending server CPU {:.3} ms per PDU delivered, {:.0} MiB peak",
        delivered / last.as_secs_f64().max(0.001),
        cpu as f64 / delivered.max(1.0),
        peak as f64 / 1024.0
    );
}
