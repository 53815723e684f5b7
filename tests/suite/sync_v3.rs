//! `/sync` behaviours clients rely on, as Synapse has them: lazy-loaded
//! members across incremental and gapped syncs, filtered timelines,
//! ignored users, presence on join, state sent again, kicks and invites of
//! banned users, profile changes and rooms joined and left in one window.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::common::rooms::{join, leave, send_json, send_text};
use crate::common::{
    create_room, enc, expect_error, expect_ok, next_batch, set_displayname, start, Raw, V3,
};

/// A sync with `filter` (inline JSON) from `since`, answering at once.
async fn sync_with(raw: &Raw, since: Option<&str>, filter: &Value) -> Value {
    let mut path = format!("{V3}/sync?timeout=0&filter={}", enc(&filter.to_string()));
    if let Some(since) = since {
        path.push_str(&format!("&since={}", enc(since)));
    }
    expect_ok(raw.call("GET", &path, None).await, "sync")
}

fn lazy_filter(redundant: bool) -> Value {
    json!({ "room": {
        "state": { "lazy_load_members": true, "include_redundant_members": redundant },
        "timeline": { "limit": 10 },
    }})
}

/// The member events in a joined room's `state`: user → membership.
fn state_members(body: &Value, room: &str) -> BTreeMap<String, String> {
    let events = body["rooms"]["join"][room]["state"]["events"].as_array();
    events
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == "m.room.member")
        .map(|e| {
            let key = e["state_key"].as_str().unwrap_or_default().to_owned();
            let membership = e["content"]["membership"].as_str().unwrap_or_default();
            (key, membership.to_owned())
        })
        .collect()
}

fn joined(users: &[&str]) -> BTreeMap<String, String> {
    users
        .iter()
        .map(|u| (u.to_string(), "join".into()))
        .collect()
}

async fn say(raw: &Raw, room: &str, who: &str, n: usize) {
    for i in 0..n {
        send_text(raw, room, &format!("{who}-{i}-{}", rand_suffix()), "hi").await;
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Alice's public room with Bob and Charlie joined.
async fn public_room(alice: &Raw, others: &[&Raw]) -> String {
    let room = create_room(alice, json!({ "preset": "public_chat", "name": "LL" })).await;
    for other in others {
        expect_ok(join(other, &room).await, "join");
    }
    room
}

#[tokio::test]
async fn lazy_members_are_sent_once_per_device() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("ll_alice").await;
    let (bob, bob_id) = raw.register("ll_bob").await;
    let (charlie, charlie_id) = raw.register("ll_charlie").await;
    let room = public_room(&alice, &[&bob, &charlie]).await;
    say(&bob, &room, "bob", 10).await;
    let filter = lazy_filter(false);
    let first = sync_with(&alice, None, &filter).await;
    assert_eq!(
        state_members(&first, &room),
        joined(&[&alice_id, &bob_id]),
        "initial: the timeline's sender and the caller"
    );
    // Charlie speaks: only his member event is news.
    say(&charlie, &room, "charlie", 1).await;
    let second = sync_with(&alice, Some(&next_batch(&first)), &filter).await;
    assert_eq!(state_members(&second, &room), joined(&[&charlie_id]));
    // Bob and Charlie again: nothing is sent twice.
    say(&bob, &room, "bob", 1).await;
    say(&charlie, &room, "charlie", 1).await;
    let third = sync_with(&alice, Some(&next_batch(&second)), &filter).await;
    assert_eq!(
        third["rooms"]["join"][&room]["timeline"]["events"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(state_members(&third, &room), BTreeMap::new(), "{third}");
    // A retry of the second sync is sent Charlie's again (its answer may
    // have been lost); Bob's came with the first, which the token confirms.
    let retried = sync_with(&alice, Some(&next_batch(&first)), &filter).await;
    assert_eq!(state_members(&retried, &room), joined(&[&charlie_id]));
    // Nothing new: the room is not in the answer at all.
    let idle = sync_with(&alice, Some(&next_batch(&third)), &filter).await;
    assert!(idle["rooms"]["join"].get(&room).is_none(), "{idle}");
    // With include_redundant_members, the senders' members come every time.
    let redundant = lazy_filter(true);
    say(&bob, &room, "bob", 1).await;
    say(&charlie, &room, "charlie", 1).await;
    let again = sync_with(&alice, Some(&next_batch(&third)), &redundant).await;
    assert_eq!(
        state_members(&again, &room),
        joined(&[&bob_id, &charlie_id])
    );
}

#[tokio::test]
async fn gapped_lazy_syncs_carry_every_state_change_and_new_senders() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("gap_alice").await;
    let (bob, bob_id) = raw.register("gap_bob").await;
    let (charlie, charlie_id) = raw.register("gap_charlie").await;
    let (dave, dave_id) = raw.register("gap_dave").await;
    let room = public_room(&alice, &[&bob, &charlie]).await;
    say(&bob, &room, "bob", 10).await;
    let filter = lazy_filter(false);
    let first = sync_with(&alice, None, &filter).await;
    assert_eq!(state_members(&first, &room), joined(&[&alice_id, &bob_id]));
    // Dave joins in the gap, Charlie fills the timeline.
    expect_ok(join(&dave, &room).await, "dave joins");
    say(&charlie, &room, "charlie", 20).await;
    let second = sync_with(&alice, Some(&next_batch(&first)), &filter).await;
    assert_eq!(second["rooms"]["join"][&room]["timeline"]["limited"], true);
    assert_eq!(
        state_members(&second, &room),
        joined(&[&charlie_id, &dave_id])
    );
    // Dave leaves in the next gap: his leave is all the state there is.
    expect_ok(leave(&dave, &room).await, "dave leaves");
    say(&charlie, &room, "charlie", 20).await;
    let third = sync_with(&alice, Some(&next_batch(&second)), &filter).await;
    let leave_only = BTreeMap::from([(dave_id.clone(), "leave".to_owned())]);
    assert_eq!(state_members(&third, &room), leave_only);
}

#[tokio::test]
async fn a_leave_in_a_lazy_incremental_timeline_is_also_in_state() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("lv_alice").await;
    let (bob, _) = raw.register("lv_bob").await;
    let (charlie, charlie_id) = raw.register("lv_charlie").await;
    let room = public_room(&alice, &[&bob, &charlie]).await;
    say(&charlie, &room, "charlie", 1).await;
    say(&bob, &room, "bob", 10).await;
    let filter = lazy_filter(false);
    let first = sync_with(&alice, None, &filter).await;
    expect_ok(leave(&charlie, &room).await, "charlie leaves");
    say(&bob, &room, "bob", 5).await;
    let second = sync_with(&alice, Some(&next_batch(&first)), &filter).await;
    // `limited` is left out when false.
    assert_ne!(second["rooms"]["join"][&room]["timeline"]["limited"], true);
    let leave_only = BTreeMap::from([(charlie_id, "leave".to_owned())]);
    assert_eq!(state_members(&second, &room), leave_only);
}

#[tokio::test]
async fn a_filtered_timeline_fills_its_limit_and_is_limited_only_by_matches() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("flt_alice").await;
    let room = create_room(&alice, json!({ "preset": "private_chat" })).await;
    let first = sync_with(&alice, None, &json!({})).await;
    // Two messages, each followed by many events the filter leaves out.
    for i in 0..2 {
        send_text(&alice, &room, &format!("m{i}"), "match").await;
        for j in 0..30 {
            let path = format!("{V3}/rooms/{}/send/m.other/o{i}-{j}", enc(&room));
            expect_ok(alice.json("PUT", &path, json!({ "n": j })).await, "other");
        }
    }
    let filter = json!({ "room": { "timeline": { "limit": 2, "types": ["m.room.message"] } } });
    let body = sync_with(&alice, Some(&next_batch(&first)), &filter).await;
    let timeline = &body["rooms"]["join"][&room]["timeline"];
    assert_eq!(
        timeline["events"].as_array().map(Vec::len),
        Some(2),
        "{timeline}"
    );
    assert_ne!(
        timeline["limited"], true,
        "no third match exists: {timeline}"
    );
    // A third match makes the same window limited.
    send_text(&alice, &room, "m2", "match").await;
    let body = sync_with(&alice, Some(&next_batch(&first)), &filter).await;
    let timeline = &body["rooms"]["join"][&room]["timeline"];
    assert_eq!(timeline["events"].as_array().map(Vec::len), Some(2));
    assert_eq!(timeline["limited"], true);
}

#[tokio::test]
async fn ignored_users_events_and_invites_are_not_sent() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("ign_alice").await;
    let (bob, bob_id) = raw.register("ign_bob").await;
    let room = public_room(&alice, &[&bob]).await;
    let path = format!(
        "{V3}/user/{}/account_data/m.ignored_user_list",
        enc(&alice_id)
    );
    let list = json!({ "ignored_users": { bob_id.clone(): {} } });
    expect_ok(alice.json("PUT", &path, list).await, "ignore bob");
    let first = sync_with(&alice, None, &json!({})).await;
    send_text(&bob, &room, "b1", "from bob").await;
    send_text(&alice, &room, "a1", "from alice").await;
    let bobs_room = create_room(&bob, json!({ "invite": [alice_id] })).await;
    let body = sync_with(&alice, Some(&next_batch(&first)), &json!({})).await;
    let senders: Vec<&str> = body["rooms"]["join"][&room]["timeline"]["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["sender"].as_str())
        .collect();
    assert!(
        !senders.is_empty() && !senders.contains(&bob_id.as_str()),
        "{senders:?}"
    );
    assert!(body["rooms"]["invite"].get(&bobs_room).is_none(), "{body}");
}

#[tokio::test]
async fn state_sent_again_answers_the_existing_event() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("dup_alice").await;
    let room = create_room(&alice, json!({})).await;
    let path = format!("{V3}/rooms/{}/state/m.room.topic/", enc(&room));
    let first = expect_ok(
        alice.json("PUT", &path, json!({ "topic": "t" })).await,
        "topic",
    );
    let again = expect_ok(
        alice.json("PUT", &path, json!({ "topic": "t" })).await,
        "again",
    );
    assert_eq!(first["event_id"], again["event_id"]);
    let other = expect_ok(
        alice.json("PUT", &path, json!({ "topic": "u" })).await,
        "new",
    );
    assert_ne!(first["event_id"], other["event_id"]);
}

#[tokio::test]
async fn kicks_and_invites_of_banned_or_absent_users_are_refused() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("kick_alice").await;
    let (bob, bob_id) = raw.register("kick_bob").await;
    let (_, carol_id) = raw.register("kick_carol").await;
    let room = public_room(&alice, &[&bob]).await;
    let act = |what: &str, user: &str| {
        let path = format!("{V3}/rooms/{}/{what}", enc(&room));
        let body = json!({ "user_id": user });
        (path, body)
    };
    let (path, body) = act("kick", &carol_id);
    let res = alice.json("POST", &path, body).await;
    expect_error(&res, 403, "M_FORBIDDEN", "kicking someone not in the room");
    let (path, body) = act("ban", &bob_id);
    expect_ok(alice.json("POST", &path, body).await, "ban");
    let (path, body) = act("kick", &bob_id);
    let res = alice.json("POST", &path, body).await;
    expect_error(&res, 403, "M_FORBIDDEN", "kicking a banned user");
    let (path, body) = act("invite", &bob_id);
    let res = alice.json("POST", &path, body).await;
    expect_error(&res, 403, "M_FORBIDDEN", "inviting a banned user");
    let (path, body) = act("unban", &bob_id);
    expect_ok(alice.json("POST", &path, body).await, "unban");
    let (path, body) = act("invite", &bob_id);
    expect_ok(alice.json("POST", &path, body).await, "invite after unban");
}

#[tokio::test]
async fn a_profile_change_is_one_member_event_not_a_state_resend() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("prof_alice").await;
    let room = create_room(&alice, json!({ "name": "profiles" })).await;
    let first = sync_with(&alice, None, &json!({})).await;
    set_displayname(&alice, &alice_id, "Alice Again").await;
    let body = sync_with(&alice, Some(&next_batch(&first)), &json!({})).await;
    let joined_room = &body["rooms"]["join"][&room];
    let timeline = joined_room["timeline"]["events"]
        .as_array()
        .expect("timeline");
    assert_eq!(timeline.len(), 1, "{joined_room}");
    assert_eq!(timeline[0]["content"]["displayname"], "Alice Again");
    assert_ne!(joined_room["timeline"]["limited"], true);
    let state = joined_room["state"]["events"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(state, 0, "no state resend: {joined_room}");
}

#[tokio::test]
async fn a_room_joined_and_left_in_one_window_comes_with_its_state() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("jl_alice").await;
    let (bob, _) = raw.register("jl_bob").await;
    let room = create_room(&alice, json!({ "preset": "public_chat", "name": "Brief" })).await;
    let first = sync_with(&bob, None, &json!({})).await;
    expect_ok(join(&bob, &room).await, "join");
    expect_ok(leave(&bob, &room).await, "leave");
    let body = sync_with(&bob, Some(&next_batch(&first)), &json!({})).await;
    let left = &body["rooms"]["leave"][&room];
    let state = left["state"]["events"].as_array().expect("state");
    let kinds: Vec<&str> = state.iter().filter_map(|e| e["type"].as_str()).collect();
    assert!(
        kinds.contains(&"m.room.create") && kinds.contains(&"m.room.name"),
        "{left}"
    );
}

#[tokio::test]
async fn joining_a_room_brings_its_members_presence() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("pres_alice").await;
    let (bob, _) = raw.register("pres_bob").await;
    let path = format!("{V3}/presence/{}/status", enc(&alice_id));
    let status = json!({ "presence": "online", "status_msg": "here" });
    expect_ok(alice.json("PUT", &path, status).await, "presence");
    let room = create_room(&alice, json!({ "preset": "public_chat" })).await;
    let first = sync_with(&bob, None, &json!({})).await;
    // Presence of Alice changed before Bob's token: only the join brings it.
    expect_ok(join(&bob, &room).await, "join");
    let body = sync_with(&bob, Some(&next_batch(&first)), &json!({})).await;
    let presence = body["presence"]["events"].as_array().expect("presence");
    let alice_presence = presence.iter().find(|e| e["sender"] == alice_id.as_str());
    assert_eq!(
        alice_presence.map(|e| &e["content"]["status_msg"]),
        Some(&json!("here")),
        "{body}"
    );
}

#[tokio::test]
async fn context_with_lazy_loading_serves_only_the_members_its_events_need() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("ctx_alice").await;
    let (bob, bob_id) = raw.register("ctx_bob").await;
    let (charlie, _) = raw.register("ctx_charlie").await;
    let room = public_room(&alice, &[&bob, &charlie]).await;
    let event = send_text(&bob, &room, "ctx-b", "in context").await;
    send_text(&charlie, &room, "ctx-c", "later").await;
    let filter = enc(r#"{"lazy_load_members":true}"#);
    let path = format!(
        "{V3}/rooms/{}/context/{}?limit=0&filter={filter}",
        enc(&room),
        enc(&event)
    );
    let body = expect_ok(alice.call("GET", &path, None).await, "context");
    let members: Vec<&str> = body["state"]
        .as_array()
        .expect("state")
        .iter()
        .filter(|e| e["type"] == "m.room.member")
        .filter_map(|e| e["state_key"].as_str())
        .collect();
    assert_eq!(members, vec![bob_id.as_str()]);
    // Without it, every member.
    let path = format!("{V3}/rooms/{}/context/{}?limit=0", enc(&room), enc(&event));
    let body = expect_ok(alice.call("GET", &path, None).await, "context");
    let count = body["state"].as_array().expect("state").iter();
    let members = count.filter(|e| e["type"] == "m.room.member").count();
    assert_eq!(members, 3, "{alice_id}");
}

fn device_lists(body: &Value, part: &str) -> Vec<String> {
    let list = body["device_lists"][part].as_array();
    list.into_iter()
        .flatten()
        .filter_map(|u| u.as_str().map(str::to_owned))
        .collect()
}

async fn key_changes(raw: &Raw, from: &str, to: &str) -> Value {
    let path = format!("{V3}/keys/changes?from={}&to={}", enc(from), enc(to));
    expect_ok(raw.call("GET", &path, None).await, "keys/changes")
}

#[tokio::test]
async fn device_lists_follow_new_devices_renames_and_shared_rooms() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("dl_alice").await;
    let (bob, bob_id) = raw.register("dl_bob").await;
    let (carol, carol_id) = raw.register("dl_carol").await;
    let room = public_room(&alice, &[&bob]).await;
    let start = next_batch(&sync_with(&alice, None, &json!({})).await);
    let bob_start = next_batch(&sync_with(&bob, None, &json!({})).await);
    // Bob logs in on a second device: Alice and Bob's first device see it.
    let bob2 = raw.login(&bob_id).await;
    let body = sync_with(&alice, Some(&start), &json!({})).await;
    assert!(device_lists(&body, "changed").contains(&bob_id), "{body}");
    let own = sync_with(&bob, Some(&bob_start), &json!({})).await;
    assert!(device_lists(&own, "changed").contains(&bob_id), "{own}");
    // A new name is a change too.
    let after_login = next_batch(&body);
    let whoami = expect_ok(
        bob2.call("GET", &format!("{V3}/account/whoami"), None)
            .await,
        "whoami",
    );
    let device = whoami["device_id"].as_str().expect("device").to_owned();
    let path = format!("{V3}/devices/{}", enc(&device));
    expect_ok(
        bob2.json("PUT", &path, json!({ "display_name": "phone" }))
            .await,
        "rename",
    );
    let body = sync_with(&alice, Some(&after_login), &json!({})).await;
    assert!(device_lists(&body, "changed").contains(&bob_id), "{body}");
    // Carol, with no key change, starts sharing the room, then stops.
    let before_carol = next_batch(&body);
    expect_ok(join(&carol, &room).await, "carol joins");
    let body = sync_with(&alice, Some(&before_carol), &json!({})).await;
    assert!(device_lists(&body, "changed").contains(&carol_id), "{body}");
    let joined_at = next_batch(&body);
    let changes = key_changes(&alice, &before_carol, &joined_at).await;
    assert!(changes["changed"]
        .as_array()
        .expect("changed")
        .contains(&json!(carol_id)));
    expect_ok(leave(&carol, &room).await, "carol leaves");
    let body = sync_with(&alice, Some(&joined_at), &json!({})).await;
    assert_eq!(
        device_lists(&body, "left"),
        vec![carol_id.clone()],
        "{body}"
    );
    let changes = key_changes(&alice, &joined_at, &next_batch(&body)).await;
    assert_eq!(changes["left"], json!([carol_id]));
    // Keys that are not device keys are bad JSON.
    let bad = json!({ "device_keys": { "user_id": bob_id, "device_id": device, "keys": {} } });
    let res = bob2.json("POST", &format!("{V3}/keys/upload"), bad).await;
    expect_error(&res, 400, "M_BAD_JSON", "invalid device keys");
}

/// `use_state_after` (v1.16): rooms carry `state_after`, the state at the
/// end of the timeline (what changed since the last sync, including the
/// timeline's own state events), never `state`.
#[tokio::test]
async fn use_state_after_sends_the_state_at_the_timelines_end() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("sa_alice").await;
    let room = create_room(&alice, json!({ "name": "First" })).await;
    let sync_after = |since: Option<String>, limit: u64| {
        let alice = &alice;
        async move {
            let filter = json!({ "room": { "timeline": { "limit": limit } } });
            let mut path = format!(
                "{V3}/sync?timeout=0&use_state_after=true&filter={}",
                enc(&filter.to_string())
            );
            if let Some(since) = since {
                path.push_str(&format!("&since={}", enc(&since)));
            }
            expect_ok(alice.call("GET", &path, None).await, "sync")
        }
    };
    let names = |body: &Value| -> Vec<String> {
        let joined = &body["rooms"]["join"][&room];
        assert!(
            joined.get("state").is_none(),
            "state besides state_after: {joined}"
        );
        joined["state_after"]["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["type"] == "m.room.name")
            .map(|e| e["content"]["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let set_name = |name: &'static str| {
        let alice = &alice;
        let path = format!("{V3}/rooms/{}/state/m.room.name/", enc(&room));
        async move {
            expect_ok(
                alice.json("PUT", &path, json!({ "name": name })).await,
                "name",
            )
        }
    };

    // Initial: the whole state at the end of the timeline.
    let first = sync_after(None, 1).await;
    assert_eq!(names(&first), ["First"]);
    let kinds = first["rooms"]["join"][&room]["state_after"]["events"].to_string();
    assert!(kinds.contains("m.room.create"), "{kinds}");

    // Incremental, not limited: the change is in the timeline and in
    // state_after.
    set_name("Second").await;
    let second = sync_after(Some(next_batch(&first)), 10).await;
    assert_eq!(names(&second), ["Second"]);
    assert_ne!(second["rooms"]["join"][&room]["timeline"]["limited"], true);

    // Gapped: the name changed before the timeline's messages; state_after
    // has the name at the end.
    set_name("Third").await;
    say(&alice, &room, "sa", 4).await;
    let third = sync_after(Some(next_batch(&second)), 2).await;
    assert_eq!(third["rooms"]["join"][&room]["timeline"]["limited"], true);
    assert_eq!(names(&third), ["Third"]);

    // Nothing changed: the room is not sent.
    let quiet = sync_after(Some(next_batch(&third)), 2).await;
    assert!(quiet["rooms"]["join"].get(&room).is_none(), "{quiet}");

    // Without the flag, `state` as before.
    let plain = sync_with(&alice, None, &json!({})).await;
    assert!(plain["rooms"]["join"][&room]["state"]["events"].is_array());
    assert!(plain["rooms"]["join"][&room].get("state_after").is_none());
}

/// `unsigned.membership` (v1.11): the caller's membership at each event,
/// the event's own change included, in `/messages` and `/sync`.
#[tokio::test]
async fn events_carry_the_callers_membership_at_them() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("um_alice").await;
    let (bob, bob_id) = raw.register("um_bob").await;
    let room = create_room(&alice, json!({ "preset": "public_chat" })).await;
    send_text(&alice, &room, "um1", "before bob").await;
    expect_ok(join(&bob, &room).await, "join");
    send_text(&alice, &room, "um2", "with bob").await;
    expect_ok(leave(&bob, &room).await, "leave");
    send_text(&alice, &room, "um3", "bob away").await;
    expect_ok(join(&bob, &room).await, "rejoin");
    send_text(&alice, &room, "um4", "bob back").await;

    let path = format!("{V3}/rooms/{}/messages?dir=b&limit=50", enc(&room));
    let page = expect_ok(bob.call("GET", &path, None).await, "messages");
    let seen: Vec<(String, String)> = page["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .rev()
        .filter_map(|e| {
            let what = match e["type"].as_str()? {
                "m.room.message" => e["content"]["body"].as_str()?.to_owned(),
                "m.room.member" if e["state_key"] == bob_id.as_str() => {
                    format!("bob {}", e["content"]["membership"].as_str()?)
                }
                "m.room.create" => "create".to_owned(),
                _ => return None,
            };
            Some((what, e["unsigned"]["membership"].as_str()?.to_owned()))
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("create", "leave"),
        ("before bob", "leave"),
        ("bob join", "join"),
        ("with bob", "join"),
        ("bob leave", "leave"),
        ("bob away", "leave"),
        ("bob join", "join"),
        ("bob back", "join"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(seen, expected);

    let body = sync_with(
        &bob,
        None,
        &json!({ "room": { "timeline": { "limit": 1 } } }),
    )
    .await;
    let last = &body["rooms"]["join"][&room]["timeline"]["events"][0];
    assert_eq!(last["unsigned"]["membership"], "join", "{last}");
}

/// Deactivating with `erase` (v1.10): the profile goes, and the user's
/// events are served pruned to those who join later; members who could
/// read them at the time still can.
#[tokio::test]
async fn an_erased_users_events_are_pruned_for_later_joiners() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("er_alice").await;
    let (bob, _) = raw.register("er_bob").await;
    let (carol, _) = raw.register("er_carol").await;
    let room = create_room(
        &alice,
        json!({ "preset": "public_chat", "initial_state": [{
            "type": "m.room.history_visibility", "state_key": "",
            "content": { "history_visibility": "world_readable" }
        }]}),
    )
    .await;
    expect_ok(join(&bob, &room).await, "bob joins");
    let said = send_text(&alice, &room, "er1", "words to forget").await;
    // An edit of hers and her reply in Bob's thread: bundled with the
    // original and the root, they are hers to erase too.
    send_json(
        &alice,
        &room,
        "er2",
        json!({
            "msgtype": "m.text", "body": "* edited words",
            "m.new_content": { "msgtype": "m.text", "body": "edited words" },
            "m.relates_to": { "rel_type": "m.replace", "event_id": said },
        }),
    )
    .await;
    let root = send_text(&bob, &room, "er3", "a thread").await;
    send_json(
        &alice,
        &room,
        "er4",
        json!({
            "msgtype": "m.text", "body": "a reply to forget",
            "m.relates_to": { "rel_type": "m.thread", "event_id": root },
        }),
    )
    .await;
    let event = |raw: &Raw, id: &str| {
        let path = format!("{V3}/rooms/{}/event/{}", enc(&room), enc(id));
        let raw = raw.with_token(raw.token.as_deref().expect("token"));
        async move { expect_ok(raw.call("GET", &path, None).await, "event") }
    };
    // Her events served before the erasure, to everyone: the erasure
    // still reaches them afterwards.
    let before = event(&bob, &said).await;
    assert_eq!(before["content"]["body"], "words to forget", "{before}");
    // An invite pending and some account data, for the deactivation to end.
    let bobs = create_room(&bob, json!({ "preset": "private_chat" })).await;
    let invite = json!({ "user_id": alice_id });
    let path = format!("{V3}/rooms/{}/invite", enc(&bobs));
    expect_ok(bob.json("POST", &path, invite).await, "bob invites alice");
    let path = format!(
        "{V3}/user/{}/account_data/org.example.notes",
        enc(&alice_id)
    );
    expect_ok(
        alice.json("PUT", &path, json!({ "a": 1 })).await,
        "account data",
    );
    let auth = json!({
        "auth": { "type": "m.login.password", "identifier": { "type": "m.id.user", "user": "er_alice" }, "password": "secret-pw" },
        "erase": true,
    });
    expect_ok(
        alice
            .json("POST", &format!("{V3}/account/deactivate"), auth)
            .await,
        "deactivate with erase",
    );
    expect_ok(join(&carol, &room).await, "carol joins");

    let kept = event(&bob, &said).await;
    assert_eq!(kept["content"]["body"], "words to forget");
    let edit = &kept["unsigned"]["m.relations"]["m.replace"];
    assert_eq!(
        edit["content"]["m.new_content"]["body"], "edited words",
        "{kept}"
    );
    let pruned = event(&carol, &said).await;
    assert_eq!(pruned["content"], json!({}), "{pruned}");
    assert_eq!(pruned["sender"], alice_id.as_str());
    let edit = &pruned["unsigned"]["m.relations"]["m.replace"];
    assert_eq!(edit["content"], json!({}), "the bundled edit: {pruned}");
    let thread = |root: &Value| root["unsigned"]["m.relations"]["m.thread"]["latest_event"].clone();
    let reply = thread(&event(&bob, &root).await);
    assert_eq!(reply["content"]["body"], "a reply to forget", "{reply}");
    let reply = thread(&event(&carol, &root).await);
    assert_eq!(reply["content"], json!({}), "the bundled reply: {reply}");

    let profile = expect_ok(
        raw.call("GET", &format!("{V3}/profile/{}", enc(&alice_id)), None)
            .await,
        "profile",
    );
    assert!(profile.get("displayname").is_none(), "{profile}");

    // The invite was declined, the account data is gone.
    let path = format!(
        "{V3}/rooms/{}/state/m.room.member/{}",
        enc(&bobs),
        enc(&alice_id)
    );
    let member = expect_ok(bob.call("GET", &path, None).await, "alice's membership");
    assert_eq!(member["membership"], "leave", "{member}");
    let alice_user = ruma::UserId::parse(alice_id.as_str()).unwrap();
    let notes = server
        .services
        .account_data
        .get(&alice_user, None, "org.example.notes")
        .unwrap();
    assert_eq!(notes, None, "account data purged");
}
