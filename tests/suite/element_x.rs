//! Matrix OS driven by matrix-sdk-ui 0.18 as Element X drives a server:
//! a client that discovers simplified sliding sync in `/versions`, a
//! `SyncService` with its `RoomListService` and encryption sync, the room
//! list Element X shows (non-left rooms, sorted by the SDK) and `Timeline`s.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use matrix_sdk::config::SyncSettings;
use matrix_sdk::ruma::api::client::room::create_room;
use matrix_sdk::ruma::events::room::encryption::RoomEncryptionEventContent;
use matrix_sdk::ruma::events::room::message::{
    OriginalSyncRoomMessageEvent, RoomMessageEventContent,
};
use matrix_sdk::ruma::events::InitialStateEvent;
use matrix_sdk::sliding_sync::VersionBuilder;
use matrix_sdk::{Client, RoomState};
use matrix_sdk_ui::eyeball_im::{Vector, VectorDiff};
use matrix_sdk_ui::room_list_service::filters::new_filter_non_left;
use matrix_sdk_ui::room_list_service::RoomListItem;
use matrix_sdk_ui::sync_service::{State, SyncService};
use matrix_sdk_ui::timeline::{RoomExt, Timeline};
use serde_json::json;

use crate::common::rooms::{invite, join, send_text};
use crate::common::{create_room, enc, expect_ok, start, start_with, Raw, TestServer, V3};

/// How long the client may take to show something the server has.
const PATIENCE: Duration = Duration::from_secs(60);

/// A client as Element X builds it: sliding sync discovered, not assumed.
async fn element_x(server: &TestServer, name: &str) -> Client {
    let client = Client::builder()
        .homeserver_url(&server.base_url)
        .sliding_sync_version_builder(VersionBuilder::DiscoverNative)
        .build()
        .await
        .expect("the server offers simplified sliding sync");
    client
        .matrix_auth()
        .login_username(name, "secret-pw")
        .send()
        .await
        .expect("login");
    client.event_cache().subscribe().expect("event cache");
    client
}

async fn running(client: &Client) -> SyncService {
    let service = SyncService::builder(client.clone())
        .build()
        .await
        .expect("sync service");
    start_and_wait(&service).await;
    service
}

async fn start_and_wait(service: &SyncService) {
    let mut states = service.state();
    service.start().await;
    tokio::time::timeout(PATIENCE, async {
        loop {
            if matches!(states.get(), State::Running) {
                return;
            }
            states.next().await.expect("state stream");
        }
    })
    .await
    .expect("the sync service reaches Running");
}

/// Applies the list's diffs until `pred` holds on it.
async fn list_until<S>(
    stream: &mut S,
    items: &mut Vector<RoomListItem>,
    what: &str,
    pred: impl Fn(&Vector<RoomListItem>) -> bool,
) where
    S: Stream<Item = Vec<VectorDiff<RoomListItem>>> + Unpin,
{
    let waited = tokio::time::timeout(PATIENCE, async {
        while !pred(items) {
            for diff in stream.next().await.expect("room list stream") {
                diff.apply(items);
            }
        }
    })
    .await;
    let ids: Vec<String> = items.iter().map(|r| r.room_id().to_string()).collect();
    waited.unwrap_or_else(|_| panic!("{what}: the room list stayed {ids:?}"));
}

/// Polls `check` until it holds.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, check: impl Fn() -> F) {
    let waited = tokio::time::timeout(PATIENCE, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("{what}: never happened"));
}

/// The message bodies a timeline shows, oldest first.
async fn bodies(timeline: &Timeline) -> Vec<String> {
    timeline
        .items()
        .await
        .iter()
        .filter_map(|item| item.as_event())
        .filter_map(|event| event.content().as_message().map(|m| m.body().to_owned()))
        .collect()
}

fn room_of(client: &Client, id: &str) -> Option<matrix_sdk::Room> {
    client.get_room(&matrix_sdk::ruma::OwnedRoomId::try_from(id).expect("room id"))
}

fn contains(items: &Vector<RoomListItem>, room: &str) -> bool {
    items.iter().any(|r| r.room_id().as_str() == room)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn element_x_room_list_and_timelines_follow_the_server() {
    crate::common::init_logging();
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("ex_alice").await;
    let (bob, bob_id) = raw.register("ex_bob").await;
    crate::common::set_displayname(&bob, &bob_id, "Bob Builder").await;
    const ROOMS: usize = 250;
    let mut rooms = Vec::new();
    for i in 0..ROOMS {
        let body = json!({ "preset": "public_chat", "name": format!("Room {i:03}") });
        rooms.push(create_room(&alice, body).await);
    }
    let history = &rooms[0];
    for i in 0..30 {
        send_text(&alice, history, &format!("h{i}"), &format!("history {i}")).await;
    }
    let (_, already) = alice.call("GET", &format!("{V3}/joined_rooms"), None).await;
    let joined = already["joined_rooms"].as_array().expect("joined").len();

    let client = element_x(&server, "ex_alice").await;
    let sync = running(&client).await;
    let room_list_service = sync.room_list_service();
    let all = room_list_service.all_rooms().await.expect("all rooms");
    let (stream, controller) = all.entries_with_dynamic_adapters(1000);
    let mut stream = Box::pin(stream);
    controller.set_filter(Box::new(new_filter_non_left()));
    let mut items = Vector::new();
    list_until(&mut stream, &mut items, "every room listed", |items| {
        items.len() == joined
    })
    .await;
    assert!(joined >= ROOMS);

    // A message from someone else moves its room to the top.
    let target = &rooms[100];
    expect_ok(join(&bob, target).await, "bob joins");
    send_text(&bob, target, "top", "to the top").await;
    list_until(&mut stream, &mut items, "the room moves up", |items| {
        items
            .front()
            .is_some_and(|r| r.room_id().as_str() == target)
    })
    .await;
    let room = room_of(&client, target).expect("room");
    // Opening a room, Element X subscribes to it for a longer timeline.
    room_list_service
        .subscribe_to_rooms(&[room.room_id()])
        .await;
    let timeline = room.timeline().await.expect("timeline");
    eventually("the new message shows", || async {
        bodies(&timeline).await.last().map(String::as_str) == Some("to the top")
    })
    .await;

    // Name, topic changes show.
    let state = |kind: &str| format!("{V3}/rooms/{}/state/{kind}/", enc(target));
    expect_ok(
        alice
            .json("PUT", &state("m.room.name"), json!({ "name": "Renamed" }))
            .await,
        "n",
    );
    expect_ok(
        alice
            .json(
                "PUT",
                &state("m.room.topic"),
                json!({ "topic": "New topic" }),
            )
            .await,
        "t",
    );
    eventually("name and topic change", || async {
        room.cached_display_name().map(|n| n.to_string()).as_deref() == Some("Renamed")
            && room.topic().as_deref() == Some("New topic")
    })
    .await;

    // An invite to a direct chat appears; accepted, it is named after Bob
    // (its heroes).
    let dm = create_room(
        &bob,
        json!({ "is_direct": true, "preset": "trusted_private_chat" }),
    )
    .await;
    invite(&bob, &dm, &alice_id).await;
    list_until(&mut stream, &mut items, "the invite shows", |items| {
        contains(items, &dm)
    })
    .await;
    let dm_room = room_of(&client, &dm).expect("dm");
    assert_eq!(dm_room.state(), RoomState::Invited);
    dm_room.join().await.expect("accept the invite");
    eventually("the direct chat is named after Bob", || async {
        dm_room.state() == RoomState::Joined
            && dm_room
                .cached_display_name()
                .map(|n| n.to_string())
                .as_deref()
                == Some("Bob Builder")
    })
    .await;
    // Another invite, rejected: it leaves the list.
    let declined = create_room(&bob, json!({})).await;
    invite(&bob, &declined, &alice_id).await;
    list_until(
        &mut stream,
        &mut items,
        "the second invite shows",
        |items| contains(items, &declined),
    )
    .await;
    let declined_room = room_of(&client, &declined).expect("room");
    declined_room.leave().await.expect("reject");
    list_until(
        &mut stream,
        &mut items,
        "the rejected invite goes",
        |items| !contains(items, &declined),
    )
    .await;
    // Leaving a room removes it.
    let left = &rooms[5];
    room_of(&client, left)
        .expect("room")
        .leave()
        .await
        .expect("leave");
    list_until(&mut stream, &mut items, "the left room goes", |items| {
        !contains(items, left)
    })
    .await;

    // Opening an older room: back-pagination reaches its creation.
    let old = room_of(&client, history).expect("room");
    room_list_service.subscribe_to_rooms(&[old.room_id()]).await;
    let old_timeline = old.timeline().await.expect("timeline");
    // The subscription's longer timeline arrives first, then the person
    // scrolls up.
    eventually("the opened room shows its latest messages", || async {
        bodies(&old_timeline).await.len() >= 15
    })
    .await;
    let mut reached_start = false;
    for _ in 0..20 {
        if old_timeline.paginate_backwards(20).await.expect("paginate") {
            reached_start = true;
            break;
        }
    }
    assert!(reached_start, "back-pagination reaches the start");
    // The timeline applies the event cache's updates on a task of its own:
    // the last page's moves may land just after the pagination returns.
    let expected: Vec<String> = (0..30).map(|i| format!("history {i}")).collect();
    let in_order = async {
        while bodies(&old_timeline).await != expected {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let _ = tokio::time::timeout(PATIENCE, in_order).await;
    let shown = bodies(&old_timeline).await;
    assert_eq!(shown, expected, "every message, in order, once");

    // Messages sent while the client is stopped come without a gap to the
    // room that is open (subscribed again as Element X does on opening it).
    room_list_service
        .subscribe_to_rooms(&[room.room_id()])
        .await;
    sync.stop().await;
    for i in 0..3 {
        send_text(
            &bob,
            target,
            &format!("away{i}"),
            &format!("while away {i}"),
        )
        .await;
    }
    start_and_wait(&sync).await;
    eventually("messages from while away show", || async {
        bodies(&timeline).await.ends_with(&[
            "to the top".to_owned(),
            "while away 0".to_owned(),
            "while away 1".to_owned(),
            "while away 2".to_owned(),
        ])
    })
    .await;

    sync.stop().await;
}

// The server answers an expired position after a short pause: answered at
// once, the room list sync's failure could stop the sync service before its
// encryption sync had started, which then ran alone and the room list never
// synced again (a race in matrix-sdk-ui 0.18, seen here one run in two).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn element_x_recovers_when_the_server_forgets_its_connection() {
    crate::common::init_logging();
    let server = start_with(|c| c.sliding_sync_connection_expiry_secs = 10).await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("exr_alice").await;
    let (bob, _) = raw.register("exr_bob").await;
    let target = create_room(&alice, json!({ "preset": "public_chat", "name": "Kept" })).await;
    expect_ok(join(&bob, &target).await, "bob joins");
    send_text(&bob, &target, "first", "before the expiry").await;
    let client = element_x(&server, "exr_alice").await;
    let sync = running(&client).await;
    let room_list_service = sync.room_list_service();
    eventually("the room is listed", || async {
        room_of(&client, &target).is_some_and(|r| r.state() == RoomState::Joined)
    })
    .await;
    let room = room_of(&client, &target).expect("room");
    room_list_service
        .subscribe_to_rooms(&[room.room_id()])
        .await;
    let timeline = room.timeline().await.expect("timeline");
    eventually("the message shows", || async {
        bodies(&timeline)
            .await
            .contains(&"before the expiry".to_owned())
    })
    .await;

    // The server forgets the connection (unused past its expiry): the
    // client is told M_UNKNOWN_POS, and once started again it is back.
    sync.stop().await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    send_text(&bob, &target, "after", "after the expiry").await;
    let mut states = sync.state();
    sync.start().await;
    // Element X starts the service again whenever it stopped running.
    let mut broke = false;
    let recovered = tokio::time::timeout(PATIENCE, async {
        loop {
            match states.get() {
                State::Running => {
                    let last = bodies(&timeline).await.last().cloned();
                    if last.as_deref() == Some("after the expiry") {
                        return;
                    }
                }
                State::Offline => {}
                _ => {
                    broke = true;
                    sync.start().await;
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), states.next()).await;
        }
    })
    .await;
    recovered.expect("the client recovers from a forgotten connection");
    assert!(
        broke,
        "the forgotten connection stopped the sync (M_UNKNOWN_POS)"
    );
    sync.stop().await;
}

#[tokio::test]
async fn a_server_without_sliding_sync_is_refused_by_element_x() {
    let server = start_with(|c| c.sliding_sync = false).await;
    let built = Client::builder()
        .homeserver_url(&server.base_url)
        .sliding_sync_version_builder(VersionBuilder::DiscoverNative)
        .build()
        .await;
    assert!(
        built.is_err(),
        "Element X must refuse a server without the flag"
    );
    let served = start().await;
    let client = Client::builder()
        .homeserver_url(&served.base_url)
        .sliding_sync_version_builder(VersionBuilder::DiscoverNative)
        .build()
        .await;
    assert!(client.is_ok(), "and accept one with it");
}

/// Bob on a classic `/sync` client: every message body he can read.
async fn classic_bob(server: &TestServer) -> (Client, Arc<Mutex<Vec<String>>>) {
    let bob = crate::common::sdk::register(server, "exe_bob", "secret-pw").await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    bob.add_event_handler(move |event: OriginalSyncRoomMessageEvent| {
        let sink = sink.clone();
        async move {
            sink.lock()
                .expect("lock")
                .push(event.content.body().to_owned());
        }
    });
    let syncing = bob.clone();
    tokio::spawn(async move {
        let _ = syncing
            .sync(SyncSettings::default().timeout(Duration::from_secs(5)))
            .await;
    });
    (bob, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn element_x_talks_in_encrypted_rooms_and_keeps_counts_tags_and_typing() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice_web, alice_id) = raw.register("exe_alice").await;
    let (bob, bob_seen) = classic_bob(&server).await;
    let alice = element_x(&server, "exe_alice").await;
    let sync = running(&alice).await;

    // Bob opens an encrypted direct chat with Alice.
    let mut create = create_room::v3::Request::new();
    create.invite = vec![alice_id.parse().expect("user id")];
    create.is_direct = true;
    create.initial_state = vec![InitialStateEvent::with_empty_state_key(
        RoomEncryptionEventContent::with_recommended_defaults(),
    )
    .to_raw_any()];
    let bob_room = bob.create_room(create).await.expect("bob creates the room");
    let room_id = bob_room.room_id().to_string();
    let all = sync
        .room_list_service()
        .all_rooms()
        .await
        .expect("all rooms");
    let (stream, controller) = all.entries_with_dynamic_adapters(100);
    let mut stream = Box::pin(stream);
    controller.set_filter(Box::new(new_filter_non_left()));
    let mut items = Vector::new();
    list_until(&mut stream, &mut items, "the invite shows", |items| {
        contains(items, &room_id)
    })
    .await;
    let room = room_of(&alice, &room_id).expect("room");
    room.join().await.expect("alice joins");
    eventually("the room is known as encrypted", || async {
        room.state() == RoomState::Joined && room.encryption_state().is_encrypted()
    })
    .await;
    sync.room_list_service()
        .subscribe_to_rooms(&[room.room_id()])
        .await;
    let timeline = room.timeline().await.expect("timeline");

    // Bob's message decrypts on Alice's side, hers on Bob's.
    eventually("bob sees alice joined", || async {
        bob_room
            .joined_user_ids()
            .await
            .is_ok_and(|ids| ids.len() == 2)
    })
    .await;
    bob_room
        .send(RoomMessageEventContent::text_plain("secret hello"))
        .await
        .expect("bob sends");
    eventually("alice reads bob's message", || async {
        bodies(&timeline).await.contains(&"secret hello".to_owned())
    })
    .await;
    timeline
        .send(RoomMessageEventContent::text_plain("secret reply").into())
        .await
        .expect("alice sends");
    eventually("the local echo becomes the remote echo", || async {
        timeline
            .items()
            .await
            .iter()
            .filter_map(|i| i.as_event())
            .any(|e| {
                e.content()
                    .as_message()
                    .is_some_and(|m| m.body() == "secret reply")
                    && e.is_remote_event()
            })
    })
    .await;
    eventually("bob reads alice's reply", || async {
        bob_seen
            .lock()
            .expect("lock")
            .contains(&"secret reply".to_owned())
    })
    .await;

    // Unread counts follow Bob's messages, and clear with a read receipt
    // sent from Alice's other device.
    let unread = bob_room
        .send(RoomMessageEventContent::text_plain("are you there?"))
        .await
        .expect("bob sends")
        .response
        .event_id;
    eventually("the message counts as unread", || async {
        room.num_unread_notifications() > 0
    })
    .await;
    let receipt = format!(
        "{V3}/rooms/{}/receipt/m.read/{}",
        enc(&room_id),
        enc(unread.as_str())
    );
    expect_ok(
        alice_web.json("POST", &receipt, json!({})).await,
        "read receipt",
    );
    eventually("the count clears", || async {
        room.num_unread_notifications() == 0
    })
    .await;

    // A tag set by Alice comes back through the account data extension.
    room.set_is_favourite(true, None).await.expect("favourite");
    eventually("the room is a favourite", || async { room.is_favourite() }).await;
    room.set_is_low_priority(true, None)
        .await
        .expect("low priority");
    eventually("and low priority", || async { room.is_low_priority() }).await;

    // Typing notifications reach Alice.
    let (_guard, mut typing) = room.subscribe_to_typing_notifications();
    bob_room.typing_notice(true).await.expect("typing");
    let typists = tokio::time::timeout(PATIENCE, typing.recv())
        .await
        .expect("typing arrives")
        .expect("typing stream");
    assert_eq!(
        typists.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec![bob.user_id().expect("bob").to_string()]
    );

    // A third device of Alice's, signed in now, reads what Bob sends next.
    let third = element_x(&server, "exe_alice").await;
    let third_sync = running(&third).await;
    eventually("the third device knows the room", || async {
        room_of(&third, &room_id).is_some_and(|r| r.state() == RoomState::Joined)
    })
    .await;
    let third_room = room_of(&third, &room_id).expect("room");
    third_sync
        .room_list_service()
        .subscribe_to_rooms(&[third_room.room_id()])
        .await;
    let third_timeline = third_room.timeline().await.expect("timeline");
    let third_device = third.device_id().expect("device").to_owned();
    eventually("bob learns of the third device", || async {
        let devices = bob
            .encryption()
            .get_user_devices(
                &alice_id
                    .parse::<matrix_sdk::ruma::OwnedUserId>()
                    .expect("id"),
            )
            .await;
        devices.is_ok_and(|d| d.get(&third_device).is_some())
    })
    .await;
    bob_room
        .send(RoomMessageEventContent::text_plain("for every device"))
        .await
        .expect("bob sends");
    eventually("the third device decrypts it", || async {
        bodies(&third_timeline)
            .await
            .contains(&"for every device".to_owned())
    })
    .await;
    eventually("and the first too", || async {
        bodies(&timeline)
            .await
            .contains(&"for every device".to_owned())
    })
    .await;
    third_sync.stop().await;
    sync.stop().await;
}
