//! Whole-server test driven by the real `matrix-sdk` client: registration
//! through user-interactive auth, login on a second device, whoami, rooms,
//! invites, joins, messages seen through `/sync`, back-pagination with
//! `/messages`, unread and highlight counts from push rules cleared by a read
//! receipt, display names mirrored into member events, leaving and logging
//! out.

use crate::common;

use std::time::Duration;

use matrix_sdk::config::SyncSettings;
use matrix_sdk::deserialized_responses::TimelineEvent;
use matrix_sdk::room::MessagesOptions;
use matrix_sdk::ruma::api::client::receipt::create_receipt::v3::ReceiptType;
use matrix_sdk::ruma::api::client::room::create_room;
use matrix_sdk::ruma::api::error::ErrorKind;
use matrix_sdk::ruma::events::receipt::ReceiptThread;
use matrix_sdk::ruma::events::room::member::MembershipState;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::events::Mentions;
use matrix_sdk::ruma::{EventId, OwnedEventId, RoomId, UInt, UserId};
use matrix_sdk::sync::SyncResponse;
use matrix_sdk::{Client, RoomState};
use serde_json::Value;

use common::TestServer;

const PASSWORD: &str = "correct horse battery staple";

/// How many `/sync` round trips a test waits for something before failing.
const MAX_SYNCS: usize = 50;

fn sync_settings() -> SyncSettings {
    SyncSettings::default().timeout(Duration::from_millis(500))
}

async fn sync(client: &Client, who: &str) -> SyncResponse {
    client
        .sync_once(sync_settings())
        .await
        .unwrap_or_else(|e| panic!("{who}: sync_once failed: {e:?}"))
}

async fn new_client(server: &TestServer) -> Client {
    Client::builder()
        .homeserver_url(&server.base_url)
        .build()
        .await
        .expect("build matrix-sdk client")
}

/// Registers `name` through UIA (`common::sdk::register` checks the 401
/// with its `m.login.dummy` flow and session) and checks the result.
async fn register(server: &TestServer, name: &str) -> Client {
    let client = common::sdk::register(server, name, PASSWORD).await;
    let expected = format!("@{name}:localhost");
    assert_eq!(
        client.user_id().map(|u| u.as_str().to_owned()),
        Some(expected),
        "matrix-sdk should be logged in as the new user after register"
    );
    assert!(client.device_id().is_some(), "register: device id missing");
    client
}

fn event_json(event: &TimelineEvent) -> Value {
    serde_json::from_str(event.raw().json().get()).expect("timeline event is JSON")
}

fn event_type(event: &Value) -> &str {
    event["type"].as_str().unwrap_or("")
}

/// Syncs `client` until the event `event_id` shows up in the joined timeline
/// of `room_id`; returns it.
async fn wait_for_event(
    client: &Client,
    who: &str,
    room_id: &RoomId,
    event_id: &EventId,
) -> TimelineEvent {
    for _ in 0..MAX_SYNCS {
        let response = sync(client, who).await;
        if let Some(room) = response.rooms.joined.get(room_id) {
            if let Some(event) = room
                .timeline
                .events
                .iter()
                .find(|e| e.event_id().as_deref() == Some(event_id))
            {
                return event.clone();
            }
        }
    }
    panic!("{who}: event {event_id} never arrived in {room_id} via /sync after {MAX_SYNCS} syncs");
}

/// Syncs `client` until `user`'s membership in `room_id`, as the client's
/// store sees it, satisfies `check`.
async fn wait_for_member(
    client: &Client,
    who: &str,
    room_id: &RoomId,
    user: &UserId,
    what: &str,
    check: impl Fn(&MembershipState, Option<&str>) -> bool,
) {
    let mut last = None;
    for _ in 0..MAX_SYNCS {
        sync(client, who).await;
        let room = client
            .get_room(room_id)
            .unwrap_or_else(|| panic!("{who}: room {room_id} unknown to the client"));
        if let Some(member) = room
            .get_member_no_sync(user)
            .await
            .expect("read member from store")
        {
            let membership = member.membership().clone();
            let name = member.display_name().map(str::to_owned);
            if check(&membership, name.as_deref()) {
                return;
            }
            last = Some((membership, name));
        }
    }
    panic!("{who}: never saw {user} {what} in {room_id}; last seen member state: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_login_rooms_messages_history_profile_leave_logout() {
    common::init_logging();
    let server = common::start().await;

    // --- Registration (UIA) and whoami ---------------------------------
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let alice_id = alice.user_id().expect("alice user id").to_owned();
    let bob_id = bob.user_id().expect("bob user id").to_owned();

    let who = alice.whoami().await.expect("alice whoami");
    assert_eq!(who.user_id, alice_id, "whoami user id");
    assert_eq!(
        who.device_id.as_deref(),
        alice.device_id(),
        "whoami device id must be the registered device"
    );

    // --- Login on a second device ----------------------------------------
    let wrong = new_client(&server).await;
    let err = wrong
        .matrix_auth()
        .login_username("alice", "not the password")
        .send()
        .await
        .expect_err("login with a wrong password must fail");
    assert!(
        matches!(err.client_api_error_kind(), Some(ErrorKind::Forbidden)),
        "wrong password must be M_FORBIDDEN, got {err:?}"
    );

    let alice2 = new_client(&server).await;
    let login = alice2
        .matrix_auth()
        .login_username("alice", PASSWORD)
        .initial_device_display_name("alice's laptop")
        .send()
        .await
        .expect("alice logs in on a second device");
    assert_eq!(login.user_id, alice_id, "login user id");
    assert_ne!(
        Some(&*login.device_id),
        alice.device_id(),
        "a new login must get a new device"
    );
    let who2 = alice2.whoami().await.expect("alice2 whoami");
    assert_eq!(who2.user_id, alice_id);
    assert_eq!(who2.device_id.as_ref(), Some(&login.device_id));

    // Initial syncs.
    sync(&alice, "alice").await;
    sync(&bob, "bob").await;
    sync(&alice2, "alice2").await;

    // --- Alice creates a room and invites Bob ----------------------------
    let mut create = create_room::v3::Request::new();
    create.name = Some("Tea party".to_owned());
    let room = alice
        .create_room(create)
        .await
        .expect("alice creates a room");
    let room_id = room.room_id().to_owned();
    room.invite_user_by_id(&bob_id)
        .await
        .expect("alice invites bob");

    // Bob sees the invite via sync.
    let mut invited = false;
    for _ in 0..MAX_SYNCS {
        let response = sync(&bob, "bob").await;
        if response.rooms.invited.contains_key(&room_id) {
            invited = true;
            break;
        }
    }
    assert!(invited, "bob never saw the invite to {room_id} in /sync");
    let bob_room = bob.get_room(&room_id).expect("bob knows the invited room");
    assert_eq!(bob_room.state(), RoomState::Invited);
    let invite = bob_room.invite_details().await.expect("invite details");
    assert_eq!(invite.inviter_id, alice_id, "inviter of bob's invite");
    assert_eq!(
        bob_room.name().as_deref(),
        Some("Tea party"),
        "the invite's stripped state should carry the room name"
    );

    // Bob joins.
    let bob_room = bob.join_room_by_id(&room_id).await.expect("bob joins");
    assert_eq!(bob_room.state(), RoomState::Joined);

    // Alice sees Bob's join.
    wait_for_member(&alice, "alice", &room_id, &bob_id, "join", |m, _| {
        *m == MembershipState::Join
    })
    .await;

    // --- Messages both ways, seen through /sync ---------------------------
    let hello = room
        .send(RoomMessageEventContent::text_plain("Hello Bob"))
        .await
        .expect("alice sends a message")
        .response
        .event_id;
    let seen = wait_for_event(&bob, "bob", &room_id, &hello).await;
    let json = event_json(&seen);
    assert_eq!(event_type(&json), "m.room.message", "{json}");
    assert_eq!(json["sender"], alice_id.as_str(), "{json}");
    assert_eq!(json["content"]["body"], "Hello Bob", "{json}");

    let reply = bob_room
        .send(RoomMessageEventContent::text_plain("Hi Alice"))
        .await
        .expect("bob sends a message")
        .response
        .event_id;
    let seen = wait_for_event(&alice, "alice", &room_id, &reply).await;
    let json = event_json(&seen);
    assert_eq!(event_type(&json), "m.room.message", "{json}");
    assert_eq!(json["sender"], bob_id.as_str(), "{json}");
    assert_eq!(json["content"]["body"], "Hi Alice", "{json}");

    // Alice's second device sees the room and the messages as well.
    wait_for_event(&alice2, "alice2", &room_id, &reply).await;

    // --- History: 30 messages, paginated backwards ------------------------
    const N: usize = 30;
    let mut sent: Vec<(OwnedEventId, String)> = Vec::new();
    for i in 0..N {
        let body = format!("history {i:02}");
        let id = room
            .send(RoomMessageEventContent::text_plain(body.clone()))
            .await
            .unwrap_or_else(|e| panic!("alice sends {body}: {e:?}"))
            .response
            .event_id;
        sent.push((id, body));
    }
    let unique: std::collections::HashSet<_> = sent.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(unique.len(), N, "every send must get its own event id");

    let mut newest_first: Vec<Value> = Vec::new();
    let mut token: Option<String> = None;
    let mut reached_start = false;
    for page in 0..100 {
        let mut options = MessagesOptions::backward().from(token.as_deref());
        options.limit = UInt::from(7u32);
        let messages = room
            .messages(options)
            .await
            .unwrap_or_else(|e| panic!("/messages page {page}: {e:?}"));
        assert!(
            messages.chunk.len() <= 7,
            "/messages returned {} events with limit 7",
            messages.chunk.len()
        );
        newest_first.extend(messages.chunk.iter().map(event_json));
        match messages.end {
            Some(end) if !messages.chunk.is_empty() => {
                assert_ne!(
                    Some(&end),
                    token.as_ref(),
                    "/messages `end` must move on from `from`"
                );
                token = Some(end);
            }
            _ => {
                reached_start = true;
                break;
            }
        }
    }
    assert!(
        reached_start,
        "back-pagination never reached the start of the room"
    );

    let ids: Vec<&str> = newest_first
        .iter()
        .map(|e| {
            e["event_id"]
                .as_str()
                .expect("paginated event has an event_id")
        })
        .collect();
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(
        distinct.len(),
        ids.len(),
        "pagination returned duplicates: {ids:?}"
    );

    // Newest first: the first event is the last history message.
    assert_eq!(
        ids.first().copied(),
        Some(sent[N - 1].0.as_str()),
        "backward pagination without `from` must start at the newest event"
    );
    // The oldest event is the room's creation.
    let oldest = newest_first.last().expect("pagination returned events");
    assert_eq!(
        event_type(oldest),
        "m.room.create",
        "the last event paginated back to must be m.room.create, got {oldest}"
    );

    let messages_chronological: Vec<(String, String)> = newest_first
        .iter()
        .rev()
        .filter(|e| event_type(e) == "m.room.message")
        .map(|e| {
            (
                e["event_id"].as_str().unwrap_or_default().to_owned(),
                e["content"]["body"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let mut expected: Vec<(String, String)> = vec![
        (hello.to_string(), "Hello Bob".to_owned()),
        (reply.to_string(), "Hi Alice".to_owned()),
    ];
    expected.extend(sent.iter().map(|(id, body)| (id.to_string(), body.clone())));
    assert_eq!(
        messages_chronological, expected,
        "back-paginated messages (in chronological order) must be exactly what was sent"
    );

    // --- Unread counts from push rules, as matrix-sdk reads them ----------
    // Bob's own reply read "Hello Bob"; the history is unread.
    let bob_room = bob.get_room(&room_id).expect("bob knows the room");
    wait_for_event(&bob, "bob", &room_id, &sent[N - 1].0).await;
    let counts = bob_room.unread_notification_counts();
    assert_eq!(
        (counts.notification_count, counts.highlight_count),
        (N as u64, 0),
        "bob's unread counts after {N} messages"
    );
    let mention = room
        .send(
            RoomMessageEventContent::text_plain("Bob, have a look")
                .add_mentions(Mentions::with_user_ids([bob_id.clone()])),
        )
        .await
        .expect("alice mentions bob")
        .response
        .event_id;
    wait_for_event(&bob, "bob", &room_id, &mention).await;
    let counts = bob_room.unread_notification_counts();
    assert_eq!(
        (counts.notification_count, counts.highlight_count),
        (N as u64 + 1, 1),
        "bob's unread counts after a mention"
    );
    bob_room
        .send_single_receipt(ReceiptType::Read, ReceiptThread::Unthreaded, mention)
        .await
        .expect("bob sends a read receipt");
    let mut cleared = false;
    for _ in 0..MAX_SYNCS {
        sync(&bob, "bob").await;
        let counts = bob_room.unread_notification_counts();
        if (counts.notification_count, counts.highlight_count) == (0, 0) {
            cleared = true;
            break;
        }
    }
    assert!(
        cleared,
        "bob's read receipt never cleared his unread counts"
    );

    // The state events of the room's creation are all there, in order.
    let types_chronological: Vec<&str> = newest_first.iter().rev().map(event_type).collect();
    let member_join_bob = newest_first.iter().any(|e| {
        event_type(e) == "m.room.member"
            && e["state_key"] == bob_id.as_str()
            && e["content"]["membership"] == "join"
    });
    assert!(
        member_join_bob,
        "bob's join missing from history: {types_chronological:?}"
    );
    for needed in ["m.room.power_levels", "m.room.join_rules", "m.room.name"] {
        assert!(
            types_chronological.contains(&needed),
            "{needed} missing from history: {types_chronological:?}"
        );
    }

    // --- Display name, mirrored into the member event ---------------------
    alice
        .account()
        .set_display_name(Some("Alice Liddell"))
        .await
        .expect("alice sets her display name");
    assert_eq!(
        alice
            .account()
            .get_display_name()
            .await
            .expect("alice reads her display name")
            .as_deref(),
        Some("Alice Liddell"),
        "profile display name"
    );
    wait_for_member(
        &bob,
        "bob",
        &room_id,
        &alice_id,
        "named Alice Liddell",
        |m, name| *m == MembershipState::Join && name == Some("Alice Liddell"),
    )
    .await;
    let member = bob_room
        .get_member(&alice_id)
        .await
        .expect("bob reads alice's member info")
        .expect("alice is a member");
    assert_eq!(member.display_name(), Some("Alice Liddell"));
    assert_eq!(member.name(), "Alice Liddell");

    // --- Bob leaves; Alice sees it ----------------------------------------
    bob_room.leave().await.expect("bob leaves");
    let mut left = false;
    for _ in 0..MAX_SYNCS {
        let response = sync(&bob, "bob").await;
        if response.rooms.left.contains_key(&room_id) {
            left = true;
            break;
        }
    }
    assert!(left, "bob's /sync never listed {room_id} under rooms.leave");
    assert_eq!(
        bob.get_room(&room_id)
            .expect("bob still knows the room")
            .state(),
        RoomState::Left
    );
    wait_for_member(&alice, "alice", &room_id, &bob_id, "leave", |m, _| {
        *m == MembershipState::Leave
    })
    .await;
    let joined = room
        .members_no_sync(matrix_sdk::RoomMemberships::JOIN)
        .await
        .expect("alice reads members");
    let joined: Vec<_> = joined.iter().map(|m| m.user_id().to_owned()).collect();
    assert_eq!(joined, vec![alice_id.clone()], "only alice is still joined");

    // --- Logout ------------------------------------------------------------
    alice2
        .matrix_auth()
        .logout()
        .await
        .expect("alice logs out her second device");
    let err = alice2
        .whoami()
        .await
        .expect_err("whoami with a logged-out token must fail");
    assert!(
        matches!(
            err.client_api_error_kind(),
            Some(ErrorKind::UnknownToken(_))
        ),
        "expected M_UNKNOWN_TOKEN after logout, got {err:?}"
    );
    let who = alice
        .whoami()
        .await
        .expect("alice's first device is still logged in");
    assert_eq!(who.device_id.as_deref(), alice.device_id());
}
