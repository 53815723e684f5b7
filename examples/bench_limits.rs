//! What an unauthenticated client can cost the server. Starts the real
//! `matrixos` binary on a loopback port and, attack by attack, reports the
//! server's peak resident memory over what it used just before, and the
//! latency of an ordinary request (`GET /versions`, a new connection each
//! time, from another loopback address: 127.0.0.2) made meanwhile.
//! It never fails on a figure. Goals: each attack under +50 MiB, ordinary
//! requests answered within 100 ms.
//!
//!   cargo run --example bench_limits            # full run (about a minute)
//!   cargo run --example bench_limits -- --quick # slowloris held 8 s, not 40

use std::future::Future;
use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{enc, hwm_kib, rss_kib, Api};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;

const MIB: usize = 1 << 20;
/// Where ordinary requests come from: not the attacker's address, whose
/// connections are capped.
const PROBE_FROM: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Samples the server's resident memory every few milliseconds until
/// stopped; answers the highest.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak: tokio::task::JoinHandle<u64>,
}

impl Sampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let peak = tokio::spawn(async move {
            let mut peak = rss_kib(pid);
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            peak.max(rss_kib(pid))
        });
        Self { stop, peak }
    }

    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.peak.await.unwrap_or(0)
    }
}

/// Ordinary requests every 25 ms from another client until stopped:
/// latencies of those answered 200, and how many were not.
struct Probe {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(Vec<Duration>, u64)>,
}

impl Probe {
    fn start(port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .local_address(IpAddr::V4(PROBE_FROM))
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(5))
                .build()
                .expect("probe client");
            let url = format!("http://127.0.0.1:{port}/_matrix/client/versions");
            let (mut answered, mut failed) = (Vec::new(), 0);
            while !flag.load(Ordering::Relaxed) {
                let started = Instant::now();
                match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => answered.push(started.elapsed()),
                    _ => failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            (answered, failed)
        });
        Self { stop, task }
    }

    async fn finish(self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        let (mut times, failed) = self.task.await.unwrap_or_default();
        if times.is_empty() {
            return format!("no request answered ({failed} failed)");
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        format!(
            "p50 {:.1} ms, max {:.1} ms over {} requests, {failed} unanswered",
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1]),
            times.len()
        )
    }
}

/// Runs one attack, printing memory and probe figures and its own outcome.
async fn measure<F: Future<Output = String>>(name: &str, pid: u32, port: u16, attack: F) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid);
    let sampler = Sampler::start(pid);
    let probe = Probe::start(port);
    let outcome = attack.await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (peak, latency) = (sampler.finish().await, probe.finish().await);
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!("{name}");
    println!(
        "  memory: {:.1} MiB before, peak {:.1} MiB (+{:.1} MiB)",
        mib(before),
        mib(peak),
        mib(peak.saturating_sub(before))
    );
    println!("  ordinary requests meanwhile: {latency}");
    println!("  outcome: {outcome}");
}

/// The status line's code from whatever the server answered.
async fn answer_status(stream: &mut TcpStream, wait: Duration) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    while got.len() < 12 {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            Ok(_) => break,
            Err(_) => return "no answer".to_owned(),
        }
    }
    match String::from_utf8_lossy(&got).get(9..12) {
        Some(code) => code.to_owned(),
        None => "closed".to_owned(),
    }
}

/// One unauthenticated `POST /login` with a 50 MiB JSON array, sent with
/// a `Content-Length` or chunked; answers the status it got and how much
/// of the body went out before the server stopped taking it.
async fn big_login(port: u16, chunked: bool) -> (String, usize) {
    let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", port)).await else {
        return ("connect failed".to_owned(), 0);
    };
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {}", 50 * MIB + 1)
    };
    let head = format!(
        "POST /_matrix/client/v3/login HTTP/1.1\r\nHost: bench\r\n\
         Content-Type: application/json\r\n{framing}\r\n\r\n"
    );
    // "[" then "0,0,…": one array of 25 million numbers (left unclosed).
    let piece = "0,".repeat(32 * 1024).into_bytes();
    let mut sent = 0;
    let send = async {
        tcp.write_all(head.as_bytes()).await?;
        if chunked {
            tcp.write_all(b"1\r\n[\r\n").await?;
        } else {
            tcp.write_all(b"[").await?;
        }
        for _ in 0..(50 * MIB / piece.len()) {
            if chunked {
                tcp.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                    .await?;
                tcp.write_all(&piece).await?;
                tcp.write_all(b"\r\n").await?;
            } else {
                tcp.write_all(&piece).await?;
            }
            sent += piece.len();
        }
        std::io::Result::Ok(())
    };
    // The server may refuse before the body is sent: a failed write is the
    // expected end then.
    let _ = tokio::time::timeout(Duration::from_secs(60), send).await;
    (answer_status(&mut tcp, Duration::from_secs(10)).await, sent)
}

/// Counts of equal strings, as "413 ×4".
fn tally(outcomes: Vec<String>) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for o in outcomes {
        match counts.iter_mut().find(|(k, _)| *k == o) {
            Some((_, n)) => *n += 1,
            None => counts.push((o, 1)),
        }
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
    parts.join(", ")
}

async fn big_logins(port: u16, chunked: bool) -> String {
    let tasks: Vec<_> = (0..4)
        .map(|_| tokio::spawn(big_login(port, chunked)))
        .collect();
    let (mut outcomes, mut most_sent) = (Vec::new(), 0);
    for t in tasks {
        let (status, sent) = t.await.unwrap_or_else(|_| ("task failed".to_owned(), 0));
        outcomes.push(status);
        most_sent = most_sent.max(sent);
    }
    format!(
        "answers: {}; at most {:.2} MiB of a body written (into socket buffers) before the server closed",
        tally(outcomes),
        most_sent as f64 / MIB as f64
    )
}

/// 500 connections that send a request's headers a line every two
/// seconds, for at most `hold`: how long the server kept each.
async fn slowloris(port: u16, hold: Duration) -> String {
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            tokio::spawn(async move {
                let started = Instant::now();
                let tcp = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
                let (mut read, mut write) = tcp.into_split();
                let trickle = async {
                    let _ = write.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n").await;
                    loop {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        if write.write_all(b"X-Slow: a\r\n").await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                };
                let mut buf = [0u8; 256];
                tokio::select! {
                    _ = read.read(&mut buf) => Some(started.elapsed()),
                    _ = trickle => None,
                    _ = tokio::time::sleep(hold) => None,
                }
            })
        })
        .collect();
    let (mut at_once, mut later, mut held) = (0, Vec::new(), 0);
    for t in tasks {
        match t.await.ok().flatten() {
            Some(d) if d < Duration::from_secs(1) => at_once += 1,
            Some(d) => later.push(d),
            None => held += 1,
        }
    }
    later.sort();
    let cut = later
        .last()
        .map(|d| {
            format!(
                "{} closed after {:.1} s at most",
                later.len(),
                d.as_secs_f64()
            )
        })
        .unwrap_or_else(|| "none closed later".to_owned());
    format!(
        "{at_once} closed at once (connection cap), {cut}, {held} still open after {} s",
        hold.as_secs()
    )
}

/// A PNG declaring `width`×`height` RGB pixels, all black: a few hundred
/// KiB however large it claims to be.
fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::new(width, height);
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .expect("encode png");
    bytes
}

async fn upload(api: &Api, token: &str, bytes: Vec<u8>) -> String {
    let response = api
        .http
        .post(format!("{}/_matrix/media/v3/upload", api.base))
        .bearer_auth(token)
        .header("content-type", "image/png")
        .body(bytes)
        .send()
        .await
        .expect("upload");
    let body: serde_json::Value = response.json().await.expect("upload answer");
    let uri = body["content_uri"].as_str().expect("content_uri");
    uri.rsplit('/').next().unwrap_or_default().to_owned()
}

/// Six parallel unauthenticated thumbnail requests on the legacy path,
/// for the sizes given in turn.
async fn thumbnails(port: u16, id: &str, sizes: &[(u32, u32)]) -> String {
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let (w, h) = sizes[i % sizes.len()];
            let url = format!(
                "http://127.0.0.1:{port}/_matrix/media/v3/thumbnail/localhost/{}?width={w}&height={h}",
                enc(id)
            );
            tokio::spawn(async move {
                match reqwest::get(url).await {
                    Ok(r) => r.status().as_u16().to_string(),
                    Err(_) => "failed".to_owned(),
                }
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap_or_else(|_| "task failed".to_owned()));
    }
    format!("answers: {}", tally(outcomes))
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let hold = Duration::from_secs(if quick { 8 } else { 40 });
    let dir = tempfile::tempdir().expect("temp dir");
    let port = support::free_port();
    let mut command = support::server_command(dir.path(), port);
    command.env("MATRIXOS_AI_ENABLED", "false");
    // The thumbnails are asked for at the unauthenticated paths.
    command.env("MATRIXOS_ENABLE_AUTHENTICATED_MEDIA", "false");
    if quick {
        command.env("MATRIXOS_REQUEST_HEADER_TIMEOUT_SECS", "5");
    }
    let mut server = support::spawn(&mut command);
    let pid = server.id();
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}"),
    };
    support::wait_ready(&api.http, &api.base).await;
    let registered = api
        .call(
            reqwest::Method::POST,
            "/_matrix/client/v3/register",
            None,
            Some(
                json!({ "username": "uploader", "password": "bench-password",
                         "auth": { "type": "m.login.dummy" } }),
            ),
        )
        .await;
    let token = registered["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let bomb = upload(&api, &token, png(12_000, 7_000)).await;
    let photo = upload(&api, &token, png(6_000, 4_000)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "matrixos attack benchmark ({} mode; idle RSS {:.1} MiB; probes from {PROBE_FROM})",
        if quick { "quick" } else { "full" },
        rss_kib(pid) as f64 / 1024.0,
    );

    measure(
        "4 parallel 50 MiB POST /login (Content-Length)",
        pid,
        port,
        big_logins(port, false),
    )
    .await;
    measure(
        "4 parallel 50 MiB POST /login (chunked)",
        pid,
        port,
        big_logins(port, true),
    )
    .await;
    let name = format!("500 slowloris connections, held up to {} s", hold.as_secs());
    measure(&name, pid, port, slowloris(port, hold)).await;
    let bomb_sizes = [(320, 240)];
    measure(
        "6 parallel legacy thumbnails of a PNG declaring 12000x7000",
        pid,
        port,
        thumbnails(port, &bomb, &bomb_sizes),
    )
    .await;
    let photo_sizes = [(32, 32), (96, 96), (320, 240), (640, 480), (800, 600)];
    measure(
        "6 parallel legacy thumbnails of a 24-megapixel image, 5 sizes (legitimate)",
        pid,
        port,
        thumbnails(port, &photo, &photo_sizes),
    )
    .await;

    println!(
        "server peak RSS over the whole run: {:.1} MiB",
        hwm_kib(pid) as f64 / 1024.0
    );
    let _ = server.kill();
    let _ = server.wait();
}
