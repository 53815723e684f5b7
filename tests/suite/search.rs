//! `/search`: words of any script, stems, prefixes, phrases, exclusions
//! and `or`; only what the searcher may see; redactions leave the index;
//! best-first and newest-first pages; keys, room filters, context,
//! profiles, state and groups; bad requests; an index built again from
//! the rooms.

use serde_json::{json, Value};

use crate::common::rooms::{invite, join, leave, send_json, send_text};
use crate::common::{create_room, enc, expect_error, expect_ok, start, Raw, TestServer, V3};

fn criteria(term: &str) -> Value {
    json!({ "search_term": term })
}

async fn search_with(raw: &Raw, criteria: Value, next_batch: Option<&str>) -> (u16, Value) {
    let path = match next_batch {
        Some(token) => format!("{V3}/search?next_batch={}", enc(token)),
        None => format!("{V3}/search"),
    };
    raw.json(
        "POST",
        &path,
        json!({ "search_categories": { "room_events": criteria } }),
    )
    .await
}

/// The room events category of an answer that must succeed.
async fn search(raw: &Raw, criteria: Value) -> Value {
    let answer = expect_ok(search_with(raw, criteria, None).await, "search");
    answer["search_categories"]["room_events"].clone()
}

fn bodies(events: &Value) -> Vec<String> {
    events["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let content = &r["result"]["content"];
            let text = content["body"]
                .as_str()
                .or(content["name"].as_str())
                .or(content["topic"].as_str());
            text.expect("text").to_owned()
        })
        .collect()
}

/// The texts `/search` finds of `term` for `raw`.
pub(crate) async fn found(raw: &Raw, term: &str) -> Vec<String> {
    bodies(&search(raw, criteria(term)).await)
}

#[tokio::test]
async fn words_stems_prefixes_phrases_and_scripts_are_found() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("srch_alice").await;
    let room = create_room(
        &alice,
        json!({ "preset": "private_chat", "name": "Garden club", "topic": "Tomatoes and roses" }),
    )
    .await;
    for (n, text) in [
        "The quick brown fox jumps",
        "Lazy dogs sleep all afternoon",
        "Weekly meetings are at noon",
        "Un café crème, s'il vous plaît",
        "今天天气很好",
        "Привет, как дела?",
        "Lunch at the brown café",
    ]
    .iter()
    .enumerate()
    {
        send_text(&alice, &room, &format!("t{n}"), text).await;
    }

    assert_eq!(found(&alice, "fox").await, ["The quick brown fox jumps"]);
    assert_eq!(found(&alice, "FOX").await, ["The quick brown fox jumps"]);
    // A stem finds the other forms, a start finds the whole word.
    assert_eq!(
        found(&alice, "meeting").await,
        ["Weekly meetings are at noon"]
    );
    assert_eq!(
        found(&alice, "afterno").await,
        ["Lazy dogs sleep all afternoon"]
    );
    // Accents fold; other scripts are words too; Chinese by characters.
    let mut cafe = found(&alice, "cafe").await;
    cafe.sort();
    assert_eq!(
        cafe,
        ["Lunch at the brown café", "Un café crème, s'il vous plaît"]
    );
    assert_eq!(found(&alice, "дела").await, ["Привет, как дела?"]);
    assert_eq!(found(&alice, "天气").await, ["今天天气很好"]);
    assert!(
        found(&alice, "气天").await.is_empty(),
        "characters in order"
    );
    // Every word must match; a phrase in order; exclusions; or.
    assert_eq!(
        found(&alice, "brown lunch").await,
        ["Lunch at the brown café"]
    );
    assert_eq!(
        found(&alice, "\"brown fox\"").await,
        ["The quick brown fox jumps"]
    );
    assert!(found(&alice, "\"fox brown\"").await.is_empty());
    assert_eq!(
        found(&alice, "brown -fox").await,
        ["Lunch at the brown café"]
    );
    let mut either = found(&alice, "fox or dogs").await;
    either.sort();
    assert_eq!(
        either,
        ["Lazy dogs sleep all afternoon", "The quick brown fox jumps"]
    );
    assert!(found(&alice, "elephant").await.is_empty());
    assert!(found(&alice, "").await.is_empty());
    assert!(found(&alice, "!!! ???").await.is_empty());

    // Names and topics are searched too, and keys choose the fields.
    assert_eq!(found(&alice, "garden").await, ["Garden club"]);
    assert_eq!(found(&alice, "tomatoes").await, ["Tomatoes and roses"]);
    let only_bodies = json!({ "search_term": "garden", "keys": ["content.body"] });
    assert!(bodies(&search(&alice, only_bodies).await).is_empty());

    // The answer: count, highlights as written, rank, context.
    let events = search(&alice, criteria("Brown")).await;
    assert_eq!(events["count"], 2);
    let highlights: Vec<&str> = events["highlights"]
        .as_array()
        .expect("highlights")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(highlights.contains(&"brown"), "{highlights:?}");
    let first = &events["results"][0];
    assert!(first["rank"].as_f64().is_some(), "{first}");
    assert_eq!(first["result"]["room_id"], room.as_str());
    assert_eq!(first["result"]["type"], "m.room.message");
}

#[tokio::test]
async fn only_what_the_searcher_may_see_is_found() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("srv_alice").await;
    let (bob, bob_id) = raw.register("srv_bob").await;
    let (eve, _) = raw.register("srv_eve").await;
    // History visible from joining on: Bob, invited later, sees what
    // follows his join only.
    let room = create_room(
        &alice,
        json!({ "preset": "private_chat", "initial_state": [{
            "type": "m.room.history_visibility", "state_key": "",
            "content": { "history_visibility": "joined" } }] }),
    )
    .await;
    send_text(&alice, &room, "a1", "secret plans before bob").await;
    invite(&alice, &room, &bob_id).await;
    expect_ok(join(&bob, &room).await, "bob joins");
    send_text(&alice, &room, "a2", "plans after bob joined").await;
    assert_eq!(found(&bob, "plans").await, ["plans after bob joined"]);
    assert_eq!(found(&alice, "plans").await.len(), 2);
    // Eve is in no room with them; a public room of hers is not Alice's.
    assert!(found(&eve, "plans").await.is_empty());
    let eves = create_room(&eve, json!({ "preset": "public_chat" })).await;
    send_text(&eve, &eves, "e1", "public plans of eve").await;
    assert_eq!(found(&alice, "plans").await.len(), 2);
    // Encrypted messages have no text to find.
    send_json(
        &alice,
        &room,
        "enc",
        json!({ "algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "plans" }),
    )
    .await;
    assert_eq!(found(&alice, "plans").await.len(), 2);

    // A redacted message leaves the index.
    let doomed = send_text(&alice, &room, "a3", "delete these plans").await;
    assert_eq!(found(&alice, "delete").await, ["delete these plans"]);
    let path = format!("{V3}/rooms/{}/redact/{}/r1", enc(&room), enc(&doomed));
    expect_ok(alice.json("PUT", &path, json!({})).await, "redact");
    assert!(found(&alice, "delete").await.is_empty());

    // A room left is no longer searched.
    expect_ok(leave(&bob, &room).await, "bob leaves");
    assert!(found(&bob, "plans").await.is_empty());
    let _ = alice_id;
}

#[tokio::test]
async fn pages_filters_context_state_and_groups() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("srp_alice").await;
    let (bob, _) = raw.register("srp_bob").await;
    let set_name = json!({ "displayname": "Alice A." });
    let path = format!("{V3}/profile/{}/displayname", enc(&alice_id));
    expect_ok(alice.json("PUT", &path, set_name).await, "displayname");
    let first = create_room(&alice, json!({ "preset": "public_chat", "name": "First" })).await;
    let second = create_room(&alice, json!({ "preset": "public_chat", "name": "Second" })).await;
    expect_ok(join(&bob, &first).await, "bob joins");
    for n in 0..25 {
        let room = if n % 5 == 0 { &second } else { &first };
        // Bob is in the first room only.
        let who = if n % 2 == 1 && n % 5 != 0 {
            &bob
        } else {
            &alice
        };
        let text = format!("note number {n} about pages");
        send_text(who, room, &format!("p{n}"), &text).await;
    }

    // Newest first, ten at a time, every one once.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let recent = json!({ "search_term": "pages", "order_by": "recent" });
    loop {
        let answer = search_with(&alice, recent.clone(), token.as_deref()).await;
        let events = expect_ok(answer, "page")["search_categories"]["room_events"].clone();
        assert_eq!(events["count"], 25);
        let page = bodies(&events);
        assert!(page.len() <= 10);
        seen.extend(page);
        match events["next_batch"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25)
        .rev()
        .map(|n| format!("note number {n} about pages"))
        .collect();
    assert_eq!(seen, expected);
    // Best first pages through the same set.
    let mut ranked = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let answer = search_with(&alice, criteria("pages"), token.as_deref()).await;
        let events = expect_ok(answer, "ranked page")["search_categories"]["room_events"].clone();
        ranked.extend(bodies(&events));
        match events["next_batch"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    ranked.sort();
    let mut all = expected.clone();
    all.sort();
    assert_eq!(ranked, all);

    // Filters: rooms, senders, limit.
    let in_second = json!({ "search_term": "pages", "filter": { "rooms": [second] } });
    assert_eq!(search(&alice, in_second).await["count"], 5);
    let bobs = json!({ "search_term": "pages", "order_by": "recent",
        "filter": { "senders": ["@srp_bob:localhost"], "limit": 3 } });
    let events = search(&alice, bobs).await;
    assert_eq!(
        bodies(&events),
        [
            "note number 23 about pages",
            "note number 21 about pages",
            "note number 19 about pages"
        ]
    );
    // Bob is only in the first room.
    assert_eq!(search(&bob, criteria("pages")).await["count"], 20);
    // Nothing found is still a list of results.
    let none = search(&alice, criteria("absent")).await;
    assert_eq!(
        (none["results"].clone(), none["count"].clone()),
        (json!([]), json!(0))
    );

    // Context with profiles, the rooms' state, groups.
    let full = json!({ "search_term": "number 12", "order_by": "recent",
        "event_context": { "before_limit": 2, "after_limit": 1, "include_profile": true },
        "include_state": true,
        "groupings": { "group_by": [{ "key": "room_id" }, { "key": "sender" }] } });
    let events = search(&alice, full).await;
    assert_eq!(bodies(&events), ["note number 12 about pages"]);
    let context = &events["results"][0]["context"];
    let before: Vec<&str> = context["events_before"]
        .as_array()
        .expect("before")
        .iter()
        .filter_map(|e| e["content"]["body"].as_str())
        .collect();
    assert_eq!(
        before,
        ["note number 11 about pages", "note number 9 about pages"]
    );
    assert_eq!(
        context["events_after"][0]["content"]["body"],
        "note number 13 about pages"
    );
    assert!(context["start"].is_string() && context["end"].is_string());
    assert_eq!(
        context["profile_info"][&alice_id]["displayname"],
        "Alice A."
    );
    let state = events["state"][&first].as_array().expect("state");
    assert!(state
        .iter()
        .any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "First"));
    let event_id = events["results"][0]["result"]["event_id"].clone();
    assert_eq!(
        events["groups"]["room_id"][&first]["results"],
        json!([event_id])
    );
    assert_eq!(
        events["groups"]["sender"][&alice_id]["results"],
        json!([event_id])
    );
}

#[tokio::test]
async fn bad_searches_are_refused() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("srb_alice").await;
    let bad_order = json!({ "search_term": "x", "order_by": "sideways" });
    expect_error(
        &search_with(&alice, bad_order, None).await,
        400,
        "M_INVALID_PARAM",
        "unknown order_by",
    );
    expect_error(
        &search_with(&alice, criteria("x"), Some("r-not-a-number")).await,
        400,
        "M_INVALID_PARAM",
        "bad next_batch",
    );
    let recent = json!({ "search_term": "x", "order_by": "recent" });
    expect_error(
        &search_with(&alice, recent, Some("k10")).await,
        400,
        "M_INVALID_PARAM",
        "a rank token for a recent search",
    );
    let no_term = alice
        .json(
            "POST",
            &format!("{V3}/search"),
            json!({ "search_categories": { "room_events": {} } }),
        )
        .await;
    expect_error(&no_term, 400, "M_MISSING_PARAM", "no search_term");
    let anonymous = Raw::new(&server);
    let answer = anonymous
        .json(
            "POST",
            &format!("{V3}/search"),
            json!({ "search_categories": {} }),
        )
        .await;
    expect_error(&answer, 401, "M_MISSING_TOKEN", "no token");
    // No category asked: nothing found, no error.
    let nothing = alice
        .json(
            "POST",
            &format!("{V3}/search"),
            json!({ "search_categories": {} }),
        )
        .await;
    expect_ok(nothing, "no category");
}

/// A server where `user` sent `text` in a private room and found it by
/// `word`; the room and the user's token, to use again after a restart.
async fn sent_and_found(user: &str, text: &str, word: &str) -> (TestServer, String, String) {
    let server = start().await;
    let (alice, _) = Raw::new(&server).register(user).await;
    let room = create_room(&alice, json!({ "preset": "private_chat" })).await;
    send_text(&alice, &room, "b1", text).await;
    assert_eq!(found(&alice, word).await, [text]);
    let token = alice.token.clone().expect("token");
    (server, room, token)
}

#[tokio::test]
async fn an_index_lost_is_built_again_from_the_rooms() {
    let (server, room, token) = sent_and_found("sri_alice", "remember the milk", "milk").await;
    let data = server.config.data_dir.clone();
    let server = server
        .restart_with(|| {
            std::fs::remove_dir_all(data.join("search-v1")).expect("remove the index");
        })
        .await;
    let alice = Raw::new(&server).with_token(&token);
    assert_eq!(found(&alice, "milk").await, ["remember the milk"]);
    send_text(&alice, &room, "b2", "and the eggs").await;
    assert_eq!(found(&alice, "eggs").await, ["and the eggs"]);
}

/// `enable_search: false`, as in Synapse: `/search` is refused with
/// `M_UNKNOWN` (400), messages are still sent and the index is gone; once
/// search is on again, what was sent meanwhile is found too.
#[tokio::test]
async fn search_turned_off_refuses_and_on_again_finds_what_was_sent_meanwhile() {
    let (server, room, token) = sent_and_found("sro_alice", "before the switch", "switch").await;
    let index = server.config.data_dir.join("search-v1");

    let server = server.restart_changing(|c| c.enable_search = false).await;
    assert!(!index.exists(), "the index is deleted while search is off");
    let alice = Raw::new(&server).with_token(&token);
    send_text(&alice, &room, "o2", "while the switch was off").await;
    expect_error(
        &search_with(&alice, criteria("switch"), None).await,
        400,
        "M_UNKNOWN",
        "a search while search is off",
    );
    assert!(!index.exists(), "nothing is indexed while search is off");

    let server = server.restart_changing(|c| c.enable_search = true).await;
    let alice = Raw::new(&server).with_token(&token);
    let mut texts = found(&alice, "switch").await;
    texts.sort();
    assert_eq!(texts, ["before the switch", "while the switch was off"]);
}
