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

/// A space on one server with children on another: the walk asks the
/// other server (federation `/hierarchy`) for the rooms it does not hold,
/// shows what the user may see, goes into a subspace held there, and
/// leaves out an invite-only room. Checked against Matrix OS and Synapse.
mod across_servers {
    use super::*;
    use crate::common::start_federated;
    use crate::common::synapse::Synapse;

    fn space(name: &str) -> Value {
        json!({ "preset": "public_chat", "name": name, "creation_content": { "type": "m.space" } })
    }

    fn room(name: &str, preset: &str) -> Value {
        json!({ "preset": preset, "name": name })
    }

    /// Rooms on the remote server: one public, one invite-only, a public
    /// subspace with a public room in it. Returns (public, secret, subspace).
    async fn remote_rooms(owner: &Raw, server: &str) -> (String, String, String) {
        let public = create_room(owner, room("Over there", "public_chat")).await;
        let secret = create_room(owner, room("Secret there", "private_chat")).await;
        let sub = create_room(owner, space("Their space")).await;
        let deep = create_room(owner, room("Deep there", "public_chat")).await;
        add_child(owner, &sub, &deep, json!({ "via": [server] })).await;
        (public, secret, sub)
    }

    /// Alice's space on her server holding a room of hers and the remote ones.
    async fn home_space(
        alice: &Raw,
        local: &str,
        remote: &str,
        rooms: &(String, String, String),
    ) -> String {
        let home = create_room(alice, space("Home")).await;
        let here = create_room(alice, room("Here", "public_chat")).await;
        add_child(alice, &home, &here, json!({ "via": [local], "order": "a" })).await;
        let (public, secret, sub) = rooms;
        add_child(
            alice,
            &home,
            public,
            json!({ "via": [remote], "order": "b" }),
        )
        .await;
        add_child(
            alice,
            &home,
            secret,
            json!({ "via": [remote], "order": "c" }),
        )
        .await;
        add_child(alice, &home, sub, json!({ "via": [remote], "order": "d" })).await;
        home
    }

    #[tokio::test]
    async fn a_space_reaches_into_rooms_another_matrix_os_server_holds() {
        let (ours, theirs) = (start_federated().await, start_federated().await);
        let (ours_name, theirs_name) = (
            ours.services.server_name.to_string(),
            theirs.services.server_name.to_string(),
        );
        let (alice, _) = Raw::new(&ours).register("alice").await;
        let (bob, _) = Raw::new(&theirs).register("bob").await;
        let rooms = remote_rooms(&bob, &theirs_name).await;
        let home = home_space(&alice, &ours_name, &theirs_name, &rooms).await;

        assert_eq!(
            names_of(&alice, &home, "").await,
            ["Home", "Here", "Over there", "Their space", "Deep there"]
        );
        assert_eq!(
            names_of(&alice, &home, "max_depth=1").await,
            ["Home", "Here", "Over there", "Their space"]
        );
        // Pages of two walk on past what was given.
        let first = expect_ok(hierarchy(&alice, &home, "limit=2").await, "page 1");
        assert_eq!(names(&first), ["Home", "Here"]);
        let next = first["next_batch"].as_str().expect("next_batch");
        let second = names_of(&alice, &home, &format!("limit=2&from={}", enc(next))).await;
        assert_eq!(second, ["Over there", "Their space"]);
        // The remote subspace comes with its children's events.
        let answer = expect_ok(hierarchy(&alice, &home, "").await, "hierarchy");
        let sub = answer["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "Their space")
            .expect("the subspace");
        assert_eq!(sub["room_type"], "m.space");
        assert_eq!(
            sub["children_state"].as_array().map(Vec::len),
            Some(1),
            "{sub}"
        );

        // What Bob's server tells another server directly.
        use ruma::api::federation::space::get_hierarchy::v1 as get_hierarchy;
        let client = &ours.services.federation.client;
        let theirs_server = ruma::ServerName::parse(&theirs_name).unwrap();
        let ask =
            |room: &str| get_hierarchy::Request::new(ruma::OwnedRoomId::try_from(room).unwrap());
        let (_, secret, sub) = &rooms;
        assert!(
            client.send(&theirs_server, ask(secret)).await.is_err(),
            "an invite-only room is not described to a server not in it"
        );
        let described = client.send(&theirs_server, ask(sub)).await.unwrap();
        assert_eq!(described.room.summary.name.as_deref(), Some("Their space"));
        assert_eq!(described.children.len(), 1);
        assert_eq!(described.children[0].name.as_deref(), Some("Deep there"));
    }

    #[tokio::test]
    async fn spaces_reach_across_matrix_os_and_synapse_both_ways() {
        let synapse = Synapse::start().await;
        let ours = start_federated().await;
        let ours_name = ours.services.server_name.to_string();
        let (alice, _) = Raw::new(&ours).register("alice").await;
        let (sam, _) = synapse.register("sam").await;

        // A Matrix OS space holding Synapse's rooms.
        let rooms = remote_rooms(&sam, &synapse.server_name).await;
        let home = home_space(&alice, &ours_name, &synapse.server_name, &rooms).await;
        assert_eq!(
            names_of(&alice, &home, "").await,
            ["Home", "Here", "Over there", "Their space", "Deep there"],
            "{}",
            synapse.log_tail()
        );

        // A Synapse space holding Matrix OS's rooms: Synapse asks us.
        let ours_rooms = remote_rooms(&alice, &ours_name).await;
        let sams = home_space(&sam, &synapse.server_name, &ours_name, &ours_rooms).await;
        assert_eq!(
            names_of(&sam, &sams, "").await,
            ["Home", "Here", "Over there", "Their space", "Deep there"],
            "{}",
            synapse.log_tail()
        );
    }
}
