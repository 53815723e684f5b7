//! Whole-server, raw-HTTP tests of the client-server API's error answers:
//! each refusal carries the errcode and HTTP status the spec names, and a
//! refused request changes nothing. Registration modes, UIA and shared-secret
//! registration live here too. Room, sync and key behaviour: `http_rooms.rs`.
//! The refusals are tables (`common::errors`), each row a request, the
//! status and errcode it must get and what it tries.

use crate::common;

use common::errors::{check, check_each, Described, Refusal};
use common::{
    admin_mac, admin_nonce, create_room, enc, expect_error, expect_ok, Raw, TestServer, V3,
};
use matrixos::config::{RateLimit, RegistrationMode};
use serde_json::{json, Value};

fn password_login(user: &str, password: &str) -> Value {
    json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": user },
        "password": password,
    })
}

async fn login(anon: &Raw, user: &str, password: &str) -> (u16, Value) {
    anon.json(
        "POST",
        &format!("{V3}/login"),
        password_login(user, password),
    )
    .await
}

/// A `/register` body that completes UIA with `m.login.dummy`.
fn dummy_registration(username: &str, password: &str) -> Value {
    json!({ "username": username, "password": password, "auth": { "type": "m.login.dummy" } })
}

/// These tests count rooms exactly, so they run without AI users (whose
/// direct-message room would be one more).
async fn start_with(tweak: impl FnOnce(&mut matrixos::config::Config)) -> TestServer {
    common::start_with(|c| {
        c.ai.enabled = false;
        tweak(c)
    })
    .await
}

async fn start() -> TestServer {
    start_with(|_| {}).await
}

async fn joined_rooms(raw: &Raw) -> Vec<Value> {
    let body = expect_ok(
        raw.call("GET", &format!("{V3}/joined_rooms"), None).await,
        "joined_rooms",
    );
    body["joined_rooms"]
        .as_array()
        .expect("joined_rooms list")
        .clone()
}

/// Whether `/register/available` reports the name as free (200) — any
/// refusal (in use, invalid) counts as not available.
async fn available(anon: &Raw, name: &str) -> bool {
    let (status, body) = anon
        .call(
            "GET",
            &format!("{V3}/register/available?username={}", enc(name)),
            None,
        )
        .await;
    if status == 200 {
        assert_eq!(body["available"], true, "available answer: {body}");
    }
    status == 200
}

/// The ids of every event of the room the caller can page through, oldest
/// first.
async fn all_events(raw: &Raw, room: &str) -> Vec<String> {
    let res = raw
        .call(
            "GET",
            &format!("{V3}/rooms/{}/messages?dir=f&limit=1000", enc(room)),
            None,
        )
        .await;
    let body = expect_ok(res, "messages");
    let chunk = body["chunk"].as_array().expect("chunk");
    chunk
        .iter()
        .map(|e| e["event_id"].as_str().expect("event_id").to_owned())
        .collect()
}

// ---------------------------------------------------------------- bodies

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_that_is_not_json_is_m_not_json() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;

    #[rustfmt::skip]
    let rows = [
        (&anon, "POST", format!("{V3}/login"), Some("{not json"), 400, "M_NOT_JSON", "/login with `{not json`"),
        (&alice, "POST", format!("{V3}/createRoom"), Some("{not json"), 400, "M_NOT_JSON", "/createRoom with `{not json`"),
        (&alice, "POST", format!("{V3}/createRoom"), Some(r#"{"name": "cut off"#), 400, "M_NOT_JSON", "/createRoom with truncated JSON"),
    ];
    check_each(rows).await;
    assert!(
        joined_rooms(&alice).await.is_empty(),
        "a refused /createRoom created a room"
    );

    let room = create_room(&alice, json!({})).await;
    let send = format!("{V3}/rooms/{}/send/m.room.message/t1", enc(&room));
    let before = all_events(&alice, &room).await.len();
    let res = alice.call("PUT", &send, Some("{not json")).await;
    expect_error(&res, 400, "M_NOT_JSON", "/send with `{not json`");
    assert_eq!(
        all_events(&alice, &room).await.len(),
        before,
        "a refused /send added an event"
    );
    // The transaction id of the refused request is still free.
    let res = alice
        .json("PUT", &send, json!({ "msgtype": "m.text", "body": "hi" }))
        .await;
    expect_ok(res, "send after a refused send with the same txn id");
    assert_eq!(all_events(&alice, &room).await.len(), before + 1);
}

/// Valid JSON that is not an object is "valid JSON, but malformed": the
/// spec's M_BAD_JSON, not M_NOT_JSON (Synapse: 400 M_BAD_JSON "Content must
/// be a JSON object").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_that_is_not_an_object_is_m_bad_json() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;
    #[rustfmt::skip]
    let rows = [
        (&alice, "POST", format!("{V3}/createRoom"), Some("[1, 2]"), 400, "M_BAD_JSON", "/createRoom with a JSON array"),
        (&anon, "POST", format!("{V3}/login"), Some("\"password\""), 400, "M_BAD_JSON", "/login with a JSON string"),
    ];
    check_each(rows).await;
    assert!(
        joined_rooms(&alice).await.is_empty(),
        "a refused /createRoom created a room"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_field_types_are_m_bad_json() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;

    #[rustfmt::skip]
    let rows: Vec<Described<Value>> = vec![
        ("POST", format!("{V3}/login"), Some(json!({ "type": "m.login.password", "user": 5, "password": "secret-pw" })), 400, "M_BAD_JSON", "/login with a numeric user"),
        ("POST", format!("{V3}/login"), Some(json!({ "type": 1, "user": "alice", "password": "secret-pw" })), 400, "M_BAD_JSON", "/login with a numeric type"),
        ("POST", format!("{V3}/register"), Some(json!({ "username": "carol", "password": 12, "auth": { "type": "m.login.dummy" } })), 400, "M_BAD_JSON", "/register with a numeric password"),
    ];
    check(&anon, rows).await;
    assert!(
        available(&anon, "carol").await,
        "a refused /register created the account"
    );

    #[rustfmt::skip]
    let rows: Vec<Described<Value>> = vec![
        ("POST", format!("{V3}/createRoom"), Some(json!({ "name": 5 })), 400, "M_BAD_JSON", "/createRoom with numeric name"),
        ("POST", format!("{V3}/createRoom"), Some(json!({ "invite": "@bob:localhost" })), 400, "M_BAD_JSON", "/createRoom with invite that is not a list"),
        ("POST", format!("{V3}/createRoom"), Some(json!({ "creation_content": [] })), 400, "M_BAD_JSON", "/createRoom with creation_content that is not an object"),
        ("POST", format!("{V3}/createRoom"), Some(json!({ "is_direct": "yes" })), 400, "M_BAD_JSON", "/createRoom with is_direct that is not a boolean"),
        ("POST", format!("{V3}/user/{}/filter", enc(&alice_id)), Some(json!({ "room": { "timeline": { "limit": "ten" } } })), 400, "M_BAD_JSON", "filter with a string limit"),
        ("POST", format!("{V3}/keys/upload"), Some(json!({ "one_time_keys": [] })), 400, "M_BAD_JSON", "/keys/upload with a list of one-time keys"),
    ];
    check(&alice, rows).await;
    assert!(
        joined_rooms(&alice).await.is_empty(),
        "a refused /createRoom created a room"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_required_fields_are_m_missing_param() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;

    #[rustfmt::skip]
    let rows: Vec<Described<Value>> = vec![
        ("POST", format!("{V3}/login"), Some(json!({ "type": "m.login.password", "identifier": { "type": "m.id.user", "user": "alice" } })), 400, "M_MISSING_PARAM", "/login without password"),
        ("POST", format!("{V3}/login"), Some(json!({ "identifier": { "type": "m.id.user", "user": "alice" }, "password": "secret-pw" })), 400, "M_MISSING_PARAM", "/login without type"),
        ("GET", format!("{V3}/register/available"), None, 400, "M_MISSING_PARAM", "/register/available without username"),
    ];
    check(&anon, rows).await;

    let r = enc(&create_room(&alice, json!({})).await);
    #[rustfmt::skip]
    let rows: Vec<Described<Value>> = vec![
        ("GET", format!("{V3}/rooms/{r}/messages"), None, 400, "M_MISSING_PARAM", "/messages without dir (required since v1.3)"),
        ("POST", format!("{V3}/rooms/{r}/invite"), Some(json!({})), 400, "M_MISSING_PARAM", "/invite without user_id"),
    ];
    check(&alice, rows).await;
}

// ---------------------------------------------------------------- parameters

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_parameters_are_m_invalid_param() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;
    let room = create_room(&alice, json!({})).await;
    let before = all_events(&alice, &room).await.len();
    let messages = format!("{V3}/rooms/{}/messages", enc(&room));

    #[rustfmt::skip]
    let rows: Vec<Described<Value>> = vec![
        ("GET", format!("{V3}/rooms/not-a-room/state"), None, 400, "M_INVALID_PARAM", "/state of a malformed room id"),
        ("PUT", format!("{V3}/rooms/not-a-room/send/m.room.message/t1"), Some(json!({ "msgtype": "m.text", "body": "x" })), 400, "M_INVALID_PARAM", "/send into a malformed room id"),
        ("GET", format!("{V3}/rooms/not-a-room/messages?dir=b"), None, 400, "M_INVALID_PARAM", "/messages of a malformed room id"),
        ("GET", format!("{V3}/sync?since=not-a-token"), None, 400, "M_INVALID_PARAM", "/sync with a garbage since token"),
        ("GET", format!("{V3}/sync?timeout=soon"), None, 400, "M_INVALID_PARAM", "/sync with a non-numeric timeout"),
        ("GET", format!("{messages}?dir=x"), None, 400, "M_INVALID_PARAM", "/messages with dir=x"),
        ("GET", format!("{messages}?dir=b&from=garbage"), None, 400, "M_INVALID_PARAM", "/messages with a garbage from token"),
        ("GET", format!("{messages}?dir=b&limit=-1"), None, 400, "M_INVALID_PARAM", "/messages with a negative limit"),
        ("POST", format!("{V3}/createRoom"), Some(json!({ "room_version": "999" })), 400, "M_UNSUPPORTED_ROOM_VERSION", "/createRoom with an unknown room version"),
        ("POST", format!("{V3}/createRoom"), Some(json!({ "room_version": "" })), 400, "M_UNSUPPORTED_ROOM_VERSION", "/createRoom with an empty room version"),
        ("POST", format!("{V3}/createRoom"), Some(json!({ "room_version": "a version with spaces" })), 400, "M_UNSUPPORTED_ROOM_VERSION", "/createRoom with a room version ruma cannot parse"),
        ("POST", format!("{V3}/createRoom"), Some(json!({ "room_version": 10 })), 400, "M_BAD_JSON", "/createRoom with a room version that is no string"),
    ];
    check(&alice, rows).await;
    assert_eq!(
        joined_rooms(&alice).await.len(),
        1,
        "a refused /createRoom created a room"
    );
    assert_eq!(
        all_events(&alice, &room).await.len(),
        before,
        "refused requests changed the room"
    );
}

// ---------------------------------------------------------------- tokens

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_missing_unknown_and_logged_out() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let whoami = format!("{V3}/account/whoami");

    let stranger = anon.with_token("not-a-real-token");
    #[rustfmt::skip]
    let rows = [
        (&anon, "GET", whoami.clone(), None, 401, "M_MISSING_TOKEN", "whoami without a token"),
        (&anon, "POST", format!("{V3}/createRoom"), Some("{}"), 401, "M_MISSING_TOKEN", "createRoom without a token"),
        (&stranger, "GET", whoami.clone(), None, 401, "M_UNKNOWN_TOKEN", "whoami with a made-up token"),
    ];
    check_each(rows).await;

    let me = expect_ok(alice.call("GET", &whoami, None).await, "whoami");
    assert_eq!(me["user_id"], alice_id.as_str());

    // A second device, to show logout ends only the calling device.
    let second = expect_ok(login(&anon, "alice", "secret-pw").await, "second login");
    let second = anon.with_token(second["access_token"].as_str().expect("token"));
    expect_ok(
        alice.json("POST", &format!("{V3}/logout"), json!({})).await,
        "logout",
    );
    #[rustfmt::skip]
    let rows: Vec<Described> = vec![
        ("GET", whoami.clone(), None, 401, "M_UNKNOWN_TOKEN", "whoami with a logged-out token"),
        ("POST", format!("{V3}/logout"), Some("{}"), 401, "M_UNKNOWN_TOKEN", "logout twice with the same token"),
    ];
    check(&alice, rows).await;
    expect_ok(
        second.call("GET", &whoami, None).await,
        "the other device after logout",
    );

    expect_ok(
        second
            .json("POST", &format!("{V3}/logout/all"), json!({}))
            .await,
        "logout/all",
    );
    let res = second.call("GET", &whoami, None).await;
    expect_error(&res, 401, "M_UNKNOWN_TOKEN", "whoami after logout/all");
    // The account itself still works.
    expect_ok(
        login(&anon, "alice", "secret-pw").await,
        "login after logout/all",
    );
}

// ---------------------------------------------------------------- forbidden

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_are_m_forbidden() {
    let server = start().await;
    let anon = Raw::new(&server);
    anon.register("alice").await;
    let res = login(&anon, "alice", "wrong-pw").await;
    expect_error(&res, 403, "M_FORBIDDEN", "login with a wrong password");
    assert!(
        res.1.get("access_token").is_none(),
        "a refused login handed out a token: {}",
        res.1
    );
    #[rustfmt::skip]
    let rows: Vec<Described<Value>> = vec![
        ("POST", format!("{V3}/login"), Some(password_login("nobody", "secret-pw")), 403, "M_FORBIDDEN", "login as an unknown user"),
        ("POST", format!("{V3}/login"), Some(password_login("@alice:elsewhere.example", "secret-pw")), 403, "M_FORBIDDEN", "login as a remote user"),
    ];
    check(&anon, rows).await;
    expect_ok(
        login(&anon, "alice", "secret-pw").await,
        "login with the right password",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_permissions_are_m_forbidden_and_change_nothing() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let (bob, bob_id) = anon.register("bob").await;
    let room = create_room(
        &alice,
        json!({ "preset": "private_chat", "name": "secret" }),
    )
    .await;
    let r = enc(&room);
    let before = all_events(&alice, &room).await;

    #[rustfmt::skip]
    let rows: Vec<Described<Value>> = vec![
        ("PUT", format!("{V3}/rooms/{r}/send/m.room.message/t1"), Some(json!({ "msgtype": "m.text", "body": "let me in" })), 403, "M_FORBIDDEN", "sending into a room one is not in"),
        ("PUT", format!("{V3}/rooms/{r}/state/m.room.name/"), Some(json!({ "name": "pwned" })), 403, "M_FORBIDDEN", "setting state in a room one is not in"),
        ("POST", format!("{V3}/join/{r}"), Some(json!({})), 403, "M_FORBIDDEN", "joining an invite-only room uninvited"),
        ("GET", format!("{V3}/rooms/{r}/messages?dir=b"), None, 403, "M_FORBIDDEN", "reading /messages of a room one is not in"),
        ("GET", format!("{V3}/rooms/{r}/state"), None, 403, "M_FORBIDDEN", "reading /state of a room one is not in"),
    ];
    check(&bob, rows).await;
    assert_eq!(
        all_events(&alice, &room).await,
        before,
        "refused requests changed the room"
    );

    // Bob joins by invite; at power 0 he may talk but not change power levels.
    common::rooms::invite(&alice, &room, &bob_id).await;
    expect_ok(common::rooms::join(&bob, &room).await, "join");
    let pl_path = format!("{V3}/rooms/{r}/state/m.room.power_levels/");
    let levels = expect_ok(alice.call("GET", &pl_path, None).await, "power levels");
    let mut grab = levels.clone();
    grab["users"][bob_id.as_str()] = json!(100);
    #[rustfmt::skip]
    let rows: Vec<Described<Value>> = vec![
        ("PUT", pl_path.clone(), Some(grab), 403, "M_FORBIDDEN", "power 0 raising itself to 100"),
        ("PUT", format!("{V3}/rooms/{r}/state/m.room.name/"), Some(json!({ "name": "pwned" })), 403, "M_FORBIDDEN", "power 0 renaming the room (state_default 50)"),
        ("POST", format!("{V3}/rooms/{r}/kick"), Some(json!({ "user_id": alice_id })), 403, "M_FORBIDDEN", "power 0 kicking the creator"),
        ("GET", format!("{V3}/user/{}/account_data/m.test", enc(&alice_id)), None, 403, "M_FORBIDDEN", "reading someone else's account data"),
    ];
    check(&bob, rows).await;
    let after = expect_ok(
        alice.call("GET", &pl_path, None).await,
        "power levels after",
    );
    assert_eq!(after, levels, "a refused power-levels change took effect");
    let name = expect_ok(
        alice
            .call("GET", &format!("{V3}/rooms/{r}/state/m.room.name/"), None)
            .await,
        "name",
    );
    assert_eq!(name["name"], "secret");
}

// ---------------------------------------------------------------- not found

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_things_are_m_not_found() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let r = enc(&create_room(&alice, json!({})).await);
    let other = create_room(&alice, json!({})).await;
    let u = enc(&alice_id);

    let fake = enc("$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    let elsewhere = enc(&common::rooms::send_text(&alice, &other, "t1", "x").await);
    #[rustfmt::skip]
    let rows: Vec<Described> = vec![
        ("GET", format!("{V3}/rooms/{r}/event/{fake}"), None, 404, "M_NOT_FOUND", "an unknown event"),
        ("GET", format!("{V3}/rooms/{r}/event/{elsewhere}"), None, 404, "M_NOT_FOUND", "an event of another room, asked for in this one"),
        ("GET", format!("{V3}/user/{u}/filter/nosuchfilter"), None, 404, "M_NOT_FOUND", "an unknown filter"),
        ("GET", format!("{V3}/rooms/{r}/state/m.room.topic/"), None, 404, "M_NOT_FOUND", "state that was never set"),
        ("GET", format!("{V3}/user/{u}/account_data/m.never.set"), None, 404, "M_NOT_FOUND", "account data that was never set"),
    ];
    check(&alice, rows).await;

    let made = expect_ok(
        alice
            .json(
                "POST",
                &format!("{V3}/user/{u}/filter"),
                json!({ "room": { "timeline": { "limit": 5 } } }),
            )
            .await,
        "create filter",
    );
    let filter_id = made["filter_id"].as_str().expect("filter_id");
    let got = expect_ok(
        alice
            .call(
                "GET",
                &format!("{V3}/user/{u}/filter/{}", enc(filter_id)),
                None,
            )
            .await,
        "get filter",
    );
    assert_eq!(got["room"]["timeline"]["limit"], 5);
}

// ---------------------------------------------------------------- user names

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taken_user_names_are_m_user_in_use() {
    let server = start().await;
    let anon = Raw::new(&server);
    assert!(
        available(&anon, "alice").await,
        "alice is free before registering"
    );
    let (alice, _) = anon.register("alice").await;

    #[rustfmt::skip]
    let rows: Vec<Described<Value>> = vec![
        ("POST", format!("{V3}/register"), Some(dummy_registration("alice", "other-pw")), 400, "M_USER_IN_USE", "registering alice twice"),
        ("GET", format!("{V3}/register/available?username=alice"), None, 400, "M_USER_IN_USE", "/register/available for a taken name"),
        // The first account is untouched: the new password does not work,
        ("POST", format!("{V3}/login"), Some(password_login("alice", "other-pw")), 403, "M_FORBIDDEN", "the refused registration's password"),
    ];
    check(&anon, rows).await;
    // its own password and token still do.
    expect_ok(
        login(&anon, "alice", "secret-pw").await,
        "alice's own password",
    );
    expect_ok(
        alice
            .call("GET", &format!("{V3}/account/whoami"), None)
            .await,
        "alice's token",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_user_names_are_m_invalid_username() {
    let server = start().await;
    let anon = Raw::new(&server);
    let names = ["bad name", "bad!name", "caf\u{e9}", "@x:y", "with:colon"];
    #[rustfmt::skip]
    let rows = names.into_iter().flat_map(|name| [
        ("POST", format!("{V3}/register"), Some(dummy_registration(name, "secret-pw")), 400, "M_INVALID_USERNAME", format!("/register with {name:?}")),
        ("GET", format!("{V3}/register/available?username={}", enc(name)), None, 400, "M_INVALID_USERNAME", format!("/register/available with {name:?}")),
    ]);
    check(&anon, rows).await;
    // Upper case is folded, as Synapse and sytest's "POST /register
    // downcases capitals in usernames" expect: never an upper-case user id.
    let res = anon
        .json(
            "POST",
            &format!("{V3}/register"),
            dummy_registration("Dave", "secret-pw"),
        )
        .await;
    let body = expect_ok(res, "/register with Dave");
    assert_eq!(body["user_id"], "@dave:localhost");
    let res = anon
        .call(
            "GET",
            &format!("{V3}/register/available?username=DAVE"),
            None,
        )
        .await;
    expect_error(
        &res,
        400,
        "M_USER_IN_USE",
        "/register/available with DAVE after dave",
    );
}

// ---------------------------------------------------------------- limits

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_max_request_size_are_m_too_large() {
    let server = start_with(|c| c.max_request_size = 1024).await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;
    let big = "x".repeat(3000);

    #[rustfmt::skip]
    let rows = [
        (&anon, "POST", format!("{V3}/login"), Some(password_login("alice", &big)), 413, "M_TOO_LARGE", "/login over the size limit"),
        (&alice, "POST", format!("{V3}/createRoom"), Some(json!({ "name": big })), 413, "M_TOO_LARGE", "/createRoom over the size limit"),
    ];
    check_each(rows).await;
    assert!(
        joined_rooms(&alice).await.is_empty(),
        "a refused /createRoom created a room"
    );

    let room = create_room(&alice, json!({})).await;
    let before = all_events(&alice, &room).await.len();
    let res = alice
        .json(
            "PUT",
            &format!("{V3}/rooms/{}/send/m.room.message/big", enc(&room)),
            json!({ "msgtype": "m.text", "body": big }),
        )
        .await;
    expect_error(&res, 413, "M_TOO_LARGE", "/send over the size limit");
    assert_eq!(
        all_events(&alice, &room).await.len(),
        before,
        "a refused /send added an event"
    );
    expect_ok(
        login(&anon, "alice", "secret-pw").await,
        "a small login still works",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_rate_limit_is_m_limit_exceeded_with_retry_after() {
    let server = start_with(|c| {
        c.rate_limits.login = RateLimit {
            per_second: 0.001,
            burst: 2.0,
        }
    })
    .await;
    let anon = Raw::new(&server);
    anon.register("alice").await;
    expect_ok(login(&anon, "alice", "secret-pw").await, "first login");
    let res = login(&anon, "alice", "wrong-pw").await;
    expect_error(&res, 403, "M_FORBIDDEN", "second login, wrong password");
    let res = login(&anon, "alice", "secret-pw").await;
    expect_error(
        &res,
        429,
        "M_LIMIT_EXCEEDED",
        "third login past a burst of 2",
    );
    let retry = res.1["retry_after_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("retry_after_ms missing: {}", res.1));
    assert!(retry > 0, "retry_after_ms must be positive: {}", res.1);
    assert!(
        res.1.get("access_token").is_none(),
        "a limited login handed out a token"
    );
    // The login limiter does not limit other endpoints.
    anon.register("bob").await;
}

// ---------------------------------------------------------------- routing

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_endpoints_and_methods_are_m_unrecognized() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;
    #[rustfmt::skip]
    let rows = [
        (&anon, "GET", format!("{V3}/no_such_endpoint"), None, 404, "M_UNRECOGNIZED", "an unknown endpoint"),
        (&anon, "GET", "/_matrix/client/v3".to_owned(), None, 404, "M_UNRECOGNIZED", "the bare API prefix"),
        (&anon, "GET", "/_matrix/nothing/here".to_owned(), None, 404, "M_UNRECOGNIZED", "an unknown API"),
        (&alice, "POST", format!("{V3}/no_such_endpoint"), Some("{}"), 404, "M_UNRECOGNIZED", "authenticated POST to an unknown endpoint"),
        (&alice, "DELETE", format!("{V3}/login"), None, 405, "M_UNRECOGNIZED", "a method /login does not take"),
        (&alice, "PUT", format!("{V3}/createRoom"), None, 405, "M_UNRECOGNIZED", "a method /createRoom does not take"),
        (&alice, "GET", format!("{V3}/createRoom"), None, 405, "M_UNRECOGNIZED", "reading /createRoom"),
        (&alice, "POST", format!("{V3}/sync"), None, 405, "M_UNRECOGNIZED", "posting to /sync"),
    ];
    check_each(rows).await;
    assert!(joined_rooms(&alice).await.is_empty());
}

// ---------------------------------------------------------------- registration

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_registration_is_m_guest_access_forbidden() {
    let server = start().await;
    let anon = Raw::new(&server);
    #[rustfmt::skip]
    let rows: Vec<Described> = vec![
        ("POST", format!("{V3}/register?kind=guest"), Some("{}"), 403, "M_GUEST_ACCESS_FORBIDDEN", "guest registration"),
        ("POST", format!("{V3}/register?kind=guest"), Some(r#"{"username": "guest1", "auth": {"type": "m.login.dummy"}}"#), 403, "M_GUEST_ACCESS_FORBIDDEN", "guest registration with a name and auth"),
    ];
    check(&anon, rows).await;
    assert!(
        available(&anon, "guest1").await,
        "a refused guest registration created an account"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_registration_is_m_forbidden() {
    let server = start_with(|c| c.registration = Some(RegistrationMode::Closed)).await;
    let anon = Raw::new(&server);
    #[rustfmt::skip]
    let rows: Vec<Described<Value>> = vec![
        ("POST", format!("{V3}/register"), Some(dummy_registration("alice", "secret-pw")), 403, "M_FORBIDDEN", "registration while closed"),
        ("POST", format!("{V3}/register"), Some(json!({})), 403, "M_FORBIDDEN", "registration while closed, no auth"),
        ("POST", format!("{V3}/login"), Some(password_login("alice", "secret-pw")), 403, "M_FORBIDDEN", "login of the refused account"),
    ];
    check(&anon, rows).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_without_auth_is_a_uia_challenge_completed_by_dummy() {
    let server = start().await;
    let anon = Raw::new(&server);
    let body = json!({ "username": "erin", "password": "erin-pw" });
    let (status, challenge) = anon
        .json("POST", &format!("{V3}/register"), body.clone())
        .await;
    assert_eq!(status, 401, "register without auth: {challenge}");
    let flows = challenge["flows"]
        .as_array()
        .unwrap_or_else(|| panic!("flows missing: {challenge}"));
    assert!(
        flows
            .iter()
            .any(|f| f["stages"] == json!(["m.login.dummy"])),
        "no m.login.dummy flow: {challenge}"
    );
    let session = challenge["session"]
        .as_str()
        .unwrap_or_else(|| panic!("session missing: {challenge}"));
    assert!(!session.is_empty());
    assert!(
        challenge["params"].is_object(),
        "params missing: {challenge}"
    );
    assert!(
        available(&anon, "erin").await,
        "the challenge created the account"
    );

    let mut done = body;
    done["auth"] = json!({ "type": "m.login.dummy", "session": session });
    let ok = expect_ok(
        anon.json("POST", &format!("{V3}/register"), done).await,
        "register with dummy + session",
    );
    assert_eq!(ok["user_id"], "@erin:localhost");
    let token = ok["access_token"].as_str().expect("access_token");
    assert!(ok["device_id"].is_string(), "device_id missing: {ok}");
    let me = expect_ok(
        anon.with_token(token)
            .call("GET", &format!("{V3}/account/whoami"), None)
            .await,
        "whoami",
    );
    assert_eq!(me["user_id"], "@erin:localhost");
    assert_eq!(me["device_id"], ok["device_id"]);
    expect_ok(
        login(&anon, "erin", "erin-pw").await,
        "login with the registered password",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_registration_refuses_a_wrong_token_and_accepts_the_right_one() {
    let server = start_with(|c| {
        c.registration = Some(RegistrationMode::Token);
        c.registration_token = Some("let-me-in".to_owned());
    })
    .await;
    let anon = Raw::new(&server);
    let register = format!("{V3}/register");
    let body = json!({ "username": "frank", "password": "frank-pw" });

    let (status, challenge) = anon.json("POST", &register, body.clone()).await;
    assert_eq!(status, 401, "register without auth: {challenge}");
    let flows = challenge["flows"]
        .as_array()
        .unwrap_or_else(|| panic!("flows missing: {challenge}"));
    assert!(
        flows
            .iter()
            .any(|f| f["stages"] == json!(["m.login.registration_token"])),
        "no registration-token flow: {challenge}"
    );
    assert!(
        !flows
            .iter()
            .any(|f| f["stages"] == json!(["m.login.dummy"])),
        "token mode must not offer a dummy-only flow: {challenge}"
    );
    let session = challenge["session"].as_str().expect("session").to_owned();

    let mut dummy = body.clone();
    dummy["auth"] = json!({ "type": "m.login.dummy", "session": session });
    let (status, res) = anon.json("POST", &register, dummy).await;
    assert!(
        status == 401 || status == 400,
        "m.login.dummy in token mode: {status} {res}"
    );
    assert!(
        available(&anon, "frank").await,
        "m.login.dummy registered in token mode"
    );

    let mut tokenless = body.clone();
    tokenless["auth"] = json!({ "type": "m.login.registration_token", "session": session });
    let res = anon.json("POST", &register, tokenless).await;
    expect_error(
        &res,
        401,
        "M_MISSING_PARAM",
        "a token stage without its token",
    );
    assert_eq!(
        res.1["session"], session,
        "the same session goes on: {}",
        res.1
    );

    let mut wrong = body.clone();
    wrong["auth"] =
        json!({ "type": "m.login.registration_token", "token": "guess", "session": session });
    let res = anon.json("POST", &register, wrong).await;
    expect_error(&res, 401, "M_FORBIDDEN", "a wrong registration token");
    assert!(
        res.1["flows"].is_array(),
        "a failed stage still answers the flows: {}",
        res.1
    );
    assert!(
        available(&anon, "frank").await,
        "a wrong token registered the account"
    );

    let mut right = body;
    right["auth"] =
        json!({ "type": "m.login.registration_token", "token": "let-me-in", "session": session });
    let ok = expect_ok(
        anon.json("POST", &register, right).await,
        "the right registration token",
    );
    assert_eq!(ok["user_id"], "@frank:localhost");
    assert!(ok["access_token"].is_string());
    expect_ok(
        login(&anon, "frank", "frank-pw").await,
        "login after token registration",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_secret_registration_checks_the_mac_and_uses_each_nonce_once() {
    let secret = "the-shared-secret";
    let server = start_with(|c| {
        c.registration = Some(RegistrationMode::Closed);
        c.registration_shared_secret = Some(secret.to_owned());
    })
    .await;
    let anon = Raw::new(&server);
    let path = "/_synapse/admin/v1/register";
    let n1 = admin_nonce(&anon).await;
    let wrong = admin_mac("not-the-secret", &n1, "grace", "grace-pw", false);
    let res = anon
        .json("POST", path, json!({ "nonce": n1, "username": "grace", "password": "grace-pw", "admin": false, "mac": wrong }))
        .await;
    expect_error(&res, 403, "M_FORBIDDEN", "a MAC made with the wrong secret");
    assert!(
        available(&anon, "grace").await,
        "a wrong MAC registered the account"
    );
    // The nonce is spent even by a failed attempt (as in Synapse).
    let right = admin_mac(secret, &n1, "grace", "grace-pw", false);
    let (status, res) = anon
        .json("POST", path, json!({ "nonce": n1, "username": "grace", "password": "grace-pw", "admin": false, "mac": right }))
        .await;
    assert_eq!(status, 400, "a nonce spent by a failed attempt: {res}");

    let n2 = admin_nonce(&anon).await;
    let mac = admin_mac(secret, &n2, "grace", "grace-pw", false);
    let body = json!({ "nonce": n2, "username": "grace", "password": "grace-pw", "admin": false, "mac": mac });
    let ok = expect_ok(
        anon.json("POST", path, body.clone()).await,
        "shared-secret registration",
    );
    assert_eq!(ok["user_id"], "@grace:localhost");
    let token = ok["access_token"].as_str().expect("access_token");
    expect_ok(
        anon.with_token(token)
            .call("GET", &format!("{V3}/account/whoami"), None)
            .await,
        "whoami",
    );

    // Replaying the whole successful request: the nonce is single use.
    let mut replay = body;
    replay["username"] = json!("grace2");
    replay["mac"] = json!(admin_mac(secret, &n2, "grace2", "grace-pw", false));
    let (status, res) = anon.json("POST", path, replay).await;
    assert_eq!(status, 400, "a nonce used twice: {res}");
    assert!(
        available(&anon, "grace2").await,
        "a replayed nonce registered an account"
    );
    // Closed public registration is unaffected.
    let res = anon
        .json(
            "POST",
            &format!("{V3}/register"),
            dummy_registration("heidi", "pw"),
        )
        .await;
    expect_error(&res, 403, "M_FORBIDDEN", "public registration while closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_secret_registration_is_off_without_a_secret() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (status, body) = anon.call("GET", "/_synapse/admin/v1/register", None).await;
    assert!(
        (400..500).contains(&status),
        "nonce without a configured secret: {status} {body}"
    );
    let mac = admin_mac("", "n", "ivan", "pw", false);
    let (status, body) = anon
        .json(
            "POST",
            "/_synapse/admin/v1/register",
            json!({ "nonce": "n", "username": "ivan", "password": "pw", "mac": mac }),
        )
        .await;
    assert!(
        (400..500).contains(&status),
        "register without a configured secret: {status} {body}"
    );
    assert!(available(&anon, "ivan").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_devices_aliases_and_server_owned_account_data() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let (bob, bob_id) = anon.register("bob").await;
    let name_path = format!("{V3}/profile/{}/displayname", enc(&bob_id));
    let fully_read = format!("{V3}/user/{}/account_data/m.fully_read", enc(&alice_id));

    #[rustfmt::skip]
    let rows = [
        (&anon, "GET", format!("{V3}/profile/{}", enc("@nobody:localhost")), None, 404, "M_NOT_FOUND", "the profile of an unknown user"),
        (&alice, "PUT", name_path.clone(), Some(json!({ "displayname": "not bob" })), 403, "M_FORBIDDEN", "setting someone else's display name"),
        (&alice, "GET", format!("{V3}/devices/NOSUCHDEVICE"), None, 404, "M_NOT_FOUND", "an unknown device"),
        // Spec: 405 M_BAD_JSON for account data the server manages itself.
        (&alice, "PUT", fully_read.clone(), Some(json!({ "event_id": "$x" })), 405, "M_BAD_JSON", "setting m.fully_read as global account data"),
        (&alice, "GET", fully_read, None, 404, "M_NOT_FOUND", "m.fully_read after the refused PUT"),
    ];
    check_each(rows).await;
    let name = expect_ok(
        anon.call("GET", &name_path, None).await,
        "bob's display name",
    );
    assert_eq!(
        name["displayname"], "bob",
        "a refused profile change took effect"
    );
    expect_ok(
        bob.json("PUT", &name_path, json!({ "displayname": "Bob B." }))
            .await,
        "own name",
    );
    let name = expect_ok(
        anon.call("GET", &name_path, None).await,
        "bob's new display name",
    );
    assert_eq!(name["displayname"], "Bob B.");

    create_room(&alice, json!({ "room_alias_name": "taken" })).await;
    let res = bob
        .json(
            "POST",
            &format!("{V3}/createRoom"),
            json!({ "room_alias_name": "taken" }),
        )
        .await;
    expect_error(&res, 400, "M_ROOM_IN_USE", "a room alias that is taken");
    assert!(
        joined_rooms(&bob).await.is_empty(),
        "a refused /createRoom created a room"
    );
}

/// The localparts ending in `_ai` belong to the AI users (so this server
/// runs with them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_localparts_are_reserved_with_m_exclusive() {
    let server = common::start().await;
    let anon = Raw::new(&server);
    #[rustfmt::skip]
    let rows: Vec<Described<Value>> = vec![
        ("POST", format!("{V3}/register"), Some(dummy_registration("alice_ai", "pw")), 400, "M_EXCLUSIVE", "registering an AI user's localpart"),
        ("GET", format!("{V3}/register/available?username=bob_ai"), None, 400, "M_EXCLUSIVE", "/register/available for an AI user's localpart"),
    ];
    check(&anon, rows).await;
    let (status, _) = anon
        .call(
            "GET",
            &format!("{V3}/register/available?username=aidan"),
            None,
        )
        .await;
    assert_eq!(status, 200, "only the _ai suffix is reserved");
}

// ---------------------------------------------------------------- stored data of any shape

/// Account data is the client's to fill: `m.tag` stored through the generic
/// account-data API in any shape must not break the tag endpoints (the tag
/// PUT panicked, and every later tag request in the room lost its
/// connection). A `tags` that is not an object reads as no tags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_work_whatever_m_tag_holds() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let u = enc(&alice_id);
    for stored in [
        json!({ "tags": 5 }),
        json!({ "tags": [1, 2] }),
        json!({ "tags": "u.work" }),
        json!({ "tags": null }),
        json!({ "kept": true }),
    ] {
        let room = create_room(&alice, json!({})).await;
        let r = enc(&room);
        let what = format!("m.tag = {stored}");
        let account_data = format!("{V3}/user/{u}/rooms/{r}/account_data/m.tag");
        let tags = format!("{V3}/user/{u}/rooms/{r}/tags");
        expect_ok(
            alice.json("PUT", &account_data, stored.clone()).await,
            &what,
        );
        let got = expect_ok(alice.call("GET", &tags, None).await, &what);
        assert_eq!(got, json!({ "tags": {} }), "{what}");
        for attempt in ["first", "second"] {
            let res = alice
                .json("PUT", &format!("{tags}/u.work"), json!({ "order": 0.5 }))
                .await;
            expect_ok(res, &format!("{what}: {attempt} tag"));
        }
        let got = expect_ok(alice.call("GET", &tags, None).await, &what);
        assert_eq!(
            got,
            json!({ "tags": { "u.work": { "order": 0.5 } } }),
            "{what}"
        );
        expect_ok(
            alice.call("DELETE", &format!("{tags}/u.work"), None).await,
            &format!("{what}: untag"),
        );
        let got = expect_ok(alice.call("GET", &tags, None).await, &what);
        assert_eq!(got, json!({ "tags": {} }), "{what}");
        let content = expect_ok(alice.call("GET", &account_data, None).await, &what);
        assert_eq!(
            content.get("kept"),
            stored.get("kept"),
            "{what}: the rest of m.tag is kept: {content}"
        );
    }
}

// ---------------------------------------------------------------- event limits

/// Events over the spec's limits (65,536 bytes of PDU; 255-byte type and
/// state key) are 413 M_TOO_LARGE, as in Synapse. They answered 500, and a
/// `/createRoom` whose name or topic was too large, or whose later events
/// were refused, left a half-created room behind: now it creates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_events_are_m_too_large_and_change_nothing() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;
    let room = create_room(&alice, json!({})).await;
    let r = enc(&room);
    let before = all_events(&alice, &room).await;
    let big = "x".repeat(70_000);
    let long = "t".repeat(256);
    let edge = "t".repeat(255);

    #[rustfmt::skip]
    let rows: Vec<Described<Value>> = vec![
        ("PUT", format!("{V3}/rooms/{r}/send/m.room.message/big"), Some(json!({ "msgtype": "m.text", "body": big })), 413, "M_TOO_LARGE", "/send with a 70 KB body"),
        ("PUT", format!("{V3}/rooms/{r}/state/m.room.topic/"), Some(json!({ "topic": big })), 413, "M_TOO_LARGE", "a state event with 70 KB of content"),
        ("PUT", format!("{V3}/rooms/{r}/send/{long}/long"), Some(json!({})), 413, "M_TOO_LARGE", "/send with a 256-byte type"),
        ("PUT", format!("{V3}/rooms/{r}/state/{long}/"), Some(json!({})), 413, "M_TOO_LARGE", "a state event with a 256-byte type"),
        ("PUT", format!("{V3}/rooms/{r}/state/m.x/{long}"), Some(json!({})), 413, "M_TOO_LARGE", "a state event with a 256-byte state key"),
    ];
    check(&alice, rows).await;
    assert_eq!(
        all_events(&alice, &room).await,
        before,
        "refused events were stored"
    );
    let res = alice
        .json(
            "PUT",
            &format!("{V3}/rooms/{r}/state/{edge}/{edge}"),
            json!({ "ok": true }),
        )
        .await;
    expect_ok(res, "type and state key of exactly 255 bytes");

    let rooms = joined_rooms(&alice).await.len();
    #[rustfmt::skip]
    let rows: Vec<Described<Value>> = vec![
        ("POST", format!("{V3}/createRoom"), Some(json!({ "name": big })), 413, "M_TOO_LARGE", "/createRoom with a 70 KB name"),
        ("POST", format!("{V3}/createRoom"), Some(json!({ "topic": big })), 413, "M_TOO_LARGE", "/createRoom with a 70 KB topic"),
        ("POST", format!("{V3}/createRoom"), Some(json!({ "initial_state": [{ "type": "m.x", "content": { "x": big } }] })), 413, "M_TOO_LARGE", "/createRoom with 70 KB of initial state"),
        ("POST", format!("{V3}/createRoom"), Some(json!({ "initial_state": [{ "type": long, "content": {} }] })), 413, "M_TOO_LARGE", "/createRoom with initial state with a 256-byte type"),
        ("POST", format!("{V3}/createRoom"), Some(json!({ "room_version": "10", "power_level_content_override": { "users": {} } })), 403, "M_FORBIDDEN", "/createRoom with power levels that lock the creator out of the next event (v10)"),
        ("POST", format!("{V3}/createRoom"), Some(json!({ "initial_state": [{ "type": "m.x", "content": { "n": 1.5 } }] })), 400, "M_BAD_JSON", "/createRoom with initial state that has no canonical JSON form"),
    ];
    for row in rows {
        let row = Refusal::from(row);
        row.check(&alice).await;
        assert_eq!(
            joined_rooms(&alice).await.len(),
            rooms,
            "{} left a room behind",
            row.what
        );
    }
}

// ---------------------------------------------------------------- profile and device limits

/// Display names over 256 characters, avatar URLs over 1,000 or not `mxc://`
/// (a 10 MB one was accepted, then copied into every member event and served
/// to anyone by `/profile`), device ids over 512 characters and device names
/// over 100 are refused as Synapse refuses them, and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_and_device_fields_over_the_limits_are_refused() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let room = create_room(&alice, json!({})).await;
    let u = enc(&alice_id);
    let member = format!("{V3}/rooms/{}/state/m.room.member/{u}", enc(&room));
    let profile_before = expect_ok(
        anon.call("GET", &format!("{V3}/profile/{u}"), None).await,
        "profile",
    );
    let member_before = expect_ok(alice.call("GET", &member, None).await, "member event");

    let long_avatar = format!("mxc://localhost/{}", "a".repeat(1000));
    #[rustfmt::skip]
    let rows: Vec<Described<Value>> = vec![
        ("PUT", format!("{V3}/profile/{u}/displayname"), Some(json!({ "displayname": "n".repeat(257) })), 400, "M_INVALID_PARAM", "a 257-character display name"),
        ("PUT", format!("{V3}/profile/{u}/avatar_url"), Some(json!({ "avatar_url": long_avatar })), 400, "M_INVALID_PARAM", "a 1,016-character avatar URL"),
        ("PUT", format!("{V3}/profile/{u}/avatar_url"), Some(json!({ "avatar_url": "https://example.org/me.png" })), 400, "M_INVALID_PARAM", "an avatar URL that is not mxc://"),
    ];
    check(&alice, rows).await;
    let profile = anon.call("GET", &format!("{V3}/profile/{u}"), None).await;
    assert_eq!(expect_ok(profile, "profile"), profile_before);
    let member_after = expect_ok(alice.call("GET", &member, None).await, "member event");
    assert_eq!(
        member_after, member_before,
        "a refused profile change reached the room"
    );
    for (field, value) in [
        ("displayname", "n".repeat(256)),
        ("avatar_url", "mxc://localhost/abcdef".to_owned()),
    ] {
        let res = alice
            .json(
                "PUT",
                &format!("{V3}/profile/{u}/{field}"),
                json!({ field: value }),
            )
            .await;
        expect_ok(res, &format!("{field} at the limit"));
    }

    let devices = || async {
        let body = expect_ok(
            alice.call("GET", &format!("{V3}/devices"), None).await,
            "devices",
        );
        body["devices"].as_array().expect("devices").len()
    };
    let count = devices().await;
    let login_with = |field: &str, value: String| {
        let mut body = password_login("alice", "secret-pw");
        body[field] = json!(value);
        body
    };
    let own = expect_ok(
        alice
            .call("GET", &format!("{V3}/account/whoami"), None)
            .await,
        "whoami",
    )["device_id"]
        .as_str()
        .map(enc)
        .expect("device_id");
    #[rustfmt::skip]
    let rows = [
        (&anon, "POST", format!("{V3}/login"), Some(login_with("device_id", "D".repeat(513))), 400, "M_INVALID_PARAM", "login with a 513-character device id"),
        (&anon, "POST", format!("{V3}/login"), Some(login_with("initial_device_display_name", "n".repeat(101))), 400, "M_TOO_LARGE", "login with a 101-character device name"),
        (&anon, "POST", format!("{V3}/register"), Some(json!({ "username": "carol", "password": "secret-pw", "device_id": "D".repeat(513), "auth": { "type": "m.login.dummy" } })), 400, "M_INVALID_PARAM", "register with a 513-character device id"),
        (&alice, "PUT", format!("{V3}/devices/{own}"), Some(json!({ "display_name": "n".repeat(101) })), 400, "M_TOO_LARGE", "renaming a device to 101 characters"),
    ];
    check_each(rows).await;
    assert!(
        available(&anon, "carol").await,
        "a refused registration created the account"
    );
    assert_eq!(devices().await, count, "refused logins made devices");
    expect_ok(
        anon.json(
            "POST",
            &format!("{V3}/login"),
            login_with("device_id", "D".repeat(512)),
        )
        .await,
        "a 512-character device id",
    );
}

// ---------------------------------------------------------------- to-device

/// To-device messages for users or devices that do not exist are dropped,
/// as Synapse drops them: they were stored, and nothing would ever collect
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn to_device_messages_for_nobody_are_not_stored() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;
    let (_bob, bob_id) = anon.register("bob").await;
    let keys = &server.services.keys;
    let position = server.services.store.position();
    for (txn, user, device) in [
        ("t1", bob_id.as_str(), "NOSUCHDEVICE"),
        ("t2", "@nobody:localhost", "DEVICE"),
        ("t3", "@nobody:localhost", "*"),
        ("t4", "@someone:elsewhere.org", "DEVICE"),
    ] {
        let res = alice
            .json(
                "PUT",
                &format!("{V3}/sendToDevice/m.test/{txn}"),
                json!({ "messages": { user: { device: { "n": 1 } } } }),
            )
            .await;
        expect_ok(res, &format!("a to-device message for {user} {device}"));
        let user = ruma::UserId::parse(user).expect("user id");
        let kept = keys
            .take_to_device(&user, device.into(), 0, u64::MAX)
            .await
            .expect("to-device inbox");
        assert!(kept.is_empty(), "stored for {user} {device}");
    }
    assert_eq!(
        server.services.store.position(),
        position,
        "messages for nobody took stream positions"
    );
}

// ---------------------------------------------------------------- Synapse's refusals

/// What Synapse refuses and this server accepted: an alias for a room one
/// is not in, the presence of someone one shares no room with, and a
/// redaction of someone else's event without the `redact` power level
/// (accepted, then silently not applied). All are 403 M_FORBIDDEN and
/// change nothing; one's own events may always be redacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synapse_refusals_are_m_forbidden_and_change_nothing() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let (bob, bob_id) = anon.register("bob").await;
    let (carol, _) = anon.register("carol").await;
    let room = common::rooms::shared_room(&alice, &bob, &bob_id).await;
    let r = enc(&room);
    let alias = format!("{V3}/directory/room/{}", enc("#mine:localhost"));
    let presence = format!("{V3}/presence/{}/status", enc(&alice_id));
    expect_ok(
        alice
            .json("PUT", &presence, json!({ "presence": "online" }))
            .await,
        "set presence",
    );

    #[rustfmt::skip]
    let rows = [
        (&carol, "PUT", alias.clone(), Some(json!({ "room_id": room })), 403, "M_FORBIDDEN", "an alias for a room one is not in"),
        (&carol, "GET", presence.clone(), None, 403, "M_FORBIDDEN", "presence of someone sharing no room"),
        (&anon, "GET", alias.clone(), None, 404, "M_NOT_FOUND", "the refused alias"),
    ];
    check_each(rows).await;
    expect_ok(
        bob.json("PUT", &alias, json!({ "room_id": room })).await,
        "an alias by a member",
    );
    for (who, raw) in [("alice herself", &alice), ("bob, in her room", &bob)] {
        let seen = expect_ok(raw.call("GET", &presence, None).await, who);
        assert_eq!(seen["presence"], "online", "{who}: {seen}");
    }

    let from_alice = common::rooms::send_text(&alice, &room, "a1", "alice's words").await;
    let from_bob = common::rooms::send_text(&bob, &room, "b1", "bob's words").await;
    let event = |id: &str| format!("{V3}/rooms/{r}/event/{}", enc(id));
    let redact = |id: &str, txn: &str| format!("{V3}/rooms/{r}/redact/{}/{txn}", enc(id));
    let before = all_events(&alice, &room).await;
    let res = bob.json("PUT", &redact(&from_alice, "x1"), json!({})).await;
    expect_error(
        &res,
        403,
        "M_FORBIDDEN",
        "power 0 redacting someone else's event",
    );
    assert_eq!(
        all_events(&alice, &room).await,
        before,
        "the refused redaction was stored"
    );
    let kept = expect_ok(alice.call("GET", &event(&from_alice), None).await, "event");
    assert_eq!(kept["content"]["body"], "alice's words", "{kept}");
    let elsewhere = create_room(&alice, json!({})).await;
    let res = alice
        .json(
            "PUT",
            &format!(
                "{V3}/rooms/{}/redact/{}/x2",
                enc(&elsewhere),
                enc(&from_bob)
            ),
            json!({}),
        )
        .await;
    expect_error(
        &res,
        400,
        "M_INVALID_PARAM",
        "redacting an event of another room",
    );

    for (who, raw, id, txn) in [
        ("bob, his own event", &bob, &from_bob, "x3"),
        ("alice (power 100), her own", &alice, &from_alice, "x4"),
    ] {
        expect_ok(raw.json("PUT", &redact(id, txn), json!({})).await, who);
        let gone = expect_ok(alice.call("GET", &event(id), None).await, who);
        assert_eq!(gone["content"], json!({}), "{who}: {gone}");
    }
    let again = common::rooms::send_text(&bob, &room, "b2", "more").await;
    expect_ok(
        alice.json("PUT", &redact(&again, "x5"), json!({})).await,
        "alice (power 100) redacting bob's event",
    );
}

// ---------------------------------------------------------------- URLs

/// A path segment that is not UTF-8 was refused by axum in `text/plain`;
/// every refusal is Matrix JSON, whichever route and extractor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_segments_that_are_not_utf8_are_m_invalid_param() {
    let server = start_with(|c| c.max_request_size = 4096).await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;
    let big = format!("\"{}\"", "x".repeat(8192));
    #[rustfmt::skip]
    let rows: Vec<Described<&str>> = vec![
        ("GET", format!("{V3}/rooms/%FF/state"), Some("{}"), 400, "M_INVALID_PARAM", "a room id that is not UTF-8"),
        ("GET", format!("{V3}/profile/%C3%28"), Some("{}"), 400, "M_INVALID_PARAM", "a user id that is not UTF-8"),
        ("PUT", format!("{V3}/rooms/%FF/send/m.room.message/t1"), Some("{}"), 400, "M_INVALID_PARAM", "sending into a room id that is not UTF-8"),
        ("GET", format!("{V3}/user/%FF/filter/x"), Some("{}"), 400, "M_INVALID_PARAM", "a filter of a user id that is not UTF-8"),
        ("GET", "/_matrixos/app-data/%FF/app/key".to_owned(), Some("{}"), 400, "M_INVALID_PARAM", "app data of a user that is not UTF-8"),
        // A body over the limit, refused by axum's own body extractor.
        ("PUT", "/_matrixos/app-data/alice/app/key".to_owned(), Some(big.as_str()), 413, "M_TOO_LARGE", "app data over max_request_size"),
    ];
    check(&alice, rows).await;
}
