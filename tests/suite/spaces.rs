//! `/v1/rooms/{id}/hierarchy`: a space's tree depth first in the spec's
//! child order, rooms the caller may not preview left out, `max_depth`,
//! `suggested_only`, pages, and refusals.

use serde_json::{json, Value};

use crate::common::rooms::join;
use crate::common::{create_room, enc, expect_error, expect_ok, start, Raw, V3};

const V1: &str = "/_matrix/client/v1";

async fn add_child(raw: &Raw, space: &str, child: &str, content: Value) {
    let path = format!(
        "{V3}/rooms/{}/state/m.space.child/{}",
        enc(space),
        enc(child)
    );
    expect_ok(raw.json("PUT", &path, content).await, "m.space.child");
}

async fn hierarchy(raw: &Raw, space: &str, query: &str) -> (u16, Value) {
    raw.call(
        "GET",
        &format!("{V1}/rooms/{}/hierarchy?{query}", enc(space)),
        None,
    )
    .await
}

/// The names of the rooms of an answer, in order.
fn names(answer: &Value) -> Vec<String> {
    answer["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .map(|r| r["name"].as_str().unwrap_or("?").to_owned())
        .collect()
}

async fn names_of(raw: &Raw, space: &str, query: &str) -> Vec<String> {
    names(&expect_ok(hierarchy(raw, space, query).await, "hierarchy"))
}

#[tokio::test]
async fn a_space_tree_is_walked_as_the_spec_orders_it() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("spc_alice").await;
    let (bob, _) = raw.register("spc_bob").await;
    let (eve, _) = raw.register("spc_eve").await;
    let space = |name: &str, preset: &str| json!({ "preset": preset, "name": name, "creation_content": { "type": "m.space" } });
    let root = create_room(&alice, space("Root", "public_chat")).await;
    let public = create_room(
        &alice,
        json!({ "preset": "public_chat", "name": "Public", "topic": "for all" }),
    )
    .await;
    let private = create_room(
        &alice,
        json!({ "preset": "private_chat", "name": "Private" }),
    )
    .await;
    let members = create_room(
        &alice,
        json!({ "preset": "private_chat", "name": "Members",
            "initial_state": [{ "type": "m.room.join_rules", "state_key": "",
                "content": { "join_rule": "restricted",
                    "allow": [{ "type": "m.room_membership", "room_id": root }] } }] }),
    )
    .await;
    let sub = create_room(&alice, space("Sub", "public_chat")).await;
    let deep = create_room(&alice, json!({ "preset": "public_chat", "name": "Deep" })).await;
    let gone = create_room(&alice, json!({ "preset": "public_chat", "name": "Gone" })).await;
    let via = json!(["localhost"]);
    add_child(&alice, &root, &public, json!({ "via": via, "order": "b" })).await;
    add_child(&alice, &root, &private, json!({ "via": via, "order": "a" })).await;
    add_child(&alice, &root, &members, json!({ "via": via })).await;
    // Children without an order go by the time they were added: make
    // those two times differ.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    add_child(
        &alice,
        &root,
        &sub,
        json!({ "via": via, "suggested": true }),
    )
    .await;
    add_child(&alice, &sub, &deep, json!({ "via": via })).await;
    // A child without `via` is no child.
    add_child(&alice, &root, &gone, json!({})).await;
    expect_ok(join(&bob, &root).await, "bob joins the space");

    // Alice sees everything; ordered children first, then by time.
    assert_eq!(
        names_of(&alice, &root, "").await,
        ["Root", "Private", "Public", "Members", "Sub", "Deep"]
    );
    // Bob may not preview the private room; the restricted one he may
    // join through the space.
    assert_eq!(
        names_of(&bob, &root, "").await,
        ["Root", "Public", "Members", "Sub", "Deep"]
    );
    // Eve is in no room: the restricted one is not for her.
    assert_eq!(
        names_of(&eve, &root, "").await,
        ["Root", "Public", "Sub", "Deep"]
    );
    assert_eq!(
        names_of(&bob, &root, "max_depth=1").await,
        ["Root", "Public", "Members", "Sub"]
    );
    assert_eq!(names_of(&bob, &root, "max_depth=0").await, ["Root"]);
    assert_eq!(
        names_of(&bob, &root, "suggested_only=true").await,
        ["Root", "Sub"]
    );

    // A room's entry: its summary, and a space's children events.
    let answer = expect_ok(hierarchy(&bob, &root, "").await, "hierarchy");
    let first = &answer["rooms"][0];
    assert_eq!(first["room_id"], root.as_str(), "{first}");
    assert_eq!(first["room_type"], "m.space");
    // ruma leaves out `public`, the default; other rules are named.
    assert!(
        matches!(first["join_rule"].as_str(), None | Some("public")),
        "{first}"
    );
    assert_eq!(answer["rooms"][2]["join_rule"], "restricted");
    assert_eq!(answer["rooms"][2]["allowed_room_ids"], json!([root]));
    assert_eq!(first["num_joined_members"], 2);
    let children = first["children_state"].as_array().expect("children_state");
    assert_eq!(children.len(), 4, "{children:?}");
    assert!(children.iter().all(|c| c["type"] == "m.space.child"
        && c["origin_server_ts"].is_u64()
        && c["content"]["via"] == via));
    let public_entry = &answer["rooms"][1];
    assert_eq!(public_entry["topic"], "for all");
    assert_eq!(public_entry["children_state"], json!([]));

    // Pages of two, then the rest, with the same options only.
    let mut paged = Vec::new();
    let mut query = "limit=2".to_owned();
    loop {
        let answer = expect_ok(hierarchy(&bob, &root, &query).await, "page");
        let page = names(&answer);
        assert!(page.len() <= 2);
        paged.extend(page);
        match answer["next_batch"].as_str() {
            Some(next) => query = format!("limit=2&from={}", enc(next)),
            None => break,
        }
    }
    assert_eq!(paged, ["Root", "Public", "Members", "Sub", "Deep"]);
    let first_page = expect_ok(hierarchy(&bob, &root, "limit=2").await, "page");
    let token = first_page["next_batch"].as_str().expect("next_batch");
    expect_error(
        &hierarchy(
            &bob,
            &root,
            &format!("limit=2&max_depth=1&from={}", enc(token)),
        )
        .await,
        400,
        "M_INVALID_PARAM",
        "options changed between pages",
    );
    expect_error(
        &hierarchy(&bob, &root, "from=nonsense").await,
        400,
        "M_INVALID_PARAM",
        "a token never given",
    );
    expect_error(
        &hierarchy(&bob, &root, "limit=0").await,
        400,
        "M_INVALID_PARAM",
        "limit 0",
    );
    // A room one may not preview is refused as a root.
    expect_error(
        &hierarchy(&bob, &private, "").await,
        403,
        "M_FORBIDDEN",
        "private room",
    );
    expect_error(
        &hierarchy(&bob, "!unknown:localhost", "").await,
        403,
        "M_FORBIDDEN",
        "unknown room",
    );
}
