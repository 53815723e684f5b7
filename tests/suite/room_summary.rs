//! Room previews (`/v1/room_summary`, MSC3266): for rooms one may join or
//! read, by id or alias, signed in or not; not for private rooms.

use serde_json::json;

use crate::common::{create_room, enc, expect_error, expect_ok, start, Raw};

fn path(room: &str) -> String {
    format!("/_matrix/client/v1/room_summary/{}", enc(room))
}

#[tokio::test]
async fn public_rooms_are_previewed_and_private_ones_are_not() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("sum_alice").await;
    let (bob, _) = raw.register("sum_bob").await;
    let public = create_room(
        &alice,
        json!({ "preset": "public_chat", "name": "Lobby", "topic": "Say hi",
                "room_alias_name": "lobby" }),
    )
    .await;
    let summary = expect_ok(bob.call("GET", &path(&public), None).await, "summary");
    assert_eq!(summary["room_id"], public.as_str());
    assert_eq!(
        (&summary["name"], &summary["topic"]),
        (&json!("Lobby"), &json!("Say hi"))
    );
    assert_eq!(summary["canonical_alias"], "#lobby:localhost");
    assert!(
        summary["num_joined_members"].as_u64() >= Some(1),
        "{summary}"
    );
    assert_eq!(summary["world_readable"], false);
    assert_eq!(summary["room_version"], "12");
    assert!(
        summary.get("membership").is_none(),
        "bob is not in it: {summary}"
    );
    // By alias, and without signing in.
    let by_alias = expect_ok(
        raw.call("GET", &path("#lobby:localhost"), None).await,
        "alias",
    );
    assert_eq!(by_alias["room_id"], public.as_str());
    // A member sees their membership.
    let own = expect_ok(alice.call("GET", &path(&public), None).await, "own");
    assert_eq!(own["membership"], "join");
    // An invite-only room is not previewed to outsiders.
    let private = create_room(
        &alice,
        json!({ "preset": "private_chat", "name": "Secret" }),
    )
    .await;
    let res = bob.call("GET", &path(&private), None).await;
    expect_error(&res, 404, "M_NOT_FOUND", "private room preview");
    let own = expect_ok(
        alice.call("GET", &path(&private), None).await,
        "member's preview",
    );
    assert_eq!(own["name"], "Secret");
    assert_eq!(own["join_rule"], "invite");
}
