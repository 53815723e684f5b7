//! The room endpoints on ruma's request types (membership, createRoom,
//! events and state, history, context, receipts, typing): how each answers
//! bad input, as Synapse answers it, one table row per case.

use crate::common;

use common::errors::{check, Row};
use common::rooms::send_text;
use common::{create_room, enc, expect_ok, Raw, V3};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_endpoints_refuse_bad_input_as_synapse_does() {
    let server = common::start_with(|c| c.ai.enabled = false).await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let room = create_room(&alice, json!({})).await;
    let event = send_text(&alice, &room, "t0", "hello").await;
    let r = enc(&room);
    let e = enc(&event);
    let a = enc(&alice_id);
    let nowhere = enc("!nowhere:localhost");
    let rows: Vec<Row> = vec![
        // Membership: the `user_id` of invite, kick, ban and unban.
        (
            "POST",
            format!("{V3}/rooms/{r}/invite"),
            Some("{}"),
            400,
            "M_MISSING_PARAM",
        ),
        (
            "POST",
            format!("{V3}/rooms/{r}/invite"),
            None,
            400,
            "M_MISSING_PARAM",
        ),
        (
            "POST",
            format!("{V3}/rooms/{r}/invite"),
            Some(r#"{"user_id": "bob"}"#),
            400,
            "M_INVALID_PARAM",
        ),
        (
            "POST",
            format!("{V3}/rooms/{r}/invite"),
            Some(r#"{"medium": "email", "address": "b@example.org"}"#),
            400,
            "M_MISSING_PARAM",
        ),
        (
            "POST",
            format!("{V3}/rooms/{r}/invite"),
            Some(
                r#"{"medium": "email", "address": "b@example.org", "id_server": "example.org", "id_access_token": "t"}"#,
            ),
            403,
            "M_FORBIDDEN",
        ),
        (
            "POST",
            format!("{V3}/rooms/{r}/invite"),
            Some("[]"),
            400,
            "M_BAD_JSON",
        ),
        (
            "POST",
            format!("{V3}/rooms/{r}/kick"),
            Some("{}"),
            400,
            "M_MISSING_PARAM",
        ),
        (
            "POST",
            format!("{V3}/rooms/{r}/ban"),
            Some(r#"{"user_id": "not-a-user"}"#),
            400,
            "M_INVALID_PARAM",
        ),
        (
            "POST",
            format!("{V3}/rooms/{r}/unban"),
            Some(r#"{"user_id": 5}"#),
            400,
            "M_INVALID_PARAM",
        ),
        (
            "POST",
            format!("{V3}/rooms/{r}/kick"),
            Some(r#"{"user_id": "@bob:localhost", "reason": 5}"#),
            400,
            "M_BAD_JSON",
        ),
        (
            "POST",
            format!("{V3}/join/not-a-room"),
            Some("{}"),
            400,
            "M_INVALID_PARAM",
        ),
        (
            "POST",
            format!("{V3}/join/{}", enc("#nope:localhost")),
            Some("{}"),
            404,
            "M_NOT_FOUND",
        ),
        (
            "POST",
            format!("{V3}/knock/{}", enc("#nope:localhost")),
            Some("{}"),
            404,
            "M_NOT_FOUND",
        ),
        (
            "POST",
            format!("{V3}/rooms/not-a-room/join"),
            Some("{}"),
            400,
            "M_INVALID_PARAM",
        ),
        (
            "POST",
            format!("{V3}/rooms/{nowhere}/leave"),
            Some("{}"),
            403,
            "M_FORBIDDEN",
        ),
        (
            "POST",
            format!("{V3}/rooms/{r}/forget"),
            Some("{}"),
            400,
            "M_UNKNOWN",
        ),
        (
            "POST",
            format!("{V3}/rooms/{nowhere}/forget"),
            Some("{}"),
            404,
            "M_NOT_FOUND",
        ),
        // createRoom.
        (
            "POST",
            format!("{V3}/createRoom"),
            Some(r#"{"preset": "bogus"}"#),
            400,
            "M_INVALID_PARAM",
        ),
        (
            "POST",
            format!("{V3}/createRoom"),
            Some(r#"{"room_version": "999"}"#),
            400,
            "M_UNSUPPORTED_ROOM_VERSION",
        ),
        (
            "POST",
            format!("{V3}/createRoom"),
            Some(r#"{"creation_content": []}"#),
            400,
            "M_BAD_JSON",
        ),
        (
            "POST",
            format!("{V3}/createRoom"),
            Some(r#"{"power_level_content_override": "x"}"#),
            400,
            "M_BAD_JSON",
        ),
        (
            "POST",
            format!("{V3}/createRoom"),
            Some(r#"{"initial_state": {}}"#),
            400,
            "M_BAD_JSON",
        ),
        (
            "POST",
            format!("{V3}/createRoom"),
            Some(r#"{"initial_state": [{"content": {}}]}"#),
            400,
            "M_BAD_JSON",
        ),
        (
            "POST",
            format!("{V3}/createRoom"),
            Some(r#"{"initial_state": [{"type": "m.x", "content": "no"}]}"#),
            400,
            "M_BAD_JSON",
        ),
        (
            "POST",
            format!("{V3}/createRoom"),
            Some(r#"{"invite": ["@bob:localhost", 5]}"#),
            400,
            "M_BAD_JSON",
        ),
        (
            "POST",
            format!("{V3}/createRoom"),
            Some(r#"{"topic": ["x"]}"#),
            400,
            "M_BAD_JSON",
        ),
        (
            "POST",
            format!("{V3}/createRoom"),
            Some(r#"{"invite": ["bob"]}"#),
            400,
            "M_INVALID_PARAM",
        ),
        // Events and state.
        (
            "PUT",
            format!("{V3}/rooms/{r}/send/m.room.message/t1"),
            Some("[1]"),
            400,
            "M_BAD_JSON",
        ),
        (
            "PUT",
            format!("{V3}/rooms/{r}/state/m.room.name"),
            Some(r#""x""#),
            400,
            "M_BAD_JSON",
        ),
        (
            "PUT",
            format!("{V3}/rooms/{r}/state/m.room.name/"),
            Some("{oops"),
            400,
            "M_NOT_JSON",
        ),
        (
            "GET",
            format!("{V3}/rooms/{r}/state/m.room.create/?format=xml"),
            None,
            400,
            "M_INVALID_PARAM",
        ),
        (
            "GET",
            format!("{V3}/rooms/{r}/state/m.room.topic"),
            None,
            404,
            "M_NOT_FOUND",
        ),
        (
            "GET",
            format!("{V3}/rooms/not-a-room/state/m.room.create/"),
            None,
            400,
            "M_INVALID_PARAM",
        ),
        (
            "GET",
            format!("{V3}/rooms/{r}/event/not-an-event"),
            None,
            400,
            "M_INVALID_PARAM",
        ),
        (
            "PUT",
            format!("{V3}/rooms/{r}/redact/not-an-event/t1"),
            Some("{}"),
            400,
            "M_INVALID_PARAM",
        ),
        (
            "GET",
            format!("{V3}/rooms/{nowhere}/state"),
            None,
            403,
            "M_FORBIDDEN",
        ),
        // History and context.
        (
            "GET",
            format!("{V3}/rooms/{r}/messages"),
            None,
            400,
            "M_MISSING_PARAM",
        ),
        (
            "GET",
            format!("{V3}/rooms/{r}/messages?dir=b&limit=x"),
            None,
            400,
            "M_INVALID_PARAM",
        ),
        (
            "GET",
            format!("{V3}/rooms/{r}/messages?dir=b&to=x"),
            None,
            400,
            "M_INVALID_PARAM",
        ),
        (
            "GET",
            format!("{V3}/rooms/{r}/members?at=x"),
            None,
            400,
            "M_INVALID_PARAM",
        ),
        (
            "GET",
            format!("{V3}/rooms/{nowhere}/joined_members"),
            None,
            403,
            "M_FORBIDDEN",
        ),
        (
            "GET",
            format!("{V3}/rooms/{r}/context/not-an-event"),
            None,
            400,
            "M_INVALID_PARAM",
        ),
        (
            "GET",
            format!("{V3}/rooms/{r}/context/{}", enc("$nope")),
            None,
            404,
            "M_NOT_FOUND",
        ),
        (
            "GET",
            format!("/_matrix/client/v1/rooms/{r}/timestamp_to_event?dir=f"),
            None,
            400,
            "M_MISSING_PARAM",
        ),
        (
            "GET",
            format!("/_matrix/client/v1/rooms/{r}/timestamp_to_event?ts=x&dir=f"),
            None,
            400,
            "M_INVALID_PARAM",
        ),
        (
            "GET",
            format!("/_matrix/client/v1/rooms/{r}/timestamp_to_event?ts=1&dir=x"),
            None,
            400,
            "M_INVALID_PARAM",
        ),
        // Receipts, read markers and typing.
        (
            "POST",
            format!("{V3}/rooms/{r}/receipt/m.read/not-an-event"),
            Some("{}"),
            400,
            "M_INVALID_PARAM",
        ),
        (
            "POST",
            format!("{V3}/rooms/{r}/receipt/m.bogus/{e}"),
            Some("{}"),
            400,
            "M_INVALID_PARAM",
        ),
        (
            "POST",
            format!("{V3}/rooms/{r}/receipt/m.read/{}", enc("$nope")),
            Some("{}"),
            404,
            "M_NOT_FOUND",
        ),
        (
            "POST",
            format!("{V3}/rooms/{nowhere}/receipt/m.read/{e}"),
            Some("{}"),
            403,
            "M_FORBIDDEN",
        ),
        (
            "POST",
            format!("{V3}/rooms/{r}/read_markers"),
            Some(r#"{"m.read": "nope"}"#),
            400,
            "M_INVALID_PARAM",
        ),
        (
            "PUT",
            format!("{V3}/rooms/{r}/typing/{}", enc("@bob:localhost")),
            Some(r#"{"typing": true}"#),
            403,
            "M_FORBIDDEN",
        ),
        (
            "PUT",
            format!("{V3}/rooms/{r}/typing/{a}"),
            Some("{}"),
            400,
            "M_MISSING_PARAM",
        ),
        (
            "PUT",
            format!("{V3}/rooms/{r}/typing/{a}"),
            Some(r#"{"typing": "yes"}"#),
            400,
            "M_BAD_JSON",
        ),
        (
            "PUT",
            format!("{V3}/rooms/{r}/typing/not-a-user"),
            Some(r#"{"typing": true}"#),
            400,
            "M_INVALID_PARAM",
        ),
    ];
    check(&alice, rows).await;

    // Without a token, the token is what is missing, whatever the body.
    let rows: Vec<Row> = vec![
        (
            "POST",
            format!("{V3}/rooms/{r}/invite"),
            Some("{}"),
            401,
            "M_MISSING_TOKEN",
        ),
        (
            "PUT",
            format!("{V3}/rooms/{r}/typing/{a}"),
            Some(r#"{"typing": true}"#),
            401,
            "M_MISSING_TOKEN",
        ),
        (
            "POST",
            format!("{V3}/createRoom"),
            Some(r#"{"preset": "bogus"}"#),
            401,
            "M_MISSING_TOKEN",
        ),
    ];
    check(&anon, rows).await;
}

/// What ruma reads differently from Synapse and is answered as Synapse
/// answers it: `{"typing": true}` without a timeout is 30 seconds of
/// typing, and `?format=event` gives a state event whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_without_timeout_and_state_as_event() {
    let server = common::start_with(|c| c.ai.enabled = false).await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let room = create_room(&alice, json!({ "name": "Named" })).await;
    let r = enc(&room);
    let typing = format!("{V3}/rooms/{r}/typing/{}", enc(&alice_id));
    expect_ok(
        alice.json("PUT", &typing, json!({ "typing": true })).await,
        "typing without a timeout",
    );
    expect_ok(
        alice.json("PUT", &typing, json!({ "typing": false })).await,
        "typing stopped",
    );

    let name = format!("{V3}/rooms/{r}/state/m.room.name");
    for path in [name.clone(), format!("{name}/")] {
        let content = expect_ok(alice.call("GET", &path, None).await, "name");
        assert_eq!(content, json!({ "name": "Named" }), "{path}");
        let event = expect_ok(
            alice
                .call("GET", &format!("{path}?format=event"), None)
                .await,
            "name as an event",
        );
        assert_eq!(event["type"], "m.room.name", "{event}");
        assert_eq!(event["state_key"], "", "{event}");
        assert_eq!(event["content"]["name"], "Named", "{event}");
        assert_eq!(event["room_id"], Value::from(room.as_str()), "{event}");
    }
}
