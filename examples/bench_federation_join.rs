//! Remote join benchmark: a room with 1,000 members and 10,000 events
//! lives on one Matrix OS server; a user of a second (fresh) server joins
//! it. Prints the join's time (the client's `/join` call, which returns
//! once the room's state and auth chain are fetched, verified and stored)
//! and the joining server's peak memory. Never fails on a time.
//!
//!   cargo run --example bench_federation_join              # 1,000 members, 10,000 events
//!   cargo run --example bench_federation_join -- --quick   # 200 members, 2,000 events

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use support::client::User;
use support::federation::{join, start};
use support::{enc, hwm_kib, rss_kib, Api};

mod support;

/// A user without a password (no password hashing: the room fills fast).
async fn register_fast(api: &Api, name: &str) -> User {
    let b = api
        .call(
            reqwest::Method::POST,
            "/_matrix/client/v3/register",
            None,
            Some(json!({ "username": name, "auth": { "type": "m.login.dummy" } })),
        )
        .await;
    User {
        id: b["user_id"].as_str().expect("user_id").into(),
        token: b["access_token"].as_str().expect("token").into(),
    }
}

/// Runs `work(i)` for every `i` below `count`, eight at a time.
async fn eight_at_a_time<F, Fut>(count: usize, work: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (work, next) = (work.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= count {
                    return;
                }
                work(i).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (members, events): (usize, usize) = if quick { (200, 2_000) } else { (1_000, 10_000) };
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let a = start(dir_a.path()).await;
    let mut b = start(dir_b.path()).await;

    // The room on the first server: its members join, then talk until the
    // room holds `events` events.
    let built = Instant::now();
    let owner = a.api.register("owner").await;
    let room = a.api.create_room(&owner, &[]).await;
    let people: Arc<std::sync::Mutex<Vec<User>>> = Arc::default();
    {
        let (api, room, people) = (a.api.clone(), room.clone(), people.clone());
        eight_at_a_time(members - 1, move |i| {
            let (api, room, people) = (api.clone(), room.clone(), people.clone());
            async move {
                let user = register_fast(&api, &format!("member{i}")).await;
                api.join(&user, &room).await;
                people.lock().expect("people").push(user);
            }
        })
        .await;
    }
    let people = Arc::new(people.lock().expect("people").clone());
    let messages = events.saturating_sub(members + 6);
    {
        let (api, room, people) = (a.api.clone(), room.clone(), people.clone());
        eight_at_a_time(messages, move |i| {
            let (api, room, people) = (api.clone(), room.clone(), people.clone());
            async move {
                let user = &people[i % people.len()];
                api.send(user, &room, &format!("m{i}"), &format!("message {i}"))
                    .await;
            }
        })
        .await;
    }
    let built_in = built.elapsed();

    // The join, from a fresh server.
    let bob = b.api.register("bob").await;
    let before = (rss_kib(b.process.id()), hwm_kib(b.process.id()));
    let started = Instant::now();
    join(&b, &bob, &room, &a.name).await;
    let join_time = started.elapsed();
    let peak = hwm_kib(b.process.id());
    let after = rss_kib(b.process.id());
    let joined = b
        .api
        .call(
            reqwest::Method::GET,
            &format!("/_matrix/client/v3/rooms/{}/joined_members", enc(&room)),
            Some(&bob.token),
            None,
        )
        .await;
    let seen = joined["joined"].as_object().map_or(0, |m| m.len());
    let _ = b.process.kill();

    println!("federation join benchmark (two Matrix OS servers, loopback, TLS)");
    println!(
        "  room on the first server: {members} members, {events} events (built in {:.1} s)",
        built_in.as_secs_f64()
    );
    println!(
        "  remote join from a fresh server: {:.2} s; it then lists {seen} joined members",
        join_time.as_secs_f64()
    );
    println!(
        "  joining server memory: {:.0} MiB resident before, {:.0} MiB after, peak {:.0} MiB (peak before the join {:.0} MiB)",
        before.0 as f64 / 1024.0,
        after as f64 / 1024.0,
        peak as f64 / 1024.0,
        before.1 as f64 / 1024.0
    );
}
