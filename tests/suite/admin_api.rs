//! Synapse's admin API, on its paths and in its shapes: the server's
//! version; users listed, queried, deactivated, their password reset, made
//! admin or not; rooms listed, shown with their members, blocked and
//! deleted (at once or in the background, with the deletion's status).

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::rooms::{join, send_text};
use crate::common::{
    create_room, enc, expect_error, expect_ok, register_admin, start_with, Raw, TestServer, V3,
};

const SECRET: &str = "admin-api-secret";
const V1: &str = "/_synapse/admin/v1";
const V2: &str = "/_synapse/admin/v2";

async fn server() -> TestServer {
    start_with(|c| c.registration_shared_secret = Some(SECRET.into())).await
}

/// Without AI users, whose direct-message rooms would be listed too.
async fn server_without_ai() -> TestServer {
    start_with(|c| {
        c.registration_shared_secret = Some(SECRET.into());
        c.ai.enabled = false;
    })
    .await
}

/// `user` logs in with `password`: the answer.
async fn login(anon: &Raw, user: &str, password: &str) -> (u16, Value) {
    let body = json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": user },
        "password": password,
    });
    anon.json("POST", &format!("{V3}/login"), body).await
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {list}"))
        .iter()
        .map(|u| u["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn admin_endpoints_need_a_server_admin() {
    let server = server().await;
    let anon = Raw::new(&server);
    let (admin, _) = register_admin(&anon, SECRET, "gate_admin").await;
    let (alice, alice_id) = anon.register("gate_alice").await;
    let room = create_room(&alice, json!({})).await;
    let user = enc(&alice_id);
    let room = enc(&room);
    let endpoints = [
        ("GET", format!("{V2}/users"), None),
        ("GET", format!("{V2}/users/{user}"), None),
        ("POST", format!("{V1}/deactivate/{user}"), Some("{}")),
        (
            "POST",
            format!("{V1}/reset_password/{user}"),
            Some(r#"{"new_password":"x"}"#),
        ),
        ("GET", format!("{V1}/users/{user}/admin"), None),
        (
            "PUT",
            format!("{V1}/users/{user}/admin"),
            Some(r#"{"admin":true}"#),
        ),
        ("GET", format!("{V1}/rooms"), None),
        ("GET", format!("{V1}/rooms/{room}"), None),
        ("GET", format!("{V1}/rooms/{room}/members"), None),
        ("GET", format!("{V1}/rooms/{room}/block"), None),
        (
            "PUT",
            format!("{V1}/rooms/{room}/block"),
            Some(r#"{"block":true}"#),
        ),
        ("DELETE", format!("{V1}/rooms/{room}"), Some("{}")),
        ("POST", format!("{V1}/rooms/{room}/delete"), Some("{}")),
        ("DELETE", format!("{V2}/rooms/{room}"), Some("{}")),
        ("GET", format!("{V2}/rooms/{room}/delete_status"), None),
        ("GET", format!("{V2}/rooms/delete_status/abc"), None),
    ];
    for (method, path, body) in &endpoints {
        let res = anon.call(method, path, *body).await;
        expect_error(
            &res,
            401,
            "M_MISSING_TOKEN",
            &format!("{method} {path} without a token"),
        );
        let res = alice.call(method, path, *body).await;
        expect_error(
            &res,
            403,
            "M_FORBIDDEN",
            &format!("{method} {path} by a non-admin"),
        );
    }
    // Nothing was done by the refused calls.
    let me = expect_ok(
        admin.call("GET", &format!("{V2}/users/{user}"), None).await,
        "user",
    );
    assert_eq!(
        (me["admin"].clone(), me["deactivated"].clone()),
        (json!(false), json!(false))
    );
    let block = expect_ok(
        admin
            .call("GET", &format!("{V1}/rooms/{room}/block"), None)
            .await,
        "block",
    );
    assert_eq!(block["block"], false);

    // The version is open to anyone, as in Synapse.
    let version = expect_ok(
        anon.call("GET", &format!("{V1}/server_version"), None)
            .await,
        "version",
    );
    assert_eq!(version["server_version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn users_are_listed_queried_paged_and_made_admin() {
    let server = server().await;
    let anon = Raw::new(&server);
    let (admin, admin_id) = register_admin(&anon, SECRET, "users_admin").await;
    let (alice, alice_id) = anon.register("users_alice").await;
    anon.register("users_bob").await;
    let (carol, carol_id) = anon.register("users_carol").await;
    crate::common::set_displayname(&alice, &alice_id, "Wonderland").await;
    let list = |query: &str| {
        let admin = &admin;
        let path = format!("{V2}/users{query}");
        async move { expect_ok(admin.call("GET", &path, None).await, &path) }
    };

    // Every account, AI users (bots) included, sorted by id.
    let all = list("").await;
    let humans = ["users_admin", "users_alice", "users_bob", "users_carol"];
    let everyone = names(&all, "users");
    for name in humans {
        assert!(
            everyone.iter().any(|n| n.starts_with(&format!("@{name}:"))),
            "{name} in {everyone:?}"
        );
    }
    assert_eq!(all["total"].as_u64(), Some(everyone.len() as u64));
    assert!(all.get("next_token").is_none(), "one page: {all}");
    let mut sorted = everyone.clone();
    sorted.sort();
    assert_eq!(everyone, sorted);
    let row = all["users"]
        .as_array()
        .and_then(|users| users.iter().find(|u| u["name"] == alice_id.as_str()))
        .expect("alice listed")
        .clone();
    for field in [
        "is_guest",
        "admin",
        "deactivated",
        "shadow_banned",
        "locked",
        "erased",
    ] {
        assert_eq!(row[field], false, "{field} in {row}");
    }
    assert_eq!(row["displayname"], "Wonderland");
    assert!(row["user_type"].is_null());
    assert!(
        row["creation_ts"].as_u64().unwrap_or(0) > 1_000_000_000_000,
        "in ms: {row}"
    );
    let bots: Vec<_> = all["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter(|u| u["user_type"] == "bot")
        .collect();
    assert!(bots
        .iter()
        .all(|u| u["name"].as_str().is_some_and(|n| n.contains("_ai:"))));

    // Pages: next_token while more remain.
    let first = list("?limit=2").await;
    assert_eq!(names(&first, "users"), everyone[..2]);
    assert_eq!(first["next_token"], "2");
    let second = list("?from=2&limit=2").await;
    assert_eq!(names(&second, "users"), everyone[2..4]);
    let last_from = everyone.len() - 1;
    let last = list(&format!("?from={last_from}&limit=2")).await;
    assert_eq!(names(&last, "users"), everyone[last_from..]);
    assert!(last.get("next_token").is_none());
    let backwards = list("?dir=b&limit=1").await;
    assert_eq!(names(&backwards, "users"), everyone[everyone.len() - 1..]);

    // Filters: name (localpart or display name), user_id, admins.
    assert_eq!(
        names(&list("?name=wonder").await, "users"),
        std::slice::from_ref(&alice_id)
    );
    let by_id = names(&list("?user_id=USERS_CAROL").await, "users");
    assert!(by_id.contains(&carol_id) && by_id.iter().all(|n| n.contains("users_carol")));
    assert_eq!(
        names(&list("?admins=true").await, "users"),
        std::slice::from_ref(&admin_id)
    );
    for (query, descending) in [
        ("?order_by=displayname", false),
        ("?order_by=creation_ts&dir=b", true),
    ] {
        let page = list(query).await;
        let field = if descending {
            "creation_ts"
        } else {
            "displayname"
        };
        let keys: Vec<Value> = page["users"]
            .as_array()
            .expect("users")
            .iter()
            .map(|u| u[field].clone())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_by(|a, b| match (a, b) {
            (Value::String(a), Value::String(b)) => a.cmp(b),
            (Value::Number(a), Value::Number(b)) => a.as_u64().cmp(&b.as_u64()),
            (Value::Null, Value::Null) => std::cmp::Ordering::Equal,
            (Value::Null, _) => std::cmp::Ordering::Greater,
            _ => std::cmp::Ordering::Less,
        });
        if descending {
            sorted.reverse();
        }
        assert_eq!(keys, sorted, "{query}");
    }

    for bad in [
        "?limit=-1",
        "?from=x",
        "?guests=maybe",
        "?order_by=size",
        "?dir=up",
    ] {
        let res = admin.call("GET", &format!("{V2}/users{bad}"), None).await;
        expect_error(&res, 400, "M_INVALID_PARAM", bad);
    }

    // One user.
    let user = |id: &str| format!("{V2}/users/{}", enc(id));
    let alice_details = expect_ok(admin.call("GET", &user(&alice_id), None).await, "alice");
    assert_eq!(alice_details["name"], alice_id.as_str());
    assert_eq!(alice_details["displayname"], "Wonderland");
    assert_eq!(alice_details["threepids"], json!([]));
    assert_eq!(alice_details["external_ids"], json!([]));
    assert_eq!(alice_details["admin"], false);
    let seconds = alice_details["creation_ts"].as_u64().unwrap_or(0);
    assert!(
        seconds > 1_000_000_000 && seconds < 100_000_000_000,
        "in s: {alice_details}"
    );
    let res = admin.call("GET", &user("@nobody:localhost"), None).await;
    expect_error(&res, 404, "M_NOT_FOUND", "unknown user");
    let res = admin
        .call("GET", &user("@someone:elsewhere.example"), None)
        .await;
    assert_eq!(res.0, 400, "another server's user: {}", res.1);
    let res = admin.call("GET", &user("not-a-user-id"), None).await;
    assert_eq!(res.0, 400, "not a user id: {}", res.1);

    // The admin flag.
    let flag = |id: &str| format!("{V1}/users/{}/admin", enc(id));
    let got = expect_ok(admin.call("GET", &flag(&carol_id), None).await, "flag");
    assert_eq!(got, json!({ "admin": false }));
    let res = carol.call("GET", &format!("{V2}/users"), None).await;
    expect_error(&res, 403, "M_FORBIDDEN", "carol before");
    expect_ok(
        admin
            .json("PUT", &flag(&carol_id), json!({ "admin": true }))
            .await,
        "make carol admin",
    );
    assert_eq!(
        expect_ok(admin.call("GET", &flag(&carol_id), None).await, "flag")["admin"],
        true
    );
    expect_ok(
        carol.call("GET", &format!("{V2}/users"), None).await,
        "carol, admin now",
    );
    // Carol demotes the first admin; nobody demotes themselves.
    expect_ok(
        carol
            .json("PUT", &flag(&admin_id), json!({ "admin": false }))
            .await,
        "demote the first admin",
    );
    let res = admin.call("GET", &format!("{V2}/users"), None).await;
    expect_error(&res, 403, "M_FORBIDDEN", "a demoted admin");
    let res = carol
        .json("PUT", &flag(&carol_id), json!({ "admin": false }))
        .await;
    assert_eq!(res.0, 400, "demoting oneself: {}", res.1);
    let res = carol.json("PUT", &flag(&alice_id), json!({})).await;
    expect_error(&res, 400, "M_MISSING_PARAM", "no admin field");
    let res = carol
        .json(
            "PUT",
            &flag("@someone:elsewhere.example"),
            json!({ "admin": true }),
        )
        .await;
    assert_eq!(res.0, 400, "another server's user: {}", res.1);
}

/// An admin, and a public room alice made and bob joined, their names
/// starting with `prefix`.
struct Scene {
    admin: Raw,
    admin_id: String,
    alice: Raw,
    alice_id: String,
    bob: Raw,
    bob_id: String,
    room: String,
}

async fn scene(anon: &Raw, prefix: &str) -> Scene {
    let (admin, admin_id) = register_admin(anon, SECRET, &format!("{prefix}_admin")).await;
    let (alice, alice_id) = anon.register(&format!("{prefix}_alice")).await;
    let (bob, bob_id) = anon.register(&format!("{prefix}_bob")).await;
    let room = create_room(&alice, json!({ "preset": "public_chat" })).await;
    expect_ok(join(&bob, &room).await, "join");
    Scene {
        admin,
        admin_id,
        alice,
        alice_id,
        bob,
        bob_id,
        room,
    }
}

#[tokio::test]
async fn an_admin_deactivates_a_user_who_leaves_rooms_and_cannot_log_in() {
    let server = server().await;
    let anon = Raw::new(&server);
    let Scene {
        admin,
        alice_id,
        bob,
        bob_id,
        room,
        ..
    } = scene(&anon, "deact").await;
    send_text(&bob, &room, "t1", "hello").await;

    let deactivate = |id: &str| format!("{V1}/deactivate/{}", enc(id));
    let res = admin
        .json("POST", &deactivate(&bob_id), json!({ "erase": "yes" }))
        .await;
    expect_error(&res, 400, "M_BAD_JSON", "erase not a boolean");
    let res = admin
        .json("POST", &deactivate("@nobody:localhost"), json!({}))
        .await;
    expect_error(&res, 404, "M_NOT_FOUND", "unknown user");
    let res = admin
        .json("POST", &deactivate("@x:elsewhere.example"), json!({}))
        .await;
    assert_eq!(res.0, 400, "another server's user: {}", res.1);

    let done = expect_ok(
        admin
            .json("POST", &deactivate(&bob_id), json!({ "erase": true }))
            .await,
        "deactivate",
    );
    assert_eq!(done, json!({ "id_server_unbind_result": "success" }));
    // Logged out, unable to log in, out of the room, shown deactivated.
    let res = bob.call("GET", &format!("{V3}/account/whoami"), None).await;
    expect_error(&res, 401, "M_UNKNOWN_TOKEN", "the old token");
    let res = login(&anon, "deact_bob", "secret-pw").await;
    assert_eq!(res.0, 403, "login after deactivation: {}", res.1);
    let members = expect_ok(
        admin
            .call("GET", &format!("{V1}/rooms/{}/members", enc(&room)), None)
            .await,
        "members",
    );
    assert_eq!(members, json!({ "members": [alice_id], "total": 1 }));
    let details = expect_ok(
        admin
            .call("GET", &format!("{V2}/users/{}", enc(&bob_id)), None)
            .await,
        "bob",
    );
    assert_eq!(details["deactivated"], true);
    assert_eq!(details["erased"], true);
    assert!(
        details["displayname"].is_null(),
        "erased profile: {details}"
    );
    // Listed only when deactivated users are asked for.
    let listed = |q: &str| {
        let path = format!("{V2}/users?user_id=deact_bob{q}");
        let admin = &admin;
        async move {
            names(
                &expect_ok(admin.call("GET", &path, None).await, "list"),
                "users",
            )
        }
    };
    assert!(!listed("").await.contains(&bob_id));
    assert!(listed("&deactivated=true").await.contains(&bob_id));
}

#[tokio::test]
async fn an_admin_resets_a_password_and_logs_the_devices_out() {
    let server = server().await;
    let anon = Raw::new(&server);
    let (admin, _) = register_admin(&anon, SECRET, "reset_admin").await;
    let (alice, alice_id) = anon.register("reset_alice").await;
    let reset = format!("{V1}/reset_password/{}", enc(&alice_id));
    let res = admin.json("POST", &reset, json!({})).await;
    expect_error(&res, 400, "M_MISSING_PARAM", "no new password");
    let unknown = format!("{V1}/reset_password/{}", enc("@nobody:localhost"));
    let res = admin
        .json("POST", &unknown, json!({ "new_password": "x" }))
        .await;
    expect_error(&res, 404, "M_NOT_FOUND", "unknown user");

    // Without logging out: the old session stays.
    expect_ok(
        admin
            .json(
                "POST",
                &reset,
                json!({ "new_password": "first-new", "logout_devices": false }),
            )
            .await,
        "reset, devices kept",
    );
    expect_ok(
        alice
            .call("GET", &format!("{V3}/account/whoami"), None)
            .await,
        "kept",
    );
    // By default every device is logged out.
    let answer = expect_ok(
        admin
            .json("POST", &reset, json!({ "new_password": "second-new" }))
            .await,
        "reset",
    );
    assert_eq!(answer, json!({}));
    let res = alice
        .call("GET", &format!("{V3}/account/whoami"), None)
        .await;
    expect_error(&res, 401, "M_UNKNOWN_TOKEN", "logged out");
    for old in ["secret-pw", "first-new"] {
        let res = login(&anon, "reset_alice", old).await;
        expect_error(&res, 403, "M_FORBIDDEN", old);
    }
    expect_ok(
        login(&anon, "reset_alice", "second-new").await,
        "the new password",
    );
}

#[tokio::test]
async fn rooms_are_listed_with_their_details_and_members() {
    let server = server_without_ai().await;
    let anon = Raw::new(&server);
    let (admin, _) = register_admin(&anon, SECRET, "rooms_admin").await;
    let (alice, alice_id) = anon.register("rooms_alice").await;
    let (bob, bob_id) = anon.register("rooms_bob").await;
    let big = create_room(
        &alice,
        json!({ "preset": "public_chat", "visibility": "public", "name": "Big Room",
                "topic": "all of us", "room_alias_name": "rooms_big" }),
    )
    .await;
    expect_ok(join(&bob, &big).await, "join");
    let small = create_room(&bob, json!({ "name": "Alpha", "initial_state": [
        { "type": "m.room.encryption", "state_key": "", "content": { "algorithm": "m.megolm.v1.aes-sha2" } }
    ] }))
    .await;
    let unnamed = create_room(&admin, json!({})).await;

    let list = |query: &str| {
        let admin = &admin;
        let path = format!("{V1}/rooms{query}");
        async move { expect_ok(admin.call("GET", &path, None).await, &path) }
    };
    let ids = |page: &Value| -> Vec<String> {
        page["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .map(|r| r["room_id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let all = list("").await;
    assert_eq!(all["total_rooms"], 3, "{all}");
    assert_eq!(all["offset"], 0);
    // By name, rooms without one last.
    assert_eq!(ids(&all), [small.clone(), big.clone(), unnamed.clone()]);
    let row = all["rooms"][1].clone();
    let server_name = alice_id.split(':').nth(1).expect("server name");
    assert_eq!(row["name"], "Big Room");
    assert_eq!(row["canonical_alias"], format!("#rooms_big:{server_name}"));
    assert_eq!(row["joined_members"], 2);
    assert_eq!(row["joined_local_members"], 2);
    assert_eq!(row["creator"], alice_id.as_str());
    assert_eq!(row["public"], true);
    assert_eq!(row["join_rules"], "public");
    assert_eq!(row["federatable"], true);
    assert!(row["encryption"].is_null());
    assert!(row["state_events"].as_u64().unwrap_or(0) >= 6, "{row}");
    assert!(row["version"].is_string() && row.get("room_type").is_some());
    assert_eq!(all["rooms"][0]["encryption"], "m.megolm.v1.aes-sha2");

    // Pages, other orders, search.
    let first = list("?limit=1").await;
    assert_eq!(
        (ids(&first), first["next_batch"].clone()),
        (vec![small.clone()], json!(1))
    );
    assert!(first.get("prev_batch").is_none());
    let second = list("?from=1&limit=1").await;
    assert_eq!(ids(&second), std::slice::from_ref(&big));
    assert_eq!(
        (second["next_batch"].clone(), second["prev_batch"].clone()),
        (json!(2), json!(0))
    );
    let last = list("?from=2&limit=1").await;
    assert!(last.get("next_batch").is_none());
    assert_eq!(
        ids(&list("?order_by=joined_members&limit=1").await),
        std::slice::from_ref(&big)
    );
    let fewest = list("?order_by=joined_members&dir=b").await;
    assert_eq!(ids(&fewest).last(), Some(&big));
    assert_eq!(
        ids(&list("?search_term=BIG").await),
        std::slice::from_ref(&big)
    );
    assert_eq!(
        ids(&list("?search_term=rooms_big").await),
        std::slice::from_ref(&big)
    );
    assert_eq!(
        ids(&list(&format!("?search_term={}", enc(&small))).await),
        std::slice::from_ref(&small)
    );
    assert_eq!(list("?search_term=nothing-like-it").await["total_rooms"], 0);
    for bad in [
        "?search_term=",
        "?from=-3",
        "?limit=many",
        "?order_by=colour",
        "?dir=sideways",
    ] {
        let res = admin.call("GET", &format!("{V1}/rooms{bad}"), None).await;
        expect_error(&res, 400, "M_INVALID_PARAM", bad);
    }

    // Details and members.
    let details = expect_ok(
        admin
            .call("GET", &format!("{V1}/rooms/{}", enc(&big)), None)
            .await,
        "details",
    );
    assert_eq!(details["name"], "Big Room");
    assert_eq!(details["topic"], "all of us");
    assert!(details["avatar"].is_null());
    assert_eq!(details["joined_local_devices"], 2);
    assert_eq!(details["forgotten"], false);
    assert_eq!(details["joined_members"], 2);
    let members = expect_ok(
        admin
            .call("GET", &format!("{V1}/rooms/{}/members", enc(&big)), None)
            .await,
        "members",
    );
    assert_eq!(members["total"], 2);
    let mut got: Vec<_> = members["members"].as_array().expect("members").to_vec();
    got.sort_by_key(|m| m.as_str().unwrap_or_default().to_owned());
    let mut want = vec![json!(alice_id), json!(bob_id)];
    want.sort_by_key(|m| m.as_str().unwrap_or_default().to_owned());
    assert_eq!(got, want);
    let unknown = enc("!nosuch:localhost");
    for path in [
        format!("{V1}/rooms/{unknown}"),
        format!("{V1}/rooms/{unknown}/members"),
    ] {
        let res = admin.call("GET", &path, None).await;
        expect_error(&res, 404, "M_NOT_FOUND", &path);
    }
}

#[tokio::test]
async fn deleting_a_room_removes_its_members_and_aliases_and_blocks_it() {
    let server = server().await;
    let anon = Raw::new(&server);
    let (admin, admin_id) = register_admin(&anon, SECRET, "del_admin").await;
    let (alice, alice_id) = anon.register("del_alice").await;
    let (bob, bob_id) = anon.register("del_bob").await;
    let (carol, _) = anon.register("del_carol").await;
    let room = create_room(
        &alice,
        json!({ "preset": "public_chat", "visibility": "public", "room_alias_name": "del_room" }),
    )
    .await;
    expect_ok(join(&bob, &room).await, "join");
    send_text(&bob, &room, "t1", "bad content").await;
    let server_name = alice_id.split(':').nth(1).expect("server name");
    let alias = format!("#del_room:{server_name}");
    let directory = format!("{V3}/directory/room/{}", enc(&alias));
    expect_ok(
        alice.call("GET", &directory, None).await,
        "the alias before",
    );

    let res = admin
        .json(
            "DELETE",
            &format!("{V1}/rooms/{}", enc("!nosuch:localhost")),
            json!({}),
        )
        .await;
    expect_error(&res, 404, "M_NOT_FOUND", "an unknown room");
    let res = admin
        .json(
            "DELETE",
            &format!("{V1}/rooms/{}", enc(&room)),
            json!({ "block": "yes" }),
        )
        .await;
    expect_error(&res, 400, "M_BAD_JSON", "block not a boolean");

    let done = expect_ok(
        admin
            .json(
                "DELETE",
                &format!("{V1}/rooms/{}", enc(&room)),
                json!({ "block": true, "purge": false, "new_room_user_id": admin_id,
                        "message": "moved" }),
            )
            .await,
        "delete",
    );
    let mut kicked: Vec<_> = done["kicked_users"].as_array().expect("kicked").to_vec();
    kicked.sort_by_key(|u| u.as_str().unwrap_or_default().to_owned());
    assert_eq!(kicked, [json!(alice_id), json!(bob_id)]);
    assert_eq!(done["failed_to_kick_users"], json!([]));
    assert_eq!(done["local_aliases"], json!([alias]));
    let new_room = done["new_room_id"].as_str().expect("new room").to_owned();

    // Everyone left; the members were moved to the new room, where the
    // alias now points; the room is off the directory and blocked.
    let members = expect_ok(
        admin
            .call("GET", &format!("{V1}/rooms/{}/members", enc(&room)), None)
            .await,
        "members",
    );
    assert_eq!(members, json!({ "members": [], "total": 0 }));
    let moved = expect_ok(
        admin
            .call(
                "GET",
                &format!("{V1}/rooms/{}/members", enc(&new_room)),
                None,
            )
            .await,
        "new room members",
    );
    for user in [&admin_id, &alice_id, &bob_id] {
        assert!(
            moved["members"]
                .as_array()
                .expect("members")
                .contains(&json!(user)),
            "{user} in {moved}"
        );
    }
    let target = expect_ok(alice.call("GET", &directory, None).await, "the alias after");
    assert_eq!(target["room_id"], new_room.as_str());
    let details = expect_ok(
        admin
            .call("GET", &format!("{V1}/rooms/{}", enc(&room)), None)
            .await,
        "details",
    );
    assert_eq!(details["public"], false);
    assert_eq!(details["joined_members"], 0);
    let block = expect_ok(
        admin
            .call("GET", &format!("{V1}/rooms/{}/block", enc(&room)), None)
            .await,
        "block",
    );
    assert_eq!(block, json!({ "block": true, "user_id": admin_id }));
    for (who, client) in [("bob", &bob), ("carol", &carol)] {
        let res = join(client, &room).await;
        assert_eq!(
            (res.0, res.1["error"].as_str()),
            (403, Some("This room has been blocked on this server")),
            "{who} joining the blocked room: {}",
            res.1
        );
    }
    // The block can be lifted.
    let path = format!("{V1}/rooms/{}/block", enc(&room));
    let lifted = expect_ok(
        admin.json("PUT", &path, json!({ "block": false })).await,
        "unblock",
    );
    assert_eq!(lifted, json!({ "block": false }));
    assert_eq!(
        expect_ok(admin.call("GET", &path, None).await, "block")["block"],
        false
    );

    // An unknown room can be blocked ahead.
    let ahead = "!ahead:elsewhere.example";
    let none = expect_ok(
        admin
            .json(
                "DELETE",
                &format!("{V1}/rooms/{}", enc(ahead)),
                json!({ "block": true }),
            )
            .await,
        "block an unknown room",
    );
    assert_eq!(
        none,
        json!({ "kicked_users": [], "failed_to_kick_users": [], "local_aliases": [], "new_room_id": null })
    );
    let block = expect_ok(
        admin
            .call("GET", &format!("{V1}/rooms/{}/block", enc(ahead)), None)
            .await,
        "block",
    );
    assert_eq!(block["block"], true);
}

#[tokio::test]
async fn a_background_deletion_reports_its_status() {
    let server = server().await;
    let anon = Raw::new(&server);
    let Scene { admin, room, .. } = scene(&anon, "bg").await;

    let status_of_room = format!("{V2}/rooms/{}/delete_status", enc(&room));
    let res = admin.call("GET", &status_of_room, None).await;
    expect_error(&res, 404, "M_NOT_FOUND", "no deletion yet");
    let res = admin
        .call("GET", &format!("{V2}/rooms/delete_status/nosuch"), None)
        .await;
    expect_error(&res, 404, "M_NOT_FOUND", "unknown delete id");
    let res = admin
        .json(
            "DELETE",
            &format!("{V2}/rooms/{}", enc("!nosuch:localhost")),
            json!({}),
        )
        .await;
    expect_error(&res, 404, "M_NOT_FOUND", "an unknown room");

    let started = expect_ok(
        admin
            .json("DELETE", &format!("{V2}/rooms/{}", enc(&room)), json!({}))
            .await,
        "delete",
    );
    let delete_id = started["delete_id"].as_str().expect("delete_id").to_owned();
    let by_id = format!("{V2}/rooms/delete_status/{}", enc(&delete_id));
    let status = deletion_outcome(&admin, &delete_id).await;
    assert_eq!(status["status"], "complete", "{status}");
    assert_eq!(kicked(&status), Some(2));
    assert!(status["shutdown_room"]["new_room_id"].is_null());
    let of_room = expect_ok(
        admin.call("GET", &status_of_room, None).await,
        "status of the room",
    );
    assert_eq!(of_room["results"][0]["delete_id"], delete_id.as_str());
    assert_eq!(of_room["results"][0]["status"], "complete");
    let block = block_of_purged(&admin, &room).await;
    assert_eq!(block, json!({ "block": false }), "not asked to block");

    // The status is the server's record: it outlives a restart.
    let server = server.restart().await;
    let after = expect_ok(
        admin.call("GET", &by_id, None).await,
        "status after a restart",
    );
    assert_eq!(after, status, "the same status after a restart");
    let of_room = expect_ok(
        admin.call("GET", &status_of_room, None).await,
        "status of the room after a restart",
    );
    assert_eq!(of_room["results"][0], status);
    drop(server);
}

/// A deletion record as the server leaves it when it stops mid-deletion.
fn interrupted_deletion(
    server: &TestServer,
    delete_id: &str,
    room: &str,
    status: &str,
    request: Option<matrixos_storage::records::DeletionRequest>,
    shutdown_room: matrixos_storage::records::ShutdownRecord,
) {
    use matrixos_storage::records::RoomDeletionRecord;
    use matrixos_storage::tables::{ROOM_DELETIONS, ROOM_DELETIONS_PART};
    let record = RoomDeletionRecord {
        delete_id: delete_id.to_owned(),
        room_id: room.to_owned(),
        status: status.to_owned(),
        error: None,
        shutdown_room,
        started_ts: 1,
        request,
    };
    let mut batch = matrixos_storage::Batch::new();
    let key = [ROOM_DELETIONS_PART.to_owned(), delete_id.to_owned()];
    ROOM_DELETIONS.put(&mut batch, &key, &record);
    server
        .services
        .store
        .db
        .write(batch)
        .expect("write the record");
}

/// How many users a finished deletion made leave.
fn kicked(status: &Value) -> Option<usize> {
    status["shutdown_room"]["kicked_users"]
        .as_array()
        .map(Vec::len)
}

/// Asserts that the admin API knows a purged room no more, as Synapse
/// after a purge (no details, no members, not listed, no deleting it
/// again), and answers its block status.
async fn block_of_purged(admin: &Raw, room: &str) -> Value {
    for what in ["", "/members"] {
        let path = format!("{V1}/rooms/{}{what}", enc(room));
        let res = admin.call("GET", &path, None).await;
        expect_error(&res, 404, "M_NOT_FOUND", &format!("GET {path}"));
    }
    let listed = expect_ok(
        admin.call("GET", &format!("{V1}/rooms"), None).await,
        "list",
    );
    let rooms = listed["rooms"].as_array().expect("rooms");
    assert!(!rooms.iter().any(|r| r["room_id"] == room), "{listed}");
    let path = format!("{V1}/rooms/{}", enc(room));
    let again = admin.json("DELETE", &path, json!({})).await;
    expect_error(&again, 404, "M_NOT_FOUND", "deleting it again");
    let path = format!("{V1}/rooms/{}/block", enc(room));
    expect_ok(admin.call("GET", &path, None).await, "block")
}

/// The rooms a user is joined to, sorted.
async fn joined_rooms(user: &Raw) -> Vec<String> {
    let path = format!("{V3}/joined_rooms");
    let answer = expect_ok(user.call("GET", &path, None).await, "joined rooms");
    let mut rooms: Vec<String> =
        serde_json::from_value(answer["joined_rooms"].clone()).expect("ids");
    rooms.sort();
    rooms
}

/// Polls a deletion's status (`shutting_down`, then `purging`) until it
/// is over.
async fn deletion_outcome(admin: &Raw, delete_id: &str) -> Value {
    let by_id = format!("{V2}/rooms/delete_status/{}", enc(delete_id));
    for _ in 0..100 {
        let status = expect_ok(admin.call("GET", &by_id, None).await, "status");
        if status["status"] == "complete" || status["status"] == "failed" {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the deletion {delete_id} never ended");
}

#[tokio::test]
async fn a_deletion_a_restart_interrupted_is_taken_up_again() {
    let server = server().await;
    let anon = Raw::new(&server);
    let Scene {
        admin,
        admin_id,
        alice,
        alice_id,
        bob_id,
        room,
        ..
    } = scene(&anon, "re").await;
    send_text(&alice, &room, "t1", "soon gone").await;
    let other = create_room(&alice, json!({ "preset": "public_chat" })).await;

    // One stopped while shutting its room down, after it had opened the
    // room its members move to, with its request kept; one from before
    // requests were kept.
    let moved_to = create_room(&admin, json!({ "preset": "public_chat" })).await;
    let rooms_before = joined_rooms(&admin).await;
    let request = matrixos_storage::records::DeletionRequest {
        admin: admin_id.clone(),
        block: true,
        purge: true,
        new_room_user_id: Some(admin_id),
        room_name: "unused".to_owned(),
        message: "unused".to_owned(),
    };
    let done = matrixos_storage::records::ShutdownRecord {
        new_room_id: Some(moved_to.clone()),
        ..Default::default()
    };
    interrupted_deletion(
        &server,
        "resumed1",
        &room,
        "shutting_down",
        Some(request),
        done,
    );
    interrupted_deletion(&server, "old1", &other, "purging", None, Default::default());
    let server = server.restart().await;

    let resumed = deletion_outcome(&admin, "resumed1").await;
    assert_eq!(resumed["status"], "complete", "{resumed}");
    assert!(resumed.get("request").is_none(), "the request stays inside");
    assert_eq!(kicked(&resumed), Some(2), "{resumed}");
    assert_eq!(resumed["shutdown_room"]["new_room_id"], moved_to.as_str());
    let block = block_of_purged(&admin, &room).await;
    assert_eq!(block["block"], true, "the kept request asked to block");
    // The members went to the room the first run opened; no second one.
    let path = format!("{V1}/rooms/{}/members", enc(&moved_to));
    let moved = expect_ok(admin.call("GET", &path, None).await, "members moved");
    for user in [&alice_id, &bob_id] {
        assert!(
            moved["members"]
                .as_array()
                .expect("members")
                .contains(&json!(user)),
            "{moved}"
        );
    }
    assert_eq!(
        joined_rooms(&admin).await,
        rooms_before,
        "the admin opened no other room"
    );

    let old = deletion_outcome(&admin, "old1").await;
    assert_eq!(old["status"], "failed");
    assert_eq!(old["error"], "The server stopped during the deletion");
    drop(server);
}

#[tokio::test]
async fn a_room_blocked_here_takes_no_invite_from_another_server() {
    let ours = crate::common::start_federated().await;
    let theirs = crate::common::start_federated_with(|c| {
        c.registration_shared_secret = Some(SECRET.into());
    })
    .await;
    let (alice, _) = Raw::new(&ours).register("alice").await;
    let (bob, bob_id) = Raw::new(&theirs).register("bob").await;
    let (admin, _) = register_admin(&Raw::new(&theirs), SECRET, "fed_admin").await;
    let room = create_room(&alice, json!({ "preset": "private_chat" })).await;
    let block_path = format!("{V1}/rooms/{}/block", enc(&room));
    expect_ok(
        admin
            .json("PUT", &block_path, json!({ "block": true }))
            .await,
        "block a room of another server",
    );
    let invite_path = format!("{V3}/rooms/{}/invite", enc(&room));
    let invite_body = json!({ "user_id": bob_id });
    let refused = alice.json("POST", &invite_path, invite_body.clone()).await;
    assert_eq!(
        refused.0, 403,
        "the invite into the blocked room: {}",
        refused.1
    );
    let invited = |sync: &Value| sync["rooms"]["invite"][&room].is_object();
    let seen = expect_ok(bob.call("GET", &format!("{V3}/sync"), None).await, "sync");
    assert!(!invited(&seen), "bob was not invited: {seen}");

    // Lifted, the same invite comes through.
    expect_ok(
        admin
            .json("PUT", &block_path, json!({ "block": false }))
            .await,
        "unblock",
    );
    expect_ok(
        alice.json("POST", &invite_path, invite_body).await,
        "the invite once unblocked",
    );
    let seen = expect_ok(bob.call("GET", &format!("{V3}/sync"), None).await, "sync");
    assert!(invited(&seen), "bob is invited: {seen}");
}

#[tokio::test]
async fn a_purged_room_keeps_no_content_even_after_a_restart() {
    let server = server().await;
    let anon = Raw::new(&server);
    let (admin, _) = register_admin(&anon, SECRET, "purge_admin").await;
    let (alice, _) = anon.register("purge_alice").await;
    let room = create_room(
        &alice,
        json!({ "preset": "public_chat", "name": "Smuggling plans", "topic": "contraband" }),
    )
    .await;
    let said = send_text(&alice, &room, "p1", "the contraband arrives at noon").await;
    // Found twice: in the message and in the topic.
    assert_eq!(crate::search::found(&alice, "contraband").await.len(), 2);

    // Deleted with Synapse's defaults: purged, not blocked.
    expect_ok(
        admin
            .json("DELETE", &format!("{V1}/rooms/{}", enc(&room)), json!({}))
            .await,
        "delete and purge",
    );
    // Every member left; what the server keeps of the room, read after a
    // restart (from disk): the events as a redaction leaves them, and
    // nothing in the search index.
    let server = server.restart().await;
    let s = &server.services;
    let room_id = ruma::RoomId::parse(room.as_str()).expect("room id");
    let short_room = s.rooms.short_room(&room_id).unwrap().expect("room");
    let content = |id: &str| {
        let id = ruma::EventId::parse(id).expect("event id");
        let (_, pdu) = s.rooms.pdu(&id).unwrap().expect("event kept");
        pdu.to_client(None, Default::default())["content"].clone()
    };
    assert_eq!(content(&said), json!({}));
    let (_, record) = s.rooms.record_of(&room_id).unwrap();
    let state = s.rooms.state.load(record.state).unwrap();
    let mut pruned = 0;
    for short in state.values() {
        let pdu = s.rooms.pdu_by_short(*short).unwrap();
        if ["m.room.name", "m.room.topic"].contains(&pdu.kind.to_string().as_str()) {
            assert_eq!(content(pdu.event_id.as_str()), json!({}), "{}", pdu.kind);
            pruned += 1;
        }
    }
    assert_eq!(pruned, 2, "the name and the topic");
    let index = s.search.as_ref().expect("search on");
    index.caught_up(s.store.position()).await;
    let term = matrixos::search::query::Parsed::parse("contraband");
    let ask = matrixos::search::Ask {
        term: &term,
        keys: matrixos::search::Keys {
            body: true,
            name: true,
            topic: true,
        },
        rooms: &[short_room],
        ranking: matrixos::search::Ranking::Rank,
        before: None,
        skip: 0,
        take: 10,
    };
    assert_eq!(index.find(&ask).unwrap().1, 0, "nothing left to find");
}
