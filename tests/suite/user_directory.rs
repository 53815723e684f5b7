//! `/user_directory/search`: people sharing a room or in public rooms, by
//! name and id, with `limited`.

use serde_json::{json, Value};

use crate::common::rooms::{invite, join};
use crate::common::{create_room, expect_ok, set_displayname, start, Raw, V3};

async fn search(raw: &Raw, term: &str, limit: u64) -> Value {
    let body = json!({ "search_term": term, "limit": limit });
    expect_ok(
        raw.json("POST", &format!("{V3}/user_directory/search"), body)
            .await,
        "search",
    )
}

fn found(body: &Value) -> Vec<String> {
    let results = body["results"].as_array().expect("results");
    results
        .iter()
        .map(|r| r["user_id"].as_str().expect("user_id").to_owned())
        .collect()
}

#[tokio::test]
async fn the_directory_shows_room_sharers_and_public_room_members_only() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("dir_alice").await;
    let (bob, bob_id) = raw.register("dir_bob").await;
    let (carol, carol_id) = raw.register("dir_carol").await;
    let (_, dave_id) = raw.register("dir_dave").await;
    let (eve, _) = raw.register("dir_eve").await;
    let private = create_room(&alice, json!({ "preset": "private_chat" })).await;
    invite(&alice, &private, &bob_id).await;
    expect_ok(join(&bob, &private).await, "bob joins");
    let public = create_room(&carol, json!({ "preset": "public_chat" })).await;
    let _ = public;
    create_room(&eve, json!({ "preset": "private_chat" })).await;

    assert_eq!(
        found(&search(&alice, "dir_bob", 10).await),
        vec![bob_id.clone()]
    );
    assert_eq!(
        found(&search(&alice, "dir_carol", 10).await),
        vec![carol_id.clone()]
    );
    assert!(
        found(&search(&alice, "dir_dave", 10).await).is_empty(),
        "{dave_id} is in no room"
    );
    assert!(
        found(&search(&alice, "dir_eve", 10).await).is_empty(),
        "eve's room is private"
    );

    // By display name, any word's start, any case.
    set_displayname(&bob, &bob_id, "Robert Paulson").await;
    assert_eq!(
        found(&search(&alice, "PAUL", 10).await),
        vec![bob_id.clone()]
    );
    let _ = carol;

    // Several matches: those sharing a room come first; a small limit says so.
    let all = search(&alice, "dir", 10).await;
    let users = found(&all);
    let at = |user: &str| users.iter().position(|u| u == user);
    assert!(
        at(&bob_id) < at(&carol_id) && at(&carol_id).is_some(),
        "{users:?}"
    );
    assert!(!users.contains(&dave_id), "{users:?}");
    assert_eq!(all["limited"], false);
    let limited = search(&alice, "dir", 1).await;
    assert_eq!(
        (found(&limited).len(), &limited["limited"]),
        (1, &json!(true))
    );
}
