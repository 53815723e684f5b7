//! Guest accounts (`allow_guest_access`): registration, what a guest's
//! token opens, joining only rooms that let guests in, leaving when guest
//! access is turned off; driven raw and by matrix-sdk.

use matrix_sdk::ruma::api::client::account::register::{self, RegistrationKind};
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::OwnedRoomId;
use matrix_sdk::Client;
use serde_json::{json, Value};

use crate::common::rooms::{join, send_text};
use crate::common::{create_room, enc, expect_error, expect_ok, start_with, sync, Raw, V3};

async fn guest_server() -> crate::common::TestServer {
    start_with(|c| {
        c.allow_guest_access = true;
        c.ai.enabled = true;
    })
    .await
}

/// A guest registered raw: its client and user id.
async fn register_guest(anon: &Raw) -> (Raw, String) {
    let body = json!({ "initial_device_display_name": "browser" });
    let ok = expect_ok(
        anon.json("POST", &format!("{V3}/register?kind=guest"), body)
            .await,
        "guest registration",
    );
    let user = ok["user_id"].as_str().expect("user_id").to_owned();
    assert!(ok["device_id"].is_string(), "{ok}");
    let token = ok["access_token"].as_str().expect("access_token");
    (anon.with_token(token), user)
}

fn member_content(sync: &Value, room: &str, user: &str) -> Option<Value> {
    let events = sync["rooms"]["join"][room]["timeline"]["events"].as_array()?;
    events
        .iter()
        .rev()
        .find(|e| e["type"] == "m.room.member" && e["state_key"] == user)
        .map(|e| e["content"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_read_and_talk_only_where_guests_are_let_in() {
    let server = guest_server().await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;
    let (guest, guest_id) = register_guest(&anon).await;
    let localpart = guest_id.trim_start_matches('@').split(':').next().unwrap();
    assert!(localpart.chars().all(|c| c.is_ascii_digit()), "{guest_id}");

    let whoami = expect_ok(
        guest
            .call("GET", &format!("{V3}/account/whoami"), None)
            .await,
        "whoami",
    );
    assert_eq!(whoami["is_guest"], true, "{whoami}");
    let own = expect_ok(
        alice
            .call("GET", &format!("{V3}/account/whoami"), None)
            .await,
        "whoami",
    );
    assert_ne!(own["is_guest"], true, "{own}");
    // No AI user is made for a guest.
    let ai = format!("@{localpart}_ai:localhost");
    let (status, _) = anon
        .call("GET", &format!("{V3}/profile/{}", enc(&ai)), None)
        .await;
    assert_eq!(status, 404, "a guest has no AI user");

    let open = create_room(
        &alice,
        json!({ "preset": "public_chat", "name": "Lobby", "initial_state": [{
            "type": "m.room.guest_access", "state_key": "", "content": { "guest_access": "can_join" }
        }] }),
    )
    .await;
    let closed = create_room(&alice, json!({ "preset": "public_chat" })).await;

    // Endpoints not open to guests.
    for (method, path, body) in [
        ("POST", format!("{V3}/createRoom"), Some(json!({}))),
        (
            "POST",
            format!("{V3}/rooms/{}/invite", enc(&open)),
            Some(json!({ "user_id": "@alice:localhost" })),
        ),
        ("POST", "/_matrix/media/v3/upload".to_owned(), None),
        (
            "POST",
            format!("{V3}/user_directory/search"),
            Some(json!({ "search_term": "a" })),
        ),
    ] {
        let res = guest
            .call(method, &path, body.map(|b| b.to_string()).as_deref())
            .await;
        expect_error(
            &res,
            403,
            "M_GUEST_ACCESS_FORBIDDEN",
            &format!("guest {method} {path}"),
        );
    }
    let res = join(&guest, &closed).await;
    expect_error(
        &res,
        403,
        "M_GUEST_ACCESS_FORBIDDEN",
        "a guest joins a room without guest access",
    );

    let (status, body) = join(&guest, &open).await;
    assert_eq!(status, 200, "{body}");
    send_text(&guest, &open, "g1", "hello from a guest").await;
    let seen = sync(&alice, None, 0).await;
    let content = member_content(&seen, &open, &guest_id).expect("the guest's member event");
    assert_eq!(content["kind"], "guest", "{content}");
    let page = expect_ok(
        guest
            .call(
                "GET",
                &format!("{V3}/rooms/{}/messages?dir=b&limit=5", enc(&open)),
                None,
            )
            .await,
        "a guest reads the room",
    );
    assert!(
        page["chunk"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["content"]["body"] == "hello from a guest"),
        "{page}"
    );

    // Guest access turned off: the guest leaves, and cannot come back.
    let path = format!("{V3}/rooms/{}/state/m.room.guest_access/", enc(&open));
    expect_ok(
        alice
            .json("PUT", &path, json!({ "guest_access": "forbidden" }))
            .await,
        "guest access off",
    );
    let membership = expect_ok(
        alice
            .call(
                "GET",
                &format!(
                    "{V3}/rooms/{}/state/m.room.member/{}",
                    enc(&open),
                    enc(&guest_id)
                ),
                None,
            )
            .await,
        "the guest's membership",
    );
    assert_eq!(membership["membership"], "leave", "{membership}");
    let res = join(&guest, &open).await;
    expect_error(
        &res,
        403,
        "M_GUEST_ACCESS_FORBIDDEN",
        "rejoining after guest access ended",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_registration_is_refused_unless_allowed() {
    let server = start_with(|c| c.ai.enabled = false).await;
    let res = Raw::new(&server)
        .json("POST", &format!("{V3}/register?kind=guest"), json!({}))
        .await;
    expect_error(
        &res,
        403,
        "M_GUEST_ACCESS_FORBIDDEN",
        "guest registration while off",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matrix_sdk_guest_joins_talks_and_syncs() {
    let server = guest_server().await;
    let (alice, _) = Raw::new(&server).register("alice").await;
    let room = create_room(
        &alice,
        json!({ "preset": "public_chat", "initial_state": [{
            "type": "m.room.guest_access", "state_key": "", "content": { "guest_access": "can_join" }
        }] }),
    )
    .await;
    let client = Client::builder()
        .homeserver_url(&server.base_url)
        .build()
        .await
        .expect("client");
    let mut request = register::v3::Request::new();
    request.kind = RegistrationKind::Guest;
    client
        .matrix_auth()
        .register(request)
        .await
        .expect("matrix-sdk registers a guest");
    let room_id = OwnedRoomId::try_from(room.as_str()).unwrap();
    let joined = client
        .join_room_by_id(&room_id)
        .await
        .expect("the guest joins");
    joined
        .send(RoomMessageEventContent::text_plain(
            "a guest via matrix-sdk",
        ))
        .await
        .expect("the guest sends");
    client
        .sync_once(Default::default())
        .await
        .expect("the guest syncs");
    let seen = sync(&alice, None, 0).await;
    let texts: Vec<&str> = seen["rooms"]["join"][&room]["timeline"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["content"]["body"].as_str())
        .collect();
    assert!(texts.contains(&"a guest via matrix-sdk"), "{texts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_upgrades_to_a_full_account_with_its_token() {
    let server = guest_server().await;
    let anon = Raw::new(&server);
    let (guest, guest_id) = register_guest(&anon).await;
    let localpart = guest_id
        .trim_start_matches('@')
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    let guest_token = guest.token.clone().expect("token");
    let register = format!("{V3}/register");
    let body = |token: Option<&str>| {
        json!({
            "username": localpart, "password": "upgraded-pw",
            "auth": { "type": "m.login.dummy" }, "guest_access_token": token,
        })
    };
    // The id is taken: only the guest's own token may claim it.
    let res = anon.json("POST", &register, body(None)).await;
    expect_error(
        &res,
        400,
        "M_USER_IN_USE",
        "taking a guest's id without its token",
    );
    let (other, _) = anon.register("someone").await;
    let res = anon
        .json("POST", &register, body(other.token.as_deref()))
        .await;
    expect_error(&res, 403, "M_FORBIDDEN", "another user's token");

    let upgraded = expect_ok(
        anon.json("POST", &register, body(Some(&guest_token))).await,
        "upgrade",
    );
    assert_eq!(upgraded["user_id"], guest_id.as_str());
    let token = upgraded["access_token"].as_str().expect("access_token");
    let full = anon.with_token(token);
    let whoami = expect_ok(
        full.call("GET", &format!("{V3}/account/whoami"), None)
            .await,
        "whoami",
    );
    assert_ne!(whoami["is_guest"], true, "{whoami}");
    let res = guest
        .call("GET", &format!("{V3}/account/whoami"), None)
        .await;
    expect_error(
        &res,
        401,
        "M_UNKNOWN_TOKEN",
        "the guest token after the upgrade",
    );
    create_room(&full, json!({})).await;
    let login = json!({ "type": "m.login.password", "user": localpart, "password": "upgraded-pw" });
    expect_ok(
        anon.json("POST", &format!("{V3}/login"), login).await,
        "login with the new password",
    );
    // A person now: their AI user exists.
    let ai = format!("@{localpart}_ai:localhost");
    expect_ok(
        anon.call("GET", &format!("{V3}/profile/{}", enc(&ai)), None)
            .await,
        "the AI user's profile",
    );
}
