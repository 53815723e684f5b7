//! Two builds side by side. The machine's speed changes from one minute to
//! the next (a shared host), by more than the differences between builds,
//! so comparing whole runs made one after the other says little. This
//! starts both servers at once, each on its own fresh data directory, and
//! runs the core benchmark's operations on them in short alternating
//! slices (the side that goes first alternates too), so that a slow spell
//! weighs on both alike. It prints, per operation, each server's CPU time
//! and wall time per operation summed over every slice, and their ratios.
//! It never fails on a time.
//!
//!   cargo run --example bench_ab -- BASELINE_BINARY [ROUNDS [OPERATION]]
//!
//! With OPERATION (`send`, `messages`, `rooms`, `sync`), only that one
//! runs: for a profiler watching both servers.
//!
//! "this build" is the `matrixos` binary next to this example (or
//! `MATRIXOS_SERVER_BIN`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::client::{send_from_each, User};
use support::{cpu_ms, enc, Api, Server};

mod support;

/// Events per send slice (8 senders at once), pages per `/messages`
/// slice, rooms per creation slice, initial syncs per sync slice: each
/// slice takes some tens of milliseconds of server CPU, several of the
/// kernel's 10 ms accounting ticks.
const SEND_SLICE: usize = 400;
/// How long both servers are left alone after the last slice, before
/// the whole run's CPU is read.
const SETTLE: Duration = Duration::from_secs(3);
const PAGE_SLICE: usize = 100;
const ROOM_SLICE: usize = 40;
const SYNC_SLICE: usize = 5;
/// The reader's rooms and the events in each, for the initial sync.
const SYNC_ROOMS: usize = 10;
const SYNC_EVENTS: usize = 20;

/// One server and the users and rooms every operation works with.
struct Side {
    label: &'static str,
    server: Server,
    api: Arc<Api>,
    senders: Vec<User>,
    room: String,
    reader: User,
    /// Where the next `/messages` page starts (`None`: the newest event).
    from: Option<String>,
}

/// What the slices of one operation on one side added up to.
#[derive(Default, Clone, Copy)]
struct Totals {
    ops: usize,
    cpu_ms: u64,
    wall: Duration,
}

#[derive(Clone, Copy)]
enum Operation {
    Send,
    Messages,
    CreateRoom,
    InitialSync,
}

/// Each operation, the name that selects it alone, and what it reports.
const OPERATIONS: [(Operation, &str, &str); 4] = [
    (
        Operation::Send,
        "send",
        "send, 1 room, 8 senders (per event)",
    ),
    (
        Operation::Messages,
        "messages",
        "/messages, page of 100 (per page)",
    ),
    (Operation::CreateRoom, "rooms", "room creation (per room)"),
    (
        Operation::InitialSync,
        "sync",
        "initial sync, 10 rooms x 20 events (per sync)",
    ),
];

async fn start(label: &'static str, binary: &Path, data: &Path) -> Side {
    let port = support::free_port();
    let server = support::spawn(
        support::server_command_of(binary, data, port).env("MATRIXOS_AI_ENABLED", "false"),
    );
    let api = Arc::new(Api {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}"),
    });
    support::wait_ready(&api.http, &api.base).await;
    let (senders, room) = api.senders_in_one_room(8).await;
    let reader = api.register("reader").await;
    for r in 0..SYNC_ROOMS {
        let history = api.create_room(&reader, &[]).await;
        for s in &senders[2..6] {
            api.join(s, &history).await;
        }
        for n in 0..SYNC_EVENTS {
            let who = &senders[2 + n % 4];
            api.send(who, &history, &format!("h{r}-{n}"), "history")
                .await;
        }
    }
    Side {
        label,
        server,
        api,
        senders,
        room,
        reader,
        from: None,
    }
}

impl Side {
    /// Runs one slice of `operation`; answers how many operations it did.
    async fn slice(&mut self, operation: Operation, round: usize) -> usize {
        match operation {
            Operation::Send => self.send_slice(round).await,
            Operation::Messages => {
                for _ in 0..PAGE_SLICE {
                    self.page().await;
                }
                PAGE_SLICE
            }
            Operation::CreateRoom => {
                for _ in 0..ROOM_SLICE {
                    self.api.create_room(&self.senders[7], &[]).await;
                }
                ROOM_SLICE
            }
            Operation::InitialSync => {
                for _ in 0..SYNC_SLICE {
                    let body = self.api.sync(&self.reader, None, 0, None).await;
                    assert_eq!(
                        body["rooms"]["join"].as_object().map(|m| m.len()),
                        Some(SYNC_ROOMS)
                    );
                }
                SYNC_SLICE
            }
        }
    }

    async fn send_slice(&self, round: usize) -> usize {
        let per_sender = SEND_SLICE / self.senders.len();
        let prefix = format!("r{round}-s");
        send_from_each(&self.api, &self.senders, &self.room, per_sender, &prefix).await
    }

    /// One page backwards through the busy room, from the newest event
    /// again once the start is reached.
    async fn page(&mut self) {
        let mut path = format!(
            "/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100",
            enc(&self.room)
        );
        if let Some(f) = &self.from {
            path.push_str(&format!("&from={}", enc(f)));
        }
        let body = self
            .api
            .call(
                reqwest::Method::GET,
                &path,
                Some(&self.senders[0].token),
                None,
            )
            .await;
        self.from = body["end"].as_str().map(str::to_owned);
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let baseline = PathBuf::from(
        args.next()
            .expect("usage: bench_ab BASELINE_BINARY [ROUNDS [OPERATION]]"),
    );
    let rounds: usize = args.next().map_or(20, |r| r.parse().expect("ROUNDS"));
    let only = args.next();
    if let Some(name) = &only {
        assert!(
            OPERATIONS.iter().any(|(_, n, _)| n == name),
            "OPERATION: one of send, messages, rooms, sync"
        );
    }
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("temp dir"),
        tempfile::tempdir().expect("temp dir"),
    );
    let mut sides = [
        start("this build", &support::server_binary(), dir_a.path()).await,
        start("baseline", &baseline, dir_b.path()).await,
    ];
    println!(
        "matrixos A/B benchmark: {rounds} rounds of alternating slices, durable writes, loopback HTTP"
    );
    println!("baseline: {}", baseline.display());
    let mut totals = [[Totals::default(); 2]; OPERATIONS.len()];
    let pids = [sides[0].server.id(), sides[1].server.id()];
    let run_start = pids.map(cpu_ms);
    for round in 0..rounds {
        for (o, (operation, name, _)) in OPERATIONS.iter().enumerate() {
            if only.as_ref().is_some_and(|only| only != name) {
                continue;
            }
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for s in order {
                let side = &mut sides[s];
                let pid = side.server.id();
                let (cpu_before, started) = (cpu_ms(pid), Instant::now());
                let ops = side.slice(*operation, round).await;
                let t = &mut totals[o][s];
                t.wall += started.elapsed();
                t.cpu_ms += cpu_ms(pid) - cpu_before;
                t.ops += ops;
            }
        }
    }
    // Work a server defers past its own slice (background threads,
    // wake-ups) runs during the other's and is missed by the slices'
    // figures: the whole run, and a pause for it to finish, counts it.
    tokio::time::sleep(SETTLE).await;
    let whole = [0, 1].map(|s| cpu_ms(pids[s]) - run_start[s]);
    report(&totals, [sides[0].label, sides[1].label]);
    let ops: usize = totals.iter().map(|t| t[0].ops).sum();
    println!(
        "whole run with a {} s pause after it: server CPU {} ms ({}) vs {} ms ({}), {:+.1}%{}",
        SETTLE.as_secs(),
        whole[0],
        sides[0].label,
        whole[1],
        sides[1].label,
        (whole[0] as f64 / whole[1] as f64 - 1.0) * 100.0,
        match only {
            Some(_) => format!(
                "; {:.0} vs {:.0} µs per operation",
                whole[0] as f64 * 1000.0 / ops as f64,
                whole[1] as f64 * 1000.0 / ops as f64
            ),
            None => String::new(),
        }
    );
}

fn report(totals: &[[Totals; 2]], labels: [&str; 2]) {
    let per_op_us = |t: &Totals| {
        (
            t.cpu_ms as f64 * 1000.0 / t.ops as f64,
            t.wall.as_secs_f64() * 1e6 / t.ops as f64,
        )
    };
    for ((_, _, name), [a, b]) in OPERATIONS.iter().zip(totals) {
        if a.ops == 0 {
            continue;
        }
        let ((cpu_a, wall_a), (cpu_b, wall_b)) = (per_op_us(a), per_op_us(b));
        println!(
            "{name}: server CPU {cpu_a:.0} µs ({}) vs {cpu_b:.0} µs ({}), {:+.1}%; wall {wall_a:.0} vs {wall_b:.0} µs, {:+.1}% ({} operations each)",
            labels[0],
            labels[1],
            (cpu_a / cpu_b - 1.0) * 100.0,
            (wall_a / wall_b - 1.0) * 100.0,
            a.ops
        );
    }
}
