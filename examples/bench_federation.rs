//! Federation benchmark: two Matrix OS servers on loopback, each with its
//! TLS federation listener; a user of the second joins a room on the
//! first. It measures a message's delivery time from a sender on one
//! server to a long-polling client on the other (paced), then a burst's
//! throughput (messages sent on the first, received, checked and stored
//! by the second) and the receiving server's CPU time per PDU. Prints
//! figures; never fails on a time.
//!
//!   cargo run --example bench_federation              # 300 paced, 3,000 burst
//!   cargo run --example bench_federation -- --quick   # 100 paced, 500 burst

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::federation::{arrived, join, percentile, start, FILTER};
use support::watch::Arrivals;
use support::{cpu_ms, hwm_kib, rss_kib};

mod support;

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (paced, burst) = if quick { (100, 500) } else { (300, 3000) };
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let a = start(dir_a.path()).await;
    let mut b = start(dir_b.path()).await;

    let alice = a.api.register("alice").await;
    let bob = b.api.register("bob").await;
    let room = a.api.create_room(&alice, &[]).await;
    let joined_at = Instant::now();
    join(&b, &bob, &room, &a.name).await;
    let join_time = joined_at.elapsed();

    let arrivals: Arrivals = Arc::default();
    let stop = Arc::new(tokio::sync::Notify::new());
    let watcher = tokio::spawn(support::watch::sync_loop(
        b.api.clone(),
        bob.clone(),
        FILTER,
        arrivals.clone(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Paced: delivery time of each message, sender to remote long-poll.
    let mut delays = Vec::with_capacity(paced);
    let mut lost = 0;
    for i in 0..paced {
        let text = format!("paced {i}");
        let sent = Instant::now();
        a.api.send(&alice, &room, &format!("p{i}"), &text).await;
        match arrived(&arrivals, &text, Duration::from_secs(10)).await {
            Some(at) => delays.push(at.saturating_duration_since(sent)),
            None => lost += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    delays.sort();

    // Burst: as fast as the sender's server takes them, eight at a time.
    let cpu_before = cpu_ms(b.process.id());
    let started = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..8 {
        let (api, alice, room, next) = (a.api.clone(), alice.clone(), room.clone(), next.clone());
        sends.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= burst {
                    return;
                }
                api.send(&alice, &room, &format!("b{i}"), &format!("burst {i}"))
                    .await;
            }
        });
    }
    while sends.join_next().await.is_some() {}
    let sent_in = started.elapsed();
    let mut received = 0;
    let mut last = started;
    let deadline = Duration::from_secs(120);
    for i in 0..burst {
        if let Some(at) = arrived(
            &arrivals,
            &format!("burst {i}"),
            deadline.saturating_sub(started.elapsed()),
        )
        .await
        {
            received += 1;
            last = last.max(at);
        }
    }
    let through = last.saturating_duration_since(started);
    let cpu = cpu_ms(b.process.id()).saturating_sub(cpu_before);
    let (rss, peak) = (rss_kib(b.process.id()), hwm_kib(b.process.id()));
    stop.notify_waiters();
    let _ = watcher.await;
    let _ = b.process.kill();

    println!("federation benchmark (two Matrix OS servers, loopback, TLS)");
    println!(
        "  remote join of a fresh room: {:.1} ms",
        join_time.as_secs_f64() * 1000.0
    );
    println!(
        "  delivery, sender → remote long-poll ({} paced, {} lost): p50 {:.1} ms, p99 {:.1} ms",
        paced,
        lost,
        percentile(&delays, 0.5).as_secs_f64() * 1000.0,
        percentile(&delays, 0.99).as_secs_f64() * 1000.0
    );
    println!(
        "  burst of {burst}: sent in {:.2} s, {received} received in {:.2} s: {:.0} PDUs/s end to end",
        sent_in.as_secs_f64(),
        through.as_secs_f64(),
        received as f64 / through.as_secs_f64().max(0.001)
    );
    println!(
        "  receiving server CPU: {:.2} ms per PDU",
        cpu as f64 / received.max(1) as f64
    );
    println!(
        "  receiving server memory: {:.0} MiB resident, {:.0} MiB peak",
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
}
