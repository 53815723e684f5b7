//! Room upgrades: the new room copies the old one's state, power levels,
//! bans and aliases and names its predecessor; the old one gets a
//! tombstone and is closed to ordinary members.

use serde_json::{json, Value};

use crate::common::rooms::{invite, join};
use crate::common::{create_room, enc, expect_error, expect_ok, start, Raw, V3};

async fn state(raw: &Raw, room: &str, kind: &str) -> Value {
    state_of(raw, room, kind, "").await
}

async fn state_of(raw: &Raw, room: &str, kind: &str, key: &str) -> Value {
    let path = format!("{V3}/rooms/{}/state/{kind}/{}", enc(room), enc(key));
    expect_ok(raw.call("GET", &path, None).await, kind)
}

#[tokio::test]
async fn an_upgraded_room_is_replaced_by_a_copy_that_names_it() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("up_alice").await;
    let (bob, bob_id) = raw.register("up_bob").await;
    let (_, carol_id) = raw.register("up_carol").await;
    let old = create_room(
        &alice,
        json!({ "preset": "private_chat", "name": "Old times", "topic": "history",
                "room_alias_name": "uproom", "room_version": "10" }),
    )
    .await;
    invite(&alice, &old, &bob_id).await;
    expect_ok(join(&bob, &old).await, "bob joins");
    let ban = format!("{V3}/rooms/{}/ban", enc(&old));
    expect_ok(
        alice
            .json("POST", &ban, json!({ "user_id": carol_id }))
            .await,
        "ban carol",
    );
    let upgrade = format!("{V3}/rooms/{}/upgrade", enc(&old));

    let res = bob
        .json("POST", &upgrade, json!({ "new_version": "12" }))
        .await;
    expect_error(
        &res,
        403,
        "M_FORBIDDEN",
        "an upgrade by someone without the power",
    );
    let res = alice
        .json("POST", &upgrade, json!({ "new_version": "99" }))
        .await;
    expect_error(
        &res,
        400,
        "M_UNSUPPORTED_ROOM_VERSION",
        "an unknown version",
    );

    let answer = expect_ok(
        alice
            .json("POST", &upgrade, json!({ "new_version": "12" }))
            .await,
        "upgrade",
    );
    let new = answer["replacement_room"]
        .as_str()
        .expect("replacement_room")
        .to_owned();
    assert_ne!(new, old);
    // The old room points at the new one and is closed to ordinary members.
    let tombstone = state(&alice, &old, "m.room.tombstone").await;
    assert_eq!(tombstone["replacement_room"], new.as_str());
    let levels = state(&alice, &old, "m.room.power_levels").await;
    assert_eq!(
        (&levels["events_default"], &levels["invite"]),
        (&json!(50), &json!(50))
    );
    // The new room names its predecessor and carries the old one's state.
    let create = state(&alice, &new, "m.room.create").await;
    assert_eq!(create["predecessor"]["room_id"], old.as_str());
    assert_eq!(create["room_version"], "12");
    assert_eq!(
        state(&alice, &new, "m.room.name").await["name"],
        "Old times"
    );
    assert_eq!(
        state(&alice, &new, "m.room.topic").await["topic"],
        "history"
    );
    assert_eq!(
        state(&alice, &new, "m.room.join_rules").await["join_rule"],
        "invite"
    );
    assert_eq!(
        state(&alice, &new, "m.room.canonical_alias").await["alias"],
        "#uproom:localhost"
    );
    let alias = format!("{V3}/directory/room/{}", enc("#uproom:localhost"));
    let target = expect_ok(alice.call("GET", &alias, None).await, "alias");
    assert_eq!(target["room_id"], new.as_str());
    // Bans carry over; members of an invite-only room are invited.
    let member = "m.room.member";
    assert_eq!(
        state_of(&alice, &new, member, &carol_id).await["membership"],
        "ban"
    );
    assert_eq!(
        state_of(&alice, &new, member, &bob_id).await["membership"],
        "invite"
    );
    expect_ok(join(&bob, &new).await, "bob follows");
}
