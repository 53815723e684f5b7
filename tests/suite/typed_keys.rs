//! What the typed key, cross-signing, key backup, media and directory
//! endpoints answer to bad input, as tables of (method, path, body,
//! status, errcode) run by one loop, and the headers every served file
//! carries at both media API generations.

use crate::common;

use common::errors::{check, Row};
use common::{create_room, enc, expect_ok, Raw, V3};
use serde_json::{json, Value};

const ALGORITHM: &str = "m.megolm_backup.v1.curve25519-aes-sha2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_key_and_to_device_requests_are_refused() {
    let server = common::start().await;
    let (alice, alice_id) = Raw::new(&server).register("alice").await;
    #[rustfmt::skip]
    let rows: Vec<Row<Value>> = vec![
        ("POST", format!("{V3}/keys/upload"), Some(json!({ "one_time_keys": [] })), 400, "M_BAD_JSON"),
        // Key ids are `algorithm:name` (Synapse fails with a 500 on one without the colon).
        ("POST", format!("{V3}/keys/upload"), Some(json!({ "one_time_keys": { "nocolon": {} } })), 400, "M_INVALID_PARAM"),
        // Synapse: "'device_keys' must be a JSON object".
        ("POST", format!("{V3}/keys/query"), Some(json!({})), 400, "M_BAD_JSON"),
        // Synapse: "'device_keys' values must be a list of strings".
        ("POST", format!("{V3}/keys/query"), Some(json!({ "device_keys": { alice_id.clone(): "all" } })), 400, "M_BAD_JSON"),
        ("POST", format!("{V3}/keys/query"), Some(json!({ "device_keys": { "alice": [] } })), 400, "M_INVALID_PARAM"),
        ("POST", format!("{V3}/keys/claim"), Some(json!({})), 400, "M_MISSING_PARAM"),
        ("POST", format!("{V3}/keys/claim"), Some(json!({ "one_time_keys": { alice_id.clone(): ["DEVICE"] } })), 400, "M_BAD_JSON"),
        ("GET", format!("{V3}/keys/changes"), None, 400, "M_MISSING_PARAM"),
        ("GET", format!("{V3}/keys/changes?from=1"), None, 400, "M_MISSING_PARAM"),
        ("GET", format!("{V3}/keys/changes?from=x&to=2"), None, 400, "M_INVALID_PARAM"),
        // Synapse requires `messages` (assert_params_in_dict).
        ("PUT", format!("{V3}/sendToDevice/m.test/t1"), Some(json!({})), 400, "M_MISSING_PARAM"),
        ("PUT", format!("{V3}/sendToDevice/m.test/t2"), Some(json!({ "messages": { alice_id.clone(): [] } })), 400, "M_BAD_JSON"),
        ("PUT", format!("{V3}/sendToDevice/m.test/t3"), Some(json!({ "messages": { "alice": {} } })), 400, "M_INVALID_PARAM"),
        ("POST", format!("{V3}/keys/device_signing/upload"), Some(json!({ "master_key": 5 })), 400, "M_BAD_JSON"),
        ("POST", format!("{V3}/keys/device_signing/upload"), Some(json!({ "auth": "password" })), 400, "M_BAD_JSON"),
        ("POST", format!("{V3}/keys/signatures/upload"), Some(json!({ alice_id.clone(): { "KEY": 5 } })), 400, "M_INVALID_PARAM"),
        ("POST", format!("{V3}/keys/signatures/upload"), Some(json!({ alice_id.clone(): [] })), 400, "M_BAD_JSON"),
        ("POST", format!("{V3}/keys/signatures/upload"), Some(json!({ "alice": {} })), 400, "M_INVALID_PARAM"),
    ];
    check(&alice, rows).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_key_backup_requests_are_refused() {
    let server = common::start().await;
    let (alice, _) = Raw::new(&server).register("alice").await;
    let created = alice
        .json(
            "POST",
            &format!("{V3}/room_keys/version"),
            json!({ "algorithm": ALGORITHM, "auth_data": { "public_key": "abc", "signatures": {} } }),
        )
        .await;
    let v = expect_ok(created, "create a backup version")["version"]
        .as_str()
        .expect("version")
        .to_owned();
    let room = enc("!room:localhost");
    let key = json!({ "first_message_index": 0, "forwarded_count": 0, "is_verified": false, "session_data": {} });
    #[rustfmt::skip]
    let rows: Vec<Row<Value>> = vec![
        ("POST", format!("{V3}/room_keys/version"), Some(json!({})), 400, "M_MISSING_PARAM"),
        ("POST", format!("{V3}/room_keys/version"), Some(json!({ "algorithm": 5, "auth_data": {} })), 400, "M_BAD_JSON"),
        ("POST", format!("{V3}/room_keys/version"), Some(json!({ "algorithm": "m.x" })), 400, "M_BAD_JSON"),
        ("POST", format!("{V3}/room_keys/version"), Some(json!({ "algorithm": "m.x", "auth_data": [] })), 400, "M_BAD_JSON"),
        // A version that is not a number names no backup.
        ("GET", format!("{V3}/room_keys/version/abc"), None, 404, "M_NOT_FOUND"),
        ("DELETE", format!("{V3}/room_keys/version/abc"), None, 404, "M_NOT_FOUND"),
        ("PUT", format!("{V3}/room_keys/version/{v}"), Some(json!({ "algorithm": ALGORITHM, "auth_data": {}, "version": "999" })), 400, "M_INVALID_PARAM"),
        ("GET", format!("{V3}/room_keys/keys"), None, 400, "M_MISSING_PARAM"),
        ("GET", format!("{V3}/room_keys/keys?version=abc"), None, 404, "M_NOT_FOUND"),
        ("PUT", format!("{V3}/room_keys/keys?version={v}"), Some(json!({})), 400, "M_MISSING_PARAM"),
        ("PUT", format!("{V3}/room_keys/keys?version={v}"), Some(json!({ "rooms": [] })), 400, "M_BAD_JSON"),
        ("PUT", format!("{V3}/room_keys/keys?version={v}"), Some(json!({ "rooms": { "room": { "sessions": {} } } })), 400, "M_INVALID_PARAM"),
        ("PUT", format!("{V3}/room_keys/keys/room?version={v}"), Some(json!({ "sessions": {} })), 400, "M_INVALID_PARAM"),
        ("PUT", format!("{V3}/room_keys/keys/{room}?version={v}"), Some(json!({ "sessions": { "s": {} } })), 400, "M_BAD_JSON"),
        ("PUT", format!("{V3}/room_keys/keys/{room}/s?version={v}"), Some(json!({ "session_data": {} })), 400, "M_BAD_JSON"),
        ("PUT", format!("{V3}/room_keys/keys/{room}/s"), Some(key), 400, "M_MISSING_PARAM"),
        ("GET", format!("{V3}/room_keys/keys/{room}/nope?version={v}"), None, 404, "M_NOT_FOUND"),
        ("DELETE", format!("{V3}/room_keys/keys/room/s?version={v}"), None, 400, "M_INVALID_PARAM"),
    ];
    check(&alice, rows).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_media_and_directory_requests_are_refused() {
    let server = common::start().await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;
    let room = enc(&create_room(&alice, json!({})).await);
    let thumb = "/_matrix/client/v1/media/thumbnail/localhost/AAAAAAAAAAAAAAAAAAAAAAAA";
    let alias = enc("#tea:localhost");
    #[rustfmt::skip]
    let rows: Vec<Row<Value>> = vec![
        ("GET", format!("{thumb}?height=32"), None, 400, "M_MISSING_PARAM"),
        ("GET", format!("{thumb}?width=0&height=32"), None, 400, "M_INVALID_PARAM"),
        ("GET", format!("{thumb}?width=wide&height=32"), None, 400, "M_INVALID_PARAM"),
        ("GET", format!("{thumb}?width=32&height=32&method=stretch"), None, 400, "M_INVALID_PARAM"),
        ("GET", format!("{thumb}?width=32&height=32"), None, 404, "M_NOT_FOUND"),
        // A server name that cannot be one.
        ("GET", "/_matrix/client/v1/media/download/bad%20server/x".to_owned(), None, 400, "M_INVALID_PARAM"),
        ("GET", "/_matrix/media/v3/download/localhost/nosuchmedia".to_owned(), None, 404, "M_NOT_FOUND"),
        ("GET", format!("{V3}/directory/room/tea"), None, 400, "M_INVALID_PARAM"),
        ("PUT", format!("{V3}/directory/room/{alias}"), Some(json!({})), 400, "M_MISSING_PARAM"),
        ("PUT", format!("{V3}/directory/room/{alias}"), Some(json!({ "room_id": "room" })), 400, "M_INVALID_PARAM"),
        ("GET", format!("{V3}/directory/list/room/room"), None, 400, "M_INVALID_PARAM"),
        ("PUT", format!("{V3}/directory/list/room/{room}"), Some(json!({ "visibility": "secret" })), 400, "M_INVALID_PARAM"),
        ("GET", format!("{V3}/rooms/room/aliases"), None, 400, "M_INVALID_PARAM"),
        ("GET", format!("{V3}/publicRooms?limit=ten"), None, 400, "M_INVALID_PARAM"),
        ("GET", format!("{V3}/publicRooms?since=later"), None, 400, "M_INVALID_PARAM"),
        ("POST", format!("{V3}/publicRooms"), Some(json!({ "limit": "ten" })), 400, "M_BAD_JSON"),
    ];
    check(&alice, rows).await;
    // Without `visibility` the room is published, as Synapse does.
    let list = format!("{V3}/directory/list/room/{room}");
    expect_ok(
        alice.json("PUT", &list, json!({})).await,
        "visibility left out",
    );
    let listed = expect_ok(alice.call("GET", &list, None).await, "visibility");
    assert_eq!(listed["visibility"], "public");
    #[rustfmt::skip]
    let unauthenticated: Vec<Row<Value>> = vec![
        ("GET", "/_matrix/client/v1/media/config".to_owned(), None, 401, "M_MISSING_TOKEN"),
        ("GET", "/_matrix/media/v3/config".to_owned(), None, 401, "M_MISSING_TOKEN"),
        ("GET", format!("{thumb}?width=32&height=32"), None, 401, "M_MISSING_TOKEN"),
        ("POST", format!("{V3}/publicRooms"), Some(json!({})), 401, "M_MISSING_TOKEN"),
    ];
    check(&anon, unauthenticated).await;
}

/// Every served file, at either API generation, carries the headers that
/// keep it from running as a page; the disposition is RFC 6266 as
/// Synapse writes it (a token name unquoted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_files_carry_their_security_headers() {
    // Authenticated media off: the file is served at the older paths too.
    let server = common::start_with(|c| c.enable_authenticated_media = false).await;
    let (alice, _) = Raw::new(&server).register("alice").await;
    let uploaded = alice
        .http
        .post(format!(
            "{}/_matrix/media/v3/upload?filename=a.txt",
            alice.base
        ))
        .bearer_auth(alice.token.as_deref().expect("token"))
        .header("content-type", "text/plain")
        .body("words")
        .send()
        .await
        .expect("upload");
    let uri: Value = uploaded.json().await.expect("upload answer");
    let uri = uri["content_uri"].as_str().expect("content_uri");
    let id = uri.rsplit('/').next().expect("media id");
    for path in [
        format!("/_matrix/client/v1/media/download/localhost/{id}"),
        format!("/_matrix/client/v1/media/download/localhost/{id}/b.txt"),
        format!("/_matrix/media/v3/download/localhost/{id}"),
        format!("/_matrix/media/v3/download/localhost/{id}/b.txt"),
    ] {
        let res = alice
            .http
            .get(format!("{}{path}", alice.base))
            .bearer_auth(alice.token.as_deref().expect("token"))
            .send()
            .await
            .expect("download");
        assert_eq!(res.status().as_u16(), 200, "{path}");
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let name = if path.ends_with("b.txt") {
            "b.txt"
        } else {
            "a.txt"
        };
        assert_eq!(header("content-type"), "text/plain", "{path}");
        assert_eq!(
            header("content-disposition"),
            format!("inline; filename={name}"),
            "{path}"
        );
        assert!(
            header("content-security-policy").starts_with("sandbox;"),
            "{path}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(
            header("cross-origin-resource-policy"),
            "cross-origin",
            "{path}"
        );
        assert_eq!(
            header("cache-control"),
            "private, max-age=86400, immutable",
            "{path}"
        );
    }
}
