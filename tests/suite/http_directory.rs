//! Room aliases and the public room directory over raw HTTP.

use crate::common;

use common::enc;

use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_resolve_conflict_list_and_delete_with_permission() {
    let server = common::start().await;
    let raw = common::Raw::new(&server);
    let (alice, _) = raw.register("alice").await;
    let (bob, _) = raw.register("bob").await;
    let (status, body) = alice
        .json(
            "POST",
            "/_matrix/client/v3/createRoom",
            json!({"room_alias_name": "tea", "preset": "public_chat"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let room = body["room_id"].as_str().expect("room_id").to_owned();

    let (status, body) = raw
        .call(
            "GET",
            &format!(
                "/_matrix/client/v3/directory/room/{}",
                enc("#tea:localhost")
            ),
            None,
        )
        .await;
    assert_eq!(
        (status, body["room_id"].as_str()),
        (200, Some(room.as_str())),
        "{body}"
    );
    assert_eq!(body["servers"], json!(["localhost"]));

    let path = format!(
        "/_matrix/client/v3/directory/room/{}",
        enc("#coffee:localhost")
    );
    // Only a member may give a room an alias.
    let (status, body) = bob.json("PUT", &path, json!({"room_id": room})).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (403, Some("M_FORBIDDEN")),
        "{body}"
    );
    let (status, body) = bob
        .json(
            "POST",
            &format!("/_matrix/client/v3/join/{}", enc(&room)),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = bob.json("PUT", &path, json!({"room_id": room})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = alice.json("PUT", &path, json!({"room_id": room})).await;
    assert_eq!(status, 409, "an existing alias is refused: {body}");

    let (status, body) = alice
        .call(
            "GET",
            &format!("/_matrix/client/v3/rooms/{}/aliases", enc(&room)),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut aliases: Vec<String> =
        serde_json::from_value(body["aliases"].clone()).expect("aliases");
    aliases.sort();
    assert_eq!(aliases, vec!["#coffee:localhost", "#tea:localhost"]);

    let (carol, _) = raw.register("carol").await;
    let (status, body) = carol.call("DELETE", &path, None).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (403, Some("M_FORBIDDEN")),
        "{body}"
    );
    let (status, _) = bob.call("DELETE", &path, None).await;
    assert_eq!(status, 200, "the alias's creator may delete it");
    let (status, body) = raw.call("GET", &path, None).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (404, Some("M_NOT_FOUND"))
    );

    let (status, body) = alice
        .json(
            "PUT",
            &format!(
                "/_matrix/client/v3/directory/room/{}",
                enc("#x:elsewhere.org")
            ),
            json!({"room_id": room}),
        )
        .await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (400, Some("M_INVALID_PARAM")),
        "{body}"
    );
    let (status, _) = alice
        .json(
            "PUT",
            &format!("/_matrix/client/v3/directory/room/{}", enc("#y:localhost")),
            json!({"room_id": "!nope:localhost"}),
        )
        .await;
    assert_eq!(status, 404, "an alias for an unknown room is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_rooms_list_search_and_unpublish() {
    let server = common::start().await;
    let raw = common::Raw::new(&server);
    let (alice, _) = raw.register("alice").await;
    let (_, body) = alice
        .json(
            "POST",
            "/_matrix/client/v3/createRoom",
            json!({"visibility": "public", "name": "Gardening club", "topic": "tomatoes"}),
        )
        .await;
    let public = body["room_id"].as_str().expect("room_id").to_owned();
    let (_, body) = alice
        .json(
            "POST",
            "/_matrix/client/v3/createRoom",
            json!({"name": "Secret"}),
        )
        .await;
    let private = body["room_id"].as_str().expect("room_id").to_owned();

    let (status, body) = raw
        .call("GET", "/_matrix/client/v3/publicRooms", None)
        .await;
    assert_eq!(status, 200, "{body}");
    let chunk = body["chunk"].as_array().expect("chunk");
    assert_eq!(chunk.len(), 1, "only the public room is listed: {body}");
    assert_eq!(chunk[0]["room_id"], json!(public));
    assert_eq!(chunk[0]["name"], json!("Gardening club"));
    assert_eq!(chunk[0]["num_joined_members"], json!(1));
    // Left out when public, the spec's default.
    assert_eq!(chunk[0]["join_rule"].as_str().unwrap_or("public"), "public");

    let (_, body) = alice
        .json(
            "POST",
            "/_matrix/client/v3/publicRooms",
            json!({"filter": {"generic_search_term": "TOMATO"}}),
        )
        .await;
    assert_eq!(
        body["chunk"].as_array().map(Vec::len),
        Some(1),
        "search matches the topic: {body}"
    );
    let (_, body) = alice
        .json(
            "POST",
            "/_matrix/client/v3/publicRooms",
            json!({"filter": {"generic_search_term": "chess"}}),
        )
        .await;
    assert_eq!(body["chunk"].as_array().map(Vec::len), Some(0), "{body}");

    let vis = |room: &str| format!("/_matrix/client/v3/directory/list/room/{}", enc(room));
    let (_, body) = raw.call("GET", &vis(&private), None).await;
    assert_eq!(body["visibility"], json!("private"));
    let (bob, _) = raw.register("bob").await;
    let (status, _) = bob
        .json("PUT", &vis(&public), json!({"visibility": "private"}))
        .await;
    assert_eq!(status, 403, "a non-member may not unpublish");
    let (status, _) = alice
        .json("PUT", &vis(&public), json!({"visibility": "private"}))
        .await;
    assert_eq!(status, 200);
    let (_, body) = raw
        .call("GET", "/_matrix/client/v3/publicRooms", None)
        .await;
    assert_eq!(body["chunk"].as_array().map(Vec::len), Some(0), "{body}");
}
