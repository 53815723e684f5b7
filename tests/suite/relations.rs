//! Relations and threads: `/relations` with its three paths, paging and
//! recursion; bundled aggregations (latest edit, thread summary,
//! references) in `/event`, `/messages` and `/sync`; `/threads` by latest
//! activity; redactions and foreign edits left out.

use serde_json::{json, Value};

use crate::common::rooms::{join, send_json};
use crate::common::{create_room, enc, expect_error, expect_ok, start, Raw, V3};

fn reply(root: &str, rel_type: &str, body: &str) -> Value {
    json!({ "msgtype": "m.text", "body": body,
            "m.relates_to": { "rel_type": rel_type, "event_id": root } })
}

fn edit(original: &str, body: &str) -> Value {
    json!({ "msgtype": "m.text", "body": format!("* {body}"),
            "m.new_content": { "msgtype": "m.text", "body": body },
            "m.relates_to": { "rel_type": "m.replace", "event_id": original } })
}

async fn get(raw: &Raw, path: &str) -> Value {
    expect_ok(raw.call("GET", path, None).await, path)
}

fn ids(body: &Value, field: &str) -> Vec<String> {
    body[field]
        .as_array()
        .expect("chunk")
        .iter()
        .map(|e| e["event_id"].as_str().expect("event_id").to_owned())
        .collect()
}

async fn event(raw: &Raw, room: &str, id: &str) -> Value {
    get(raw, &format!("{V3}/rooms/{}/event/{}", enc(room), enc(id))).await
}

#[tokio::test]
async fn relations_page_recurse_and_bundle_as_the_spec_says() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("rel_alice").await;
    let (bob, _) = raw.register("rel_bob").await;
    let (charlie, _) = raw.register("rel_charlie").await;
    let room = create_room(&alice, json!({ "preset": "public_chat" })).await;
    for other in [&bob, &charlie] {
        expect_ok(join(other, &room).await, "join");
    }
    let text = json!({ "msgtype": "m.text", "body": "root" });
    let root = send_json(&alice, &room, "root", text).await;
    let t1 = send_json(&bob, &room, "t1", reply(&root, "m.thread", "one")).await;
    let e1 = send_json(&alice, &room, "e1", edit(&root, "first edit")).await;
    let t2 = send_json(&bob, &room, "t2", reply(&root, "m.thread", "two")).await;
    let e2 = send_json(&alice, &room, "e2", edit(&root, "second edit")).await;
    let foreign = send_json(&bob, &room, "fe", edit(&root, "not bob's to edit")).await;
    let reference = send_json(&charlie, &room, "ref", reply(&root, "m.reference", "see")).await;
    let nested = send_json(&charlie, &room, "nest", reply(&t1, "m.reference", "deeper")).await;

    let base = format!("{V3}/../v1/rooms/{}/relations/{}", enc(&room), enc(&root));
    let base = base.replace("/v3/../v1/", "/v1/");
    // Every relation, newest first, two at a time.
    let mut seen = Vec::new();
    let mut from: Option<String> = None;
    for _ in 0..10 {
        let mut path = format!("{base}?limit=2");
        if let Some(from) = &from {
            path.push_str(&format!("&from={from}"));
        }
        let page = get(&alice, &path).await;
        seen.extend(ids(&page, "chunk"));
        match page["next_batch"].as_str() {
            Some(next) => from = Some(next.to_owned()),
            None => break,
        }
    }
    let all = [&t1, &e1, &t2, &e2, &foreign, &reference];
    let newest_first: Vec<String> = all.iter().rev().map(|s| s.to_string()).collect();
    assert_eq!(seen, newest_first);
    // By relation type, by relation and event type, forwards.
    let threads = get(&alice, &format!("{base}/m.thread?dir=f")).await;
    assert_eq!(ids(&threads, "chunk"), vec![t1.clone(), t2.clone()]);
    let typed = get(&alice, &format!("{base}/m.thread/m.room.message?dir=f")).await;
    assert_eq!(ids(&typed, "chunk"), vec![t1.clone(), t2.clone()]);
    let none = get(&alice, &format!("{base}/m.thread/m.reaction")).await;
    assert_eq!(ids(&none, "chunk"), Vec::<String>::new());
    // Recursing reaches the reference to a thread reply.
    let deep = get(&alice, &format!("{base}?recurse=true&limit=50")).await;
    assert!(ids(&deep, "chunk").contains(&nested), "{deep}");
    assert_eq!(deep["recursion_depth"], 3);
    let flat = get(&alice, &format!("{base}?limit=50")).await;
    assert!(!ids(&flat, "chunk").contains(&nested));
    let res = alice
        .call("GET", &format!("{base}?from=nonsense"), None)
        .await;
    expect_error(&res, 400, "M_INVALID_PARAM", "bad token");

    // Bundled: the latest edit by the sender, the thread, the reference.
    let served = event(&alice, &room, &root).await;
    let relations = &served["unsigned"]["m.relations"];
    assert_eq!(relations["m.replace"]["event_id"], e2.as_str(), "{served}");
    assert_eq!(relations["m.thread"]["count"], 2);
    assert_eq!(
        relations["m.thread"]["latest_event"]["event_id"],
        t2.as_str()
    );
    assert_eq!(relations["m.thread"]["current_user_participated"], true);
    assert_eq!(
        relations["m.reference"]["chunk"],
        json!([{ "event_id": reference }])
    );
    assert_eq!(
        served["content"]["body"], "root",
        "the original content stays"
    );
    let for_charlie = event(&charlie, &room, &root).await;
    let participated = &for_charlie["unsigned"]["m.relations"]["m.thread"];
    assert_eq!(participated["current_user_participated"], false);
    // The same in /messages and /sync.
    let messages = get(
        &alice,
        &format!("{V3}/rooms/{}/messages?dir=b&limit=50", enc(&room)),
    )
    .await;
    let in_messages = messages["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .find(|e| e["event_id"] == root.as_str())
        .cloned();
    assert_eq!(
        in_messages.expect("root in /messages")["unsigned"]["m.relations"]["m.thread"]["count"],
        2
    );
    let filter = enc(r#"{"room":{"timeline":{"limit":50}}}"#);
    let synced = get(&alice, &format!("{V3}/sync?filter={filter}")).await;
    let timeline = synced["rooms"]["join"][&room]["timeline"]["events"]
        .as_array()
        .expect("timeline");
    let root_event = timeline
        .iter()
        .find(|e| e["event_id"] == root.as_str())
        .expect("root in /sync");
    assert_eq!(
        root_event["unsigned"]["m.relations"]["m.replace"]["event_id"],
        e2.as_str()
    );

    // A redacted reply leaves the thread; a redacted edit is not bundled.
    for (id, txn) in [(&t2, "r1"), (&e2, "r2")] {
        let sender = if id == &t2 { &bob } else { &alice };
        let path = format!("{V3}/rooms/{}/redact/{}/{txn}", enc(&room), enc(id));
        expect_ok(sender.json("PUT", &path, json!({})).await, "redact");
    }
    let served = event(&alice, &room, &root).await;
    let relations = &served["unsigned"]["m.relations"];
    assert_eq!(relations["m.thread"]["count"], 1);
    assert_eq!(
        relations["m.thread"]["latest_event"]["event_id"],
        t1.as_str()
    );
    assert_eq!(relations["m.replace"]["event_id"], e1.as_str());

    // After a restart (the server reloads which events have relations and
    // which were redacted) the same is served.
    let _server = server.restart().await;
    let served = event(&alice, &room, &root).await;
    let relations = &served["unsigned"]["m.relations"];
    assert_eq!(relations["m.thread"]["count"], 1, "{served}");
    assert_eq!(relations["m.replace"]["event_id"], e1.as_str());
    let redacted = event(&alice, &room, &e2).await;
    assert!(
        redacted["unsigned"]["redacted_because"].is_object(),
        "{redacted}"
    );
    let unredacted = event(&alice, &room, &e1).await;
    assert!(unredacted["unsigned"].get("redacted_because").is_none());
}

#[tokio::test]
async fn threads_are_listed_by_latest_activity_and_participation() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("thr_alice").await;
    let (bob, _) = raw.register("thr_bob").await;
    let (charlie, _) = raw.register("thr_charlie").await;
    let room = create_room(&alice, json!({ "preset": "public_chat" })).await;
    for other in [&bob, &charlie] {
        expect_ok(join(other, &room).await, "join");
    }
    let text = |b: &str| json!({ "msgtype": "m.text", "body": b });
    let first = send_json(&alice, &room, "a", text("first")).await;
    let second = send_json(&alice, &room, "b", text("second")).await;
    send_json(&bob, &room, "b1", reply(&second, "m.thread", "on second")).await;
    send_json(&charlie, &room, "a1", reply(&first, "m.thread", "on first")).await;
    let list = |who: &Raw, query: &str| {
        let path = format!("{V3}/rooms/{}/threads{query}", enc(&room)).replace("/v3/", "/v1/");
        let who = Raw {
            http: who.http.clone(),
            base: who.base.clone(),
            token: who.token.clone(),
        };
        async move { get(&who, &path).await }
    };
    let all = list(&alice, "").await;
    assert_eq!(ids(&all, "chunk"), vec![first.clone(), second.clone()]);
    assert_eq!(
        all["chunk"][0]["unsigned"]["m.relations"]["m.thread"]["count"],
        1
    );
    // Paging, one at a time.
    let page = list(&alice, "?limit=1").await;
    assert_eq!(ids(&page, "chunk"), vec![first.clone()]);
    let next = page["next_batch"].as_str().expect("next_batch");
    let rest = list(&alice, &format!("?limit=1&from={next}")).await;
    assert_eq!(ids(&rest, "chunk"), vec![second.clone()]);
    assert!(rest.get("next_batch").is_none() || rest["next_batch"].is_null());
    // Participation: Bob replied in the second only; Alice started both.
    let bobs = list(&bob, "?include=participated").await;
    assert_eq!(ids(&bobs, "chunk"), vec![second.clone()]);
    let alices = list(&alice, "?include=participated").await;
    assert_eq!(ids(&alices, "chunk").len(), 2);
    // New activity moves a thread to the top.
    send_json(&bob, &room, "b2", reply(&second, "m.thread", "again")).await;
    let all = list(&charlie, "").await;
    assert_eq!(ids(&all, "chunk"), vec![second, first]);
}
