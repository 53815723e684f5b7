//! Whole-server tests of what bounds a client's cost before it has proved
//! anything: each endpoint's body size (refused from `Content-Length`, before
//! `100 Continue`), rate limits spent before a body is read, header and body
//! read timeouts, connection caps, and thumbnails (a pixel cap, one job per
//! thumbnail). Raw TCP where reqwest would not send what an attacker does.

use crate::common;

use std::io::Cursor;
use std::time::{Duration, Instant};

use common::{enc, expect_error, expect_ok, Raw, TestServer, V3};
use matrixos::config::{Config, RateLimit, RegistrationMode};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Without AI users: registering is quicker, and nothing here needs them.
async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
    common::start_with(|c| {
        c.ai.enabled = false;
        tweak(c)
    })
    .await
}

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.addr).await.expect("connect")
}

/// What the server sends until it closes the connection or `wait` passes;
/// and whether it closed it.
async fn read_until_closed(
    stream: &mut (impl AsyncRead + Unpin),
    wait: Duration,
) -> (String, bool) {
    let deadline = tokio::time::Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => break false,
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    };
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

/// Sends one request on an open connection and reads one whole response
/// (headers, then `Content-Length` bytes); the connection stays open.
async fn exchange(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            let text = String::from_utf8_lossy(&got).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    return text;
                }
            }
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed mid-response: {text}");
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("a response within 10 s")
}

const VERSIONS: &str = "GET /_matrix/client/versions HTTP/1.1\r\nHost: test\r\n\r\n";

fn status_of(answer: &str) -> &str {
    answer.get(9..12).unwrap_or("")
}

// ------------------------------------------------------------ body sizes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_before_100_continue() {
    let server = start_with(|_| {}).await;
    let mut tcp = connect(&server).await;
    let head = format!(
        "POST {V3}/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        50 << 20
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    let (answer, closed) = read_until_closed(&mut tcp, Duration::from_secs(10)).await;
    assert!(
        !answer.contains("100 Continue"),
        "the server invited the body: {answer}"
    );
    assert_eq!(status_of(&answer), "413", "{answer}");
    assert!(answer.contains("M_TOO_LARGE"), "{answer}");
    assert!(closed, "the connection stays open after a refused body");

    // A length far past any limit, with almost no body behind it.
    let mut tcp = connect(&server).await;
    let head = format!(
        "POST {V3}/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: 2147483648\r\n\r\n{{}}"
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    let (answer, closed) = read_until_closed(&mut tcp, Duration::from_secs(10)).await;
    assert_eq!(status_of(&answer), "413", "{answer}");
    assert!(closed, "the connection is held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_register_take_only_small_bodies() {
    let server = start_with(|_| {}).await;
    let anon = Raw::new(&server);
    let long = "x".repeat(100 << 10);
    let res = anon
        .json(
            "POST",
            &format!("{V3}/login"),
            json!({ "type": "m.login.password", "user": "alice", "password": long }),
        )
        .await;
    expect_error(&res, 413, "M_TOO_LARGE", "a 100 KiB /login");
    let res = anon
        .json(
            "POST",
            &format!("{V3}/register"),
            json!({ "username": "alice", "password": long }),
        )
        .await;
    expect_error(&res, 413, "M_TOO_LARGE", "a 100 KiB /register");

    // Without a Content-Length, the body is cut off once past the limit.
    let mut tcp = connect(&server).await;
    let mut request = format!(
        "POST {V3}/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    let chunk = "y".repeat(8 << 10);
    let parts = [
        "{\"type\":\"m.login.password\",\"user\":\"alice\",\"password\":\"".to_owned(),
        chunk.clone(),
        chunk.clone(),
        chunk.clone(),
        "\"}".to_owned(),
    ];
    for part in &parts {
        request.push_str(&format!("{:x}\r\n{part}\r\n", part.len()));
    }
    request.push_str("0\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let (answer, _) = read_until_closed(&mut tcp, Duration::from_secs(10)).await;
    assert_eq!(status_of(&answer), "413", "chunked /login: {answer}");
    assert!(answer.contains("M_TOO_LARGE"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_keep_room_for_their_legitimate_bodies() {
    let server = start_with(|_| {}).await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let room = common::create_room(&alice, json!({})).await;

    // A state event near the 64 KiB event limit.
    let res = alice
        .json(
            "PUT",
            &format!("{V3}/rooms/{}/state/org.example.big/", enc(&room)),
            json!({ "text": "s".repeat(60_000) }),
        )
        .await;
    expect_ok(res, "a 60 KB state event");

    // A to-device request of 2 MiB (a room key for many devices).
    let whoami = expect_ok(
        alice
            .call("GET", &format!("{V3}/account/whoami"), None)
            .await,
        "whoami",
    );
    let device = whoami["device_id"].as_str().expect("device_id");
    let res = alice
        .json(
            "PUT",
            &format!("{V3}/sendToDevice/org.example.bulk/txn1"),
            json!({ "messages": { alice_id.clone(): { device: { "pad": "t".repeat(2 << 20) } } } }),
        )
        .await;
    expect_ok(res, "a 2 MiB /sendToDevice");

    // Account data of 300 KiB.
    let res = alice
        .json(
            "PUT",
            &format!("{V3}/user/{}/account_data/org.example.big", enc(&alice_id)),
            json!({ "pad": "a".repeat(300 << 10) }),
        )
        .await;
    expect_ok(res, "300 KiB of account data");

    // But a message is not a bulk upload.
    let res = alice
        .json(
            "PUT",
            &format!("{V3}/rooms/{}/send/m.room.message/big", enc(&room)),
            json!({ "msgtype": "m.text", "body": "m".repeat(1 << 20) }),
        )
        .await;
    expect_error(&res, 413, "M_TOO_LARGE", "a 1 MiB message");
}

// ------------------------------------------------------------ rate limits

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_register_are_rate_limited_before_their_body_is_read() {
    let once = RateLimit {
        per_second: 0.001,
        burst: 1.0,
    };
    let server = start_with(|c| {
        c.rate_limits.login = once;
        c.rate_limits.register = once;
    })
    .await;
    let anon = Raw::new(&server);
    for endpoint in ["login", "register"] {
        let path = format!("{V3}/{endpoint}");
        let first = anon.call("POST", &path, Some("not json")).await;
        expect_error(&first, 400, "M_NOT_JSON", "the first request is parsed");
        let second = anon.call("POST", &path, Some("not json")).await;
        expect_error(
            &second,
            429,
            "M_LIMIT_EXCEEDED",
            "the second is refused before parsing",
        );
        assert!(
            second.1["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0),
            "{endpoint}: {}",
            second.1
        );
        // The same in whole seconds, in the header (v1.10).
        let third = anon
            .http
            .post(format!("{}{path}", anon.base))
            .body("not json")
            .send()
            .await
            .expect("third request");
        assert_eq!(third.status(), 429);
        let header = third.headers().get("retry-after").cloned();
        let seconds: u64 = header
            .and_then(|h| h.to_str().ok()?.parse().ok())
            .unwrap_or_else(|| panic!("{endpoint}: no Retry-After in seconds"));
        assert!(seconds >= 1, "{endpoint}: Retry-After {seconds}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_token_validity_is_rate_limited() {
    let server = start_with(|c| {
        c.registration = Some(RegistrationMode::Token);
        c.registration_token = Some("sesame".to_owned());
    })
    .await;
    let anon = Raw::new(&server);
    let path = "/_matrix/client/v1/register/m.login.registration_token/validity";
    let mut refused = None;
    for guess in 0..20 {
        let res = anon
            .call("GET", &format!("{path}?token=guess{guess}"), None)
            .await;
        if res.0 == 429 {
            refused = Some((guess, res));
            break;
        }
        assert_eq!(res.1["valid"], false, "guess {guess}: {}", res.1);
    }
    let (guess, res) = refused.expect("20 guesses in a row were all answered");
    assert!(guess <= 10, "refused only after {guess} guesses");
    expect_error(&res, 429, "M_LIMIT_EXCEEDED", "token guessing");
    assert!(res.1["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0));
}

// ------------------------------------------------------------ timeouts

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_clients_are_cut_off_at_the_header_timeout() {
    let server = start_with(|c| c.request_header_timeout_secs = 1).await;
    let mut silent = connect(&server).await;
    let slow = connect(&server).await;
    let (mut slow_read, mut slow_write) = slow.into_split();
    let trickle = tokio::spawn(async move {
        let _ = slow_write
            .write_all(b"GET /_matrix/client/versions HTTP/1.1\r\nHost: test\r\nX-Slow: ")
            .await;
        for _ in 0..100 {
            if slow_write.write_all(b"a").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let (_, silent_closed) = read_until_closed(&mut silent, Duration::from_secs(8)).await;
    let (_, slow_closed) = read_until_closed(&mut slow_read, Duration::from_secs(8)).await;
    trickle.abort();
    assert!(silent_closed, "a connection that sends nothing is held");
    assert!(slow_closed, "a connection trickling its headers is held");
    let mut fresh = connect(&server).await;
    assert_eq!(status_of(&exchange(&mut fresh, VERSIONS).await), "200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_gets_408() {
    let server = start_with(|c| c.request_body_timeout_secs = 1).await;
    let mut tcp = connect(&server).await;
    let head = format!(
        "POST {V3}/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\""
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    let (answer, closed) = read_until_closed(&mut tcp, Duration::from_secs(8)).await;
    assert_eq!(status_of(&answer), "408", "a stalled /login body: {answer}");
    assert!(closed, "the connection is held after a stalled body");

    // An upload may take long, but may not stall.
    let (alice, _) = Raw::new(&server).register("alice").await;
    let token = alice.token.as_deref().expect("token");
    let mut tcp = connect(&server).await;
    let head = format!(
        "POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n0123456789"
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    let (answer, closed) = read_until_closed(&mut tcp, Duration::from_secs(8)).await;
    assert_eq!(status_of(&answer), "408", "a stalled upload: {answer}");
    assert!(closed, "the connection is held after a stalled upload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polling_sync_outlives_the_read_timeouts() {
    let server = start_with(|c| {
        c.request_header_timeout_secs = 1;
        c.request_body_timeout_secs = 1;
    })
    .await;
    let (alice, _) = Raw::new(&server).register("alice").await;
    let first = common::sync(&alice, None, 0).await;
    let since = common::next_batch(&first);
    let started = Instant::now();
    let res = common::sync(&alice, Some(&since), 3_000).await;
    assert!(
        started.elapsed() >= Duration::from_millis(2_500),
        "the sync did not wait: {res}"
    );
    // The same client goes on afterwards.
    expect_ok(
        alice
            .call("GET", &format!("{V3}/account/whoami"), None)
            .await,
        "whoami after a long poll",
    );
}

// ------------------------------------------------------------ connection caps

/// Whether a new connection is served: answered on `/versions` (true) or
/// closed at once (false).
async fn served(server: &TestServer) -> bool {
    let mut tcp = connect(server).await;
    if tcp.write_all(VERSIONS.as_bytes()).await.is_err() {
        return false;
    }
    let (answer, _) = read_until_closed(&mut tcp, Duration::from_secs(2)).await;
    status_of(&answer) == "200"
}

/// Opens `n` connections and makes sure the server admitted each one.
async fn hold(server: &TestServer, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        let mut tcp = connect(server).await;
        assert_eq!(status_of(&exchange(&mut tcp, VERSIONS).await), "200");
        held.push(tcp);
    }
    held
}

/// Retries (bounded) until a new connection is served again.
async fn served_again(server: &TestServer) -> bool {
    for _ in 0..50 {
        if served(server).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_per_address_cap_are_closed_at_once() {
    let server = start_with(|c| c.max_connections_per_ip = 3).await;
    let mut held = hold(&server, 3).await;
    let mut extra = connect(&server).await;
    let (answer, closed) = read_until_closed(&mut extra, Duration::from_secs(5)).await;
    assert!(
        closed && answer.is_empty(),
        "a fourth connection: {answer:?}"
    );
    held.pop();
    assert!(served_again(&server).await, "a freed place is not reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_total_cap_are_closed_at_once() {
    let server = start_with(|c| {
        c.max_connections_per_ip = 0;
        c.max_connections = 2;
    })
    .await;
    let mut held = hold(&server, 2).await;
    assert!(!served(&server).await, "a third connection was served");
    held.clear();
    assert!(served_again(&server).await, "freed places are not reused");
}

// ------------------------------------------------------------ thumbnails

fn encode(image: impl Into<image::DynamicImage>) -> Vec<u8> {
    let mut bytes = Vec::new();
    image
        .into()
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .expect("encode png");
    bytes
}

async fn upload_png(raw: &Raw, bytes: Vec<u8>) -> String {
    let response = raw
        .http
        .post(format!("{}/_matrix/media/v3/upload", raw.base))
        .bearer_auth(raw.token.as_deref().expect("token"))
        .header("content-type", "image/png")
        .body(bytes)
        .send()
        .await
        .expect("upload");
    let body: Value = response.json().await.expect("upload answer");
    body["content_uri"]
        .as_str()
        .and_then(|uri| uri.rsplit('/').next())
        .unwrap_or_else(|| panic!("no content_uri: {body}"))
        .to_owned()
}

/// The legacy (unauthenticated) thumbnail of `id`: status and body (the
/// server has authenticated media off, so its files are served there).
async fn thumbnail(server: &TestServer, id: &str, size: &str) -> (u16, Vec<u8>) {
    let url = format!(
        "{}/_matrix/media/v3/thumbnail/localhost/{id}?{size}&method=scale",
        server.base_url
    );
    let response = reqwest::get(url).await.expect("thumbnail request");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnails_of_images_over_32_megapixels_are_refused() {
    let server = start_with(|c| c.enable_authenticated_media = false).await;
    let (alice, _) = Raw::new(&server).register("alice").await;
    // 36 megapixels, a few KiB as a PNG: within the side limit, over the
    // pixel limit.
    let huge = upload_png(&alice, encode(image::GrayImage::new(6_000, 6_000))).await;
    let (status, body) = thumbnail(&server, &huge, "width=320&height=240").await;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert_eq!(
        (status, body["errcode"].as_str()),
        (400, Some("M_UNKNOWN")),
        "{body}"
    );

    let small = upload_png(&alice, encode(image::GrayImage::new(600, 400))).await;
    let (status, _) = thumbnail(&server, &small, "width=320&height=240").await;
    assert_eq!(status, 200, "an ordinary image");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_one_thumbnail_make_it_once() {
    let server = start_with(|c| c.enable_authenticated_media = false).await;
    let (alice, _) = Raw::new(&server).register("alice").await;
    let photo = image::RgbImage::from_fn(3_000, 2_000, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x + y) % 239) as u8])
    });
    let id = upload_png(&alice, encode(photo)).await;
    let media = &server.services.media;
    let before = media.thumbnails_started();

    let requests: Vec<_> = (0..8)
        .map(|_| {
            let (base, id) = (server.base_url.clone(), id.clone());
            tokio::spawn(async move {
                let url = format!(
                    "{base}/_matrix/media/v3/thumbnail/localhost/{id}?width=320&height=240&method=scale"
                );
                let response = reqwest::get(url).await.expect("thumbnail request");
                let status = response.status().as_u16();
                (status, response.bytes().await.expect("body").to_vec())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.expect("request task"));
    }
    assert!(answers.iter().all(|(status, _)| *status == 200));
    assert!(
        answers.windows(2).all(|w| w[0].1 == w[1].1),
        "the answers differ"
    );
    assert_eq!(
        media.thumbnails_started() - before,
        1,
        "one thumbnail, made once"
    );

    let (status, _) = thumbnail(&server, &id, "width=320&height=240").await;
    assert_eq!(status, 200);
    assert_eq!(
        media.thumbnails_started() - before,
        1,
        "kept, not made again"
    );
    let (status, _) = thumbnail(&server, &id, "width=640&height=480").await;
    assert_eq!(status, 200);
    assert_eq!(
        media.thumbnails_started() - before,
        2,
        "another size is another thumbnail"
    );
}
