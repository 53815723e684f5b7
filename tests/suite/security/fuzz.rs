//! Property test: random and mutated JSON bodies, query strings and path
//! segments sent to every route through the router, in-process. Whatever
//! comes in, the server never panics, never answers 5xx, and every refusal
//! is Matrix JSON with an `M_…` errcode.
//!
//! The seed is fixed and the case count bounded; `PROPTEST_CASES=20000`
//! runs it longer.

use std::sync::Arc;

use axum::body::Body;
use http::Request;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::common::{create_room, start_with, Raw};

/// Every route, by method and path template. `{room}`, `{user}`, `{event}`
/// and the other holes are filled with real or hostile values.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/_matrix/client/versions"),
    ("GET", "/.well-known/matrix/client"),
    ("GET", "/_matrix/client/v3/capabilities"),
    ("POST", "/_matrix/client/v3/register"),
    ("GET", "/_matrix/client/v3/register/available"),
    (
        "GET",
        "/_matrix/client/v1/register/m.login.registration_token/validity",
    ),
    ("GET", "/_matrix/client/v3/login"),
    ("POST", "/_matrix/client/v3/login"),
    ("GET", "/_matrix/client/v3/account/whoami"),
    ("POST", "/_matrix/client/v3/account/password"),
    ("POST", "/_matrix/client/v3/account/deactivate"),
    ("GET", "/_synapse/admin/v1/register"),
    ("POST", "/_synapse/admin/v1/register"),
    ("GET", "/_matrix/client/v3/devices"),
    ("GET", "/_matrix/client/v3/devices/{device}"),
    ("PUT", "/_matrix/client/v3/devices/{device}"),
    ("DELETE", "/_matrix/client/v3/devices/{device}"),
    ("POST", "/_matrix/client/v3/delete_devices"),
    ("GET", "/_matrix/client/v3/profile/{user}"),
    ("GET", "/_matrix/client/v3/profile/{user}/{field}"),
    ("PUT", "/_matrix/client/v3/profile/{user}/{field}"),
    ("POST", "/_matrix/client/v3/createRoom"),
    ("POST", "/_matrix/client/v3/join/{room}"),
    ("POST", "/_matrix/client/v3/knock/{room}"),
    ("GET", "/_matrix/client/v3/joined_rooms"),
    ("POST", "/_matrix/client/v3/rooms/{room}/join"),
    ("POST", "/_matrix/client/v3/rooms/{room}/leave"),
    ("POST", "/_matrix/client/v3/rooms/{room}/invite"),
    ("POST", "/_matrix/client/v3/rooms/{room}/kick"),
    ("POST", "/_matrix/client/v3/rooms/{room}/ban"),
    ("POST", "/_matrix/client/v3/rooms/{room}/unban"),
    ("POST", "/_matrix/client/v3/rooms/{room}/forget"),
    ("PUT", "/_matrix/client/v3/rooms/{room}/send/{kind}/{txn}"),
    ("GET", "/_matrix/client/v3/rooms/{room}/state"),
    ("GET", "/_matrix/client/v3/rooms/{room}/state/{kind}"),
    ("PUT", "/_matrix/client/v3/rooms/{room}/state/{kind}"),
    ("GET", "/_matrix/client/v3/rooms/{room}/state/{kind}/{key}"),
    ("PUT", "/_matrix/client/v3/rooms/{room}/state/{kind}/{key}"),
    ("GET", "/_matrix/client/v3/rooms/{room}/event/{event}"),
    (
        "PUT",
        "/_matrix/client/v3/rooms/{room}/redact/{event}/{txn}",
    ),
    ("GET", "/_matrix/client/v3/rooms/{room}/messages"),
    ("GET", "/_matrix/client/v3/rooms/{room}/members"),
    ("GET", "/_matrix/client/v3/rooms/{room}/context/{event}"),
    ("GET", "/_matrix/client/v1/rooms/{room}/timestamp_to_event"),
    ("GET", "/_matrix/client/v3/rooms/{room}/joined_members"),
    (
        "POST",
        "/_matrix/client/v3/rooms/{room}/receipt/{kind}/{event}",
    ),
    ("POST", "/_matrix/client/v3/rooms/{room}/read_markers"),
    ("PUT", "/_matrix/client/v3/rooms/{room}/typing/{user}"),
    ("GET", "/_matrix/client/v3/directory/room/{alias}"),
    ("PUT", "/_matrix/client/v3/directory/room/{alias}"),
    ("DELETE", "/_matrix/client/v3/directory/room/{alias}"),
    ("GET", "/_matrix/client/v3/rooms/{room}/aliases"),
    ("GET", "/_matrix/client/v3/directory/list/room/{room}"),
    ("PUT", "/_matrix/client/v3/directory/list/room/{room}"),
    ("GET", "/_matrix/client/v3/publicRooms"),
    ("POST", "/_matrix/client/v3/publicRooms"),
    ("GET", "/_matrix/client/v3/sync"),
    ("POST", "/_matrix/client/v3/user/{user}/filter"),
    ("GET", "/_matrix/client/v3/user/{user}/filter/{txn}"),
    ("GET", "/_matrix/client/v3/user/{user}/account_data/{kind}"),
    ("PUT", "/_matrix/client/v3/user/{user}/account_data/{kind}"),
    (
        "GET",
        "/_matrix/client/v3/user/{user}/rooms/{room}/account_data/{kind}",
    ),
    (
        "PUT",
        "/_matrix/client/v3/user/{user}/rooms/{room}/account_data/{kind}",
    ),
    ("GET", "/_matrix/client/v3/user/{user}/rooms/{room}/tags"),
    (
        "PUT",
        "/_matrix/client/v3/user/{user}/rooms/{room}/tags/{key}",
    ),
    (
        "DELETE",
        "/_matrix/client/v3/user/{user}/rooms/{room}/tags/{key}",
    ),
    ("GET", "/_matrix/client/v3/notifications"),
    ("GET", "/_matrix/client/v3/pushers"),
    ("POST", "/_matrix/client/v3/pushers/set"),
    ("GET", "/_matrix/client/v3/pushrules/"),
    ("GET", "/_matrix/client/v3/pushrules/{scope}/"),
    ("GET", "/_matrix/client/v3/pushrules/{scope}/{kind}/{key}"),
    ("PUT", "/_matrix/client/v3/pushrules/{scope}/{kind}/{key}"),
    (
        "DELETE",
        "/_matrix/client/v3/pushrules/{scope}/{kind}/{key}",
    ),
    (
        "GET",
        "/_matrix/client/v3/pushrules/{scope}/{kind}/{key}/{field}",
    ),
    (
        "PUT",
        "/_matrix/client/v3/pushrules/{scope}/{kind}/{key}/{field}",
    ),
    ("GET", "/_matrix/client/v3/presence/{user}/status"),
    ("PUT", "/_matrix/client/v3/presence/{user}/status"),
    ("GET", "/_matrix/client/v3/room_keys/version"),
    ("POST", "/_matrix/client/v3/room_keys/version"),
    ("GET", "/_matrix/client/v3/room_keys/version/{txn}"),
    ("PUT", "/_matrix/client/v3/room_keys/version/{txn}"),
    ("DELETE", "/_matrix/client/v3/room_keys/version/{txn}"),
    ("GET", "/_matrix/client/v3/room_keys/keys"),
    ("PUT", "/_matrix/client/v3/room_keys/keys"),
    ("GET", "/_matrix/client/v3/room_keys/keys/{room}"),
    ("PUT", "/_matrix/client/v3/room_keys/keys/{room}"),
    ("GET", "/_matrix/client/v3/room_keys/keys/{room}/{key}"),
    ("PUT", "/_matrix/client/v3/room_keys/keys/{room}/{key}"),
    ("DELETE", "/_matrix/client/v3/room_keys/keys/{room}/{key}"),
    ("POST", "/_matrix/client/v3/keys/upload"),
    ("POST", "/_matrix/client/v3/keys/query"),
    ("POST", "/_matrix/client/v3/keys/claim"),
    ("GET", "/_matrix/client/v3/keys/changes"),
    ("POST", "/_matrix/client/v3/keys/device_signing/upload"),
    ("POST", "/_matrix/client/v3/keys/signatures/upload"),
    ("PUT", "/_matrix/client/v3/sendToDevice/{kind}/{txn}"),
    ("GET", "/_matrix/client/v1/media/config"),
    ("POST", "/_matrix/media/v3/upload"),
    ("GET", "/_matrix/client/v1/media/download/{server}/{media}"),
    (
        "GET",
        "/_matrix/client/v1/media/download/{server}/{media}/{field}",
    ),
    ("GET", "/_matrix/media/v3/download/{server}/{media}"),
    ("GET", "/_matrix/client/v1/media/thumbnail/{server}/{media}"),
    ("GET", "/_matrix/media/v3/thumbnail/{server}/{media}"),
    ("GET", "/_matrixos/v1/usage"),
    ("GET", "/_matrixos/apps/{user}/{field}/"),
    ("GET", "/_matrixos/apps/{user}/{field}/{key}"),
    ("GET", "/_matrixos/app-data/{user}/{field}/{key}"),
    ("PUT", "/_matrixos/app-data/{user}/{field}/{key}"),
    ("PUT", "/_matrixos/admin/v1/ai/{user}"),
];

/// Query parameters the endpoints read (never `timeout`: a long-poll would
/// only make the test slow).
const QUERY_KEYS: &[&str] = &[
    "limit",
    "from",
    "to",
    "dir",
    "filter",
    "since",
    "full_state",
    "set_presence",
    "kind",
    "username",
    "token",
    "ts",
    "at",
    "membership",
    "not_membership",
    "only",
    "version",
    "width",
    "height",
    "method",
    "server_name",
    "via",
    "filename",
    "access_token",
    "days",
];

/// Real values the holes can take, so requests get past the id checks.
struct Known {
    room: String,
    user: String,
    event: String,
    server: String,
}

fn hostile_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("%FF%FE".to_owned()),
        Just("..".to_owned()),
        Just("%2e%2e%2f%2e%2e".to_owned()),
        Just("%00".to_owned()),
        Just("a".repeat(300)),
        Just("!x:localhost".to_owned()),
        Just("@x:localhost".to_owned()),
        Just("$x".to_owned()),
        Just("#a:localhost".to_owned()),
        Just("m.room.message".to_owned()),
        Just("global".to_owned()),
        Just("override".to_owned()),
        "[a-zA-Z0-9._~!$&'()*+,;=:@-]{0,40}",
        proptest::collection::vec(any::<u8>(), 0..12)
            .prop_map(|bytes| bytes.iter().map(|b| format!("%{b:02X}")).collect()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
        Just(json!("@alice:localhost")),
        Just(json!("m.text")),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(field_name(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Field names the endpoints look for, and others.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "type",
            "content",
            "body",
            "msgtype",
            "user_id",
            "username",
            "password",
            "auth",
            "session",
            "device_id",
            "identifier",
            "user",
            "room_alias_name",
            "name",
            "topic",
            "preset",
            "invite",
            "initial_state",
            "state_key",
            "tags",
            "order",
            "actions",
            "conditions",
            "pattern",
            "device_keys",
            "one_time_keys",
            "fallback_keys",
            "messages",
            "algorithm",
            "auth_data",
            "rooms",
            "sessions",
            "displayname",
            "avatar_url",
            "presence",
            "status_msg",
            "timeout",
            "typing",
            "m.fully_read",
            "m.read",
            "reason",
            "visibility",
            "room_id",
            "filter",
            "limit",
            "server",
            "generic_search_term",
            "pushkey",
            "app_id",
            "kind",
            "data",
            "room_version",
            "creation_content",
            "power_level_content_override",
            "is_direct",
            "membership",
            "master_key",
            "self_signing_key",
            "user_signing_key",
            "usage",
            "keys",
            "signatures",
            "nonce",
            "mac",
            "admin",
            "enabled",
            "thread_id",
            "new_password",
        ])
        .prop_map(str::to_owned),
        "[a-z_.]{1,12}",
    ]
}

#[derive(Debug, Clone)]
struct Case {
    route: usize,
    holes: Vec<(bool, String)>,
    query: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    authenticated: bool,
}

fn case() -> impl Strategy<Value = Case> {
    let body = prop_oneof![
        3 => json_value().prop_map(|v| Some(v.to_string().into_bytes())),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Some),
        1 => Just(None),
    ];
    let query = proptest::collection::vec(
        (
            prop::sample::select(QUERY_KEYS).prop_map(str::to_owned),
            prop_oneof![
                hostile_segment(),
                "-?[0-9]{1,20}",
                Just("{\"room\":{\"timeline\":{\"limit\":-1}}}".to_owned())
            ],
        ),
        0..4,
    );
    (
        0..ROUTES.len(),
        proptest::collection::vec((any::<bool>(), hostile_segment()), 6),
        query,
        body,
        prop::bool::weighted(0.85),
    )
        .prop_map(|(route, holes, query, body, authenticated)| Case {
            route,
            holes,
            query,
            body,
            authenticated,
        })
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The request's path: each hole gets the real value or a hostile one.
fn path_of(case: &Case, known: &Known) -> String {
    let (_, template) = ROUTES[case.route];
    let mut path = String::new();
    let mut holes = case.holes.iter();
    for (i, part) in template.split('{').enumerate() {
        if i == 0 {
            path.push_str(part);
            continue;
        }
        let Some((name, rest)) = part.split_once('}') else {
            continue;
        };
        let (use_real, hostile) = holes.next().cloned().unwrap_or_default();
        let real = match name {
            "room" => Some(known.room.as_str()),
            "user" => Some(known.user.as_str()),
            "event" => Some(known.event.as_str()),
            "server" => Some(known.server.as_str()),
            _ => None,
        };
        match real {
            Some(real) if use_real => path.push_str(&encode(real)),
            _ => path.push_str(&hostile),
        }
        path.push_str(rest);
    }
    if !case.query.is_empty() {
        let query: Vec<String> = case.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        path.push('?');
        path.push_str(&query.join("&"));
    }
    path
}

async fn send(
    app: &axum::Router,
    case: &Case,
    known: &Known,
    token: &str,
) -> (u16, Vec<u8>, String) {
    let (method, _) = ROUTES[case.route];
    let path = path_of(case, known);
    let mut request = Request::builder().method(method).uri(&path);
    // Logging out would end every later case's session.
    let logout = path.contains("/logout") || path.contains("/deactivate");
    if case.authenticated && !logout {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = match &case.body {
        Some(bytes) => {
            request = request.header("content-type", "application/json");
            Body::from(bytes.clone())
        }
        None => Body::empty(),
    };
    let Ok(request) = request.body(body) else {
        // Not a valid URI at all: no server ever sees it.
        return (400, b"{\"errcode\":\"M_UNRECOGNIZED\"}".to_vec(), path);
    };
    let response = app
        .clone()
        .oneshot(request)
        .await
        .expect("infallible router");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
        .await
        .expect("response body");
    (status, bytes.to_vec(), path)
}

fn check(case: &Case, status: u16, body: &[u8], path: &str) -> Result<(), TestCaseError> {
    let (method, _) = ROUTES[case.route];
    prop_assert!(
        status < 500,
        "{method} {path} answered {status}: {}",
        String::from_utf8_lossy(body)
    );
    if status >= 400 {
        let json: Value = serde_json::from_slice(body).map_err(|_| {
            TestCaseError::fail(format!(
                "{method} {path} refused with a non-JSON body ({status}): {}",
                String::from_utf8_lossy(body)
            ))
        })?;
        // A user-interactive auth challenge carries flows, not an errcode.
        if status == 401 && json.get("flows").is_some() {
            return Ok(());
        }
        let errcode = json["errcode"].as_str().unwrap_or_default();
        prop_assert!(
            errcode.starts_with("M_"),
            "{method} {path} refused ({status}) without an errcode: {json}"
        );
    }
    Ok(())
}

#[test]
fn no_input_makes_the_server_panic_or_fail() {
    crate::common::init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (server, known, token) = runtime.block_on(async {
        let server = start_with(|c| {
            c.rate_limits.register.per_second = 0.0;
            c.rate_limits.login.per_second = 0.0;
        })
        .await;
        let anon = Raw::new(&server);
        let (alice, user) = anon.register("fuzzer").await;
        let room = create_room(&alice, json!({ "name": "fuzz" })).await;
        let event = crate::common::rooms::send_text(&alice, &room, "t1", "hello").await;
        let token = alice.token.clone().expect("token");
        let known = Known {
            room,
            user,
            event,
            server: server.services.server_name.to_string(),
        };
        (server, known, token)
    });
    let app = matrixos::server::app(Arc::clone(&server.services));
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(600);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let seed = [7u8; 32];
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, usize>::new());
    let result = runner.run(&case(), |case| {
        let (status, body, path) = runtime.block_on(send(&app, &case, &known, &token));
        *statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(status)
            .or_default() += 1;
        check(&case, status, &body, &path)
    });
    eprintln!(
        "answers by status: {:?}",
        statuses.lock().unwrap_or_else(|p| p.into_inner())
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}
