//! History visibility, table-driven: every visibility × every membership
//! history Bob can have, each against every endpoint that reads events.
//! Alice sends "before" ahead of Bob's first membership change, "during"
//! between his first and last change, and "after" once he is done.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::common::rooms::{join, send_text, text_bodies};
use crate::common::{create_room, enc, expect_ok, start, Raw, V3};

#[derive(Clone, Copy, Debug)]
enum History {
    Never,
    InviteRejected,
    InviteWithdrawn,
    BannedBeforeJoining,
    KnockRescinded,
    JoinedThenLeft,
    Joined,
}

/// What Bob may read, by visibility: the messages ("B", "D", "A"), or "-"
/// when the room is closed to him altogether.
const TABLE: [(History, [&str; 4]); 7] = [
    //                               world_readable shared invited joined
    (History::Never, ["BDA", "-", "-", "-"]),
    (History::InviteRejected, ["BDA", "", "D", ""]),
    (History::InviteWithdrawn, ["BDA", "", "D", ""]),
    (History::BannedBeforeJoining, ["BDA", "", "", ""]),
    (History::KnockRescinded, ["BDA", "", "", ""]),
    (History::JoinedThenLeft, ["BDA", "BD", "D", "D"]),
    (History::Joined, ["BDA", "BDA", "DA", "DA"]),
];

const VISIBILITIES: [&str; 4] = ["world_readable", "shared", "invited", "joined"];

impl History {
    fn join_rule(self) -> &'static str {
        match self {
            History::KnockRescinded => "knock",
            History::JoinedThenLeft | History::Joined => "public",
            _ => "invite",
        }
    }

    /// Whether Bob was ever joined (then he may read the state as it was).
    fn was_joined(self) -> bool {
        matches!(self, History::JoinedThenLeft | History::Joined)
    }

    /// Messages before Bob's last membership change (what `/sync` shows of
    /// a room he left); all of them when he is still joined.
    fn before_last_change(self) -> &'static str {
        match self {
            History::Never => "",
            History::BannedBeforeJoining => "B",
            History::Joined => "BDA",
            _ => "BD",
        }
    }
}

struct Scenario {
    room: String,
    /// Letter, event id and timestamp of the three messages.
    messages: Vec<(char, String, u64)>,
}

async fn membership(raw: &Raw, room: &str, action: &str, body: Value) {
    let res = raw
        .json("POST", &format!("{V3}/rooms/{}/{action}", enc(room)), body)
        .await;
    expect_ok(res, action);
}

async fn first_change(alice: &Raw, bob: &Raw, bob_id: &str, room: &str, history: History) {
    let target = json!({ "user_id": bob_id });
    match history {
        History::Never => {}
        History::InviteRejected | History::InviteWithdrawn => {
            membership(alice, room, "invite", target).await
        }
        History::BannedBeforeJoining => membership(alice, room, "ban", target).await,
        History::KnockRescinded => {
            let res = bob
                .json("POST", &format!("{V3}/knock/{}", enc(room)), json!({}))
                .await;
            expect_ok(res, "knock");
        }
        History::JoinedThenLeft | History::Joined => {
            expect_ok(join(bob, room).await, "join");
        }
    }
}

async fn last_change(alice: &Raw, bob: &Raw, bob_id: &str, room: &str, history: History) {
    match history {
        History::InviteRejected | History::KnockRescinded | History::JoinedThenLeft => {
            membership(bob, room, "leave", json!({})).await
        }
        History::InviteWithdrawn => {
            membership(alice, room, "kick", json!({ "user_id": bob_id })).await
        }
        _ => {}
    }
}

async fn play(
    alice: &Raw,
    bob: &Raw,
    bob_id: &str,
    visibility: &str,
    history: History,
) -> Scenario {
    let room = create_room(
        alice,
        json!({
            "initial_state": [
                { "type": "m.room.history_visibility", "state_key": "", "content": { "history_visibility": visibility } },
                { "type": "m.room.join_rules", "state_key": "", "content": { "join_rule": history.join_rule() } },
            ]
        }),
    )
    .await;
    let mut messages = Vec::new();
    messages.push(message(alice, &room, 'B', "before").await);
    first_change(alice, bob, bob_id, &room, history).await;
    messages.push(message(alice, &room, 'D', "during").await);
    last_change(alice, bob, bob_id, &room, history).await;
    messages.push(message(alice, &room, 'A', "after").await);
    Scenario { room, messages }
}

async fn message(alice: &Raw, room: &str, letter: char, body: &str) -> (char, String, u64) {
    let id = send_text(alice, room, body, body).await;
    let path = format!("{V3}/rooms/{}/event/{}", enc(room), enc(&id));
    let event = expect_ok(alice.call("GET", &path, None).await, "alice reads");
    let ts = event["origin_server_ts"].as_u64().expect("ts");
    (letter, id, ts)
}

fn letters(bodies: impl IntoIterator<Item = String>) -> String {
    let set: BTreeSet<char> = bodies
        .into_iter()
        .filter_map(|b| match b.as_str() {
            "before" => Some('B'),
            "during" => Some('D'),
            "after" => Some('A'),
            _ => None,
        })
        .collect();
    "BDA".chars().filter(|c| set.contains(c)).collect()
}

/// Asks every read endpoint and checks each against the expected answer.
async fn check(bob: &Raw, sc: &Scenario, history: History, visibility: &str, expected: &str) {
    let case = format!("{history:?} / {visibility}");
    let room = enc(&sc.room);
    let closed = expected == "-";
    let readable = if closed { "" } else { expected };

    let (status, body) = bob
        .call(
            "GET",
            &format!("{V3}/rooms/{room}/messages?dir=b&limit=100"),
            None,
        )
        .await;
    if closed {
        assert_eq!(status, 403, "{case}: /messages {body}");
    } else {
        assert_eq!(status, 200, "{case}: /messages {body}");
        assert_eq!(
            letters(text_bodies(&body["chunk"])),
            readable,
            "{case}: /messages"
        );
    }

    for (letter, id, _) in &sc.messages {
        let visible = readable.contains(*letter);
        let (status, body) = bob
            .call("GET", &format!("{V3}/rooms/{room}/event/{}", enc(id)), None)
            .await;
        assert_eq!(
            status == 200,
            visible,
            "{case}: /event {letter}: {status} {body}"
        );
        let (status, body) = bob
            .call(
                "GET",
                &format!("{V3}/rooms/{room}/context/{}?limit=10", enc(id)),
                None,
            )
            .await;
        assert_eq!(
            status == 200,
            visible,
            "{case}: /context {letter}: {status} {body}"
        );
        if visible {
            let mut seen = text_bodies(&body["events_before"]);
            seen.extend(text_bodies(&body["events_after"]));
            seen.extend(body["event"]["content"]["body"].as_str().map(str::to_owned));
            let seen = letters(seen);
            assert!(
                seen.chars().all(|c| readable.contains(c)),
                "{case}: /context {letter} shows {seen}"
            );
        }
    }

    // The earliest event at or after each message's time, as Bob may see.
    for (letter, _, ts) in &sc.messages {
        let (status, body) = bob
            .call(
                "GET",
                &format!("/_matrix/client/v1/rooms/{room}/timestamp_to_event?ts={ts}&dir=f"),
                None,
            )
            .await;
        if closed {
            assert_eq!(status, 403, "{case}: timestamp_to_event {body}");
        } else if status == 200 {
            let found = body["event_id"].as_str().unwrap_or_default();
            let hidden = sc
                .messages
                .iter()
                .any(|(l, i, _)| i == found && !readable.contains(*l));
            assert!(
                !hidden,
                "{case}: timestamp_to_event {letter} found a hidden event"
            );
        }
    }

    let state_readable = !closed && (visibility == "world_readable" || history.was_joined());
    for path in ["state", "members"] {
        let (status, body) = bob
            .call("GET", &format!("{V3}/rooms/{room}/{path}"), None)
            .await;
        let want = if state_readable { 200 } else { 403 };
        assert_eq!(status, want, "{case}: /{path} {body}");
    }
    let joined_readable =
        !closed && (visibility == "world_readable" || matches!(history, History::Joined));
    let (status, body) = bob
        .call("GET", &format!("{V3}/rooms/{room}/joined_members"), None)
        .await;
    assert_eq!(
        status == 200,
        joined_readable,
        "{case}: /joined_members {status} {body}"
    );

    check_sync(bob, sc, history, &case, readable).await;
}

async fn check_sync(bob: &Raw, sc: &Scenario, history: History, case: &str, readable: &str) {
    let filter = json!({ "room": { "include_leave": true, "timeline": { "limit": 50 } } });
    let path = format!("{V3}/sync?filter={}", enc(&filter.to_string()));
    let body = expect_ok(bob.call("GET", &path, None).await, "sync");
    let rooms = &body["rooms"];
    let section = ["join", "leave", "invite", "knock"]
        .into_iter()
        .find(|s| rooms[s].get(sc.room.as_str()).is_some());
    if matches!(history, History::Never) {
        assert_eq!(section, None, "{case}: /sync shows a room never entered");
        return;
    }
    let section = section.unwrap_or_else(|| panic!("{case}: room missing from /sync: {body}"));
    let room = &rooms[section][sc.room.as_str()];
    let shown = letters(text_bodies(&room["timeline"]["events"]));
    let want: String = readable
        .chars()
        .filter(|c| history.before_last_change().contains(*c))
        .collect();
    assert_eq!(shown, want, "{case}: /sync timeline ({section})");
    if !history.was_joined() {
        let state = room["state"]["events"].as_array().map_or(0, Vec::len);
        assert_eq!(
            state, 0,
            "{case}: /sync gives state of a room never joined: {room}"
        );
    }
}

#[tokio::test]
async fn every_visibility_against_every_membership_history() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;
    // A fresh Bob per history: his other rooms never blur the answers.
    for (history, row) in TABLE {
        let (bob, bob_id) = anon
            .register(&format!("bob{history:?}").to_lowercase())
            .await;
        for (visibility, expected) in VISIBILITIES.into_iter().zip(row) {
            let sc = play(&alice, &bob, &bob_id, visibility, history).await;
            check(&bob, &sc, history, visibility, expected).await;
        }
    }
}
