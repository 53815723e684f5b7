//! End-to-end encryption between two real `matrix-sdk` clients with the olm
//! machine on: exercises `/keys/upload`, `/keys/query`, `/keys/claim`,
//! `/sendToDevice` and `to_device` / `device_lists` in `/sync`.

use crate::common;

use std::time::Duration;

use matrix_sdk::config::SyncSettings;
use matrix_sdk::deserialized_responses::{DecryptedRoomEvent, TimelineEvent, TimelineEventKind};
use matrix_sdk::ruma::api::client::room::create_room;
use matrix_sdk::ruma::events::room::encryption::RoomEncryptionEventContent;
use matrix_sdk::ruma::events::room::member::MembershipState;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::events::InitialStateEvent;
use matrix_sdk::ruma::{DeviceId, EventId, OwnedEventId, OwnedUserId, RoomId, UserId};
use matrix_sdk::sync::SyncResponse;
use matrix_sdk::{Client, Room, RoomState};
use serde_json::{json, Value};

use common::TestServer;

const PASSWORD: &str = "correct horse battery staple";

/// How many `/sync` round trips a test waits for something before failing.
const MAX_SYNCS: usize = 50;

fn sync_settings() -> SyncSettings {
    SyncSettings::default().timeout(Duration::from_millis(500))
}

/// One user's matrix-sdk client plus bookkeeping for diagnostics.
struct User {
    name: &'static str,
    client: Client,
    /// To-device events received through `/sync` so far.
    to_device_seen: usize,
}

impl User {
    fn user_id(&self) -> &UserId {
        self.client.user_id().expect("logged in")
    }

    fn device_id(&self) -> &DeviceId {
        self.client.device_id().expect("logged in")
    }

    async fn sync(&mut self) -> SyncResponse {
        let response = self
            .client
            .sync_once(sync_settings())
            .await
            .unwrap_or_else(|e| panic!("{}: sync_once failed: {e:?}", self.name));
        self.to_device_seen += response.to_device.len();
        response
    }

    fn room(&self, room_id: &RoomId) -> Room {
        self.client
            .get_room(room_id)
            .unwrap_or_else(|| panic!("{}: room {room_id} unknown to the client", self.name))
    }

    /// A raw HTTP client with this user's access token, for looking at what
    /// the server really stores.
    fn raw(&self, server: &TestServer) -> common::Raw {
        let token = self.client.access_token().expect("access token");
        common::Raw::new(server).with_token(&token)
    }
}

/// Registers through UIA (see `common::sdk::register`), checking that the
/// client came up with its olm machine.
async fn register(server: &TestServer, name: &'static str) -> User {
    let client = common::sdk::register(server, name, PASSWORD).await;
    assert!(
        client
            .encryption()
            .get_own_device()
            .await
            .expect("crypto store")
            .is_some(),
        "{name}: matrix-sdk has no olm machine after register"
    );
    User {
        name,
        client,
        to_device_seen: 0,
    }
}

/// Percent-encodes a path segment (room ids, event ids).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn find_event(
    response: &SyncResponse,
    room_id: &RoomId,
    event_id: &EventId,
) -> Option<TimelineEvent> {
    response
        .rooms
        .joined
        .get(room_id)?
        .timeline
        .events
        .iter()
        .find(|e| e.event_id().as_deref() == Some(event_id))
        .cloned()
}

/// Syncs `user` until `event_id` arrives in `room_id` and is decrypted.
///
/// If the event arrives before its room key (a later sync may bring the
/// to-device message), decryption is retried by fetching the event again.
/// Returns the decrypted event and whether the copy delivered by `/sync`
/// was already decrypted.
async fn wait_for_decrypted(
    user: &mut User,
    room_id: &RoomId,
    event_id: &EventId,
) -> (DecryptedRoomEvent, bool) {
    let mut seen: Option<TimelineEvent> = None;
    for _ in 0..MAX_SYNCS {
        let response = user.sync().await;
        if let Some(event) = find_event(&response, room_id, event_id) {
            match &event.kind {
                TimelineEventKind::Decrypted(decrypted) => return (decrypted.clone(), true),
                TimelineEventKind::PlainText { event } => panic!(
                    "{}: event {event_id} arrived in plain text in an encrypted room: {}",
                    user.name,
                    event.json().get()
                ),
                TimelineEventKind::UnableToDecrypt { .. } => {}
            }
            seen = Some(event);
        }
        if seen.is_some() {
            let refetched = user
                .room(room_id)
                .event(event_id, None)
                .await
                .unwrap_or_else(|e| panic!("{}: GET /event/{event_id}: {e:?}", user.name));
            if let TimelineEventKind::Decrypted(decrypted) = &refetched.kind {
                return (decrypted.clone(), false);
            }
            seen = Some(refetched);
        }
    }
    match seen {
        None => panic!(
            "{}: event {event_id} never arrived in {room_id} via /sync after {MAX_SYNCS} syncs",
            user.name
        ),
        Some(event) => panic!(
            "{}: event {event_id} arrived but could never be decrypted \
             ({} to-device events received in total): {:?}",
            user.name, user.to_device_seen, event.kind
        ),
    }
}

/// Syncs `user` until `member`'s membership in `room_id` is `join`.
async fn wait_for_join(user: &mut User, room_id: &RoomId, member: &UserId) {
    for _ in 0..MAX_SYNCS {
        user.sync().await;
        let joined = user
            .room(room_id)
            .get_member_no_sync(member)
            .await
            .expect("read member from store")
            .is_some_and(|m| *m.membership() == MembershipState::Join);
        if joined {
            return;
        }
    }
    panic!("{}: never saw {member} join {room_id}", user.name);
}

/// Checks a decrypted event: plain text `body` sent by `sender`'s device.
fn check_decrypted(decrypted: &DecryptedRoomEvent, sender: &User, body: &str, reader: &str) {
    let json: Value =
        serde_json::from_str(decrypted.event.json().get()).expect("decrypted event is JSON");
    assert_eq!(
        json["type"], "m.room.message",
        "{reader}: decrypted type: {json}"
    );
    assert_eq!(
        json["content"]["msgtype"], "m.text",
        "{reader}: msgtype: {json}"
    );
    assert_eq!(
        json["content"]["body"], body,
        "{reader}: decrypted body: {json}"
    );
    assert_eq!(
        json["sender"],
        sender.user_id().as_str(),
        "{reader}: sender: {json}"
    );
    let info = &decrypted.encryption_info;
    assert_eq!(
        info.sender,
        sender.user_id(),
        "{reader}: encryption info sender"
    );
    assert_eq!(
        info.sender_device.as_deref(),
        Some(sender.device_id()),
        "{reader}: the megolm session must come from the sender's device"
    );
}

/// Checks, over raw HTTP, that the server stores `event_id` as an
/// `m.room.encrypted` megolm event that does not contain the plain text.
async fn check_stored_encrypted(
    server: &TestServer,
    reader: &User,
    room_id: &RoomId,
    event_id: &EventId,
    plaintext: &str,
) {
    let (status, event) = reader
        .raw(server)
        .call(
            "GET",
            &format!(
                "/_matrix/client/v3/rooms/{}/event/{}",
                enc(room_id.as_str()),
                enc(event_id.as_str())
            ),
            None,
        )
        .await;
    assert_eq!(status, 200, "GET /event/{event_id}: {event}");
    assert_eq!(event["type"], "m.room.encrypted", "raw event type: {event}");
    assert_eq!(
        event["content"]["algorithm"], "m.megolm.v1.aes-sha2",
        "raw event algorithm: {event}"
    );
    assert!(
        event["content"]["ciphertext"].is_string(),
        "ciphertext: {event}"
    );
    assert!(
        !event.to_string().contains(plaintext),
        "the server-side event contains the plain text: {event}"
    );
}

/// What the server answers to `/keys/query` for `user`, for failure messages.
async fn server_keys(server: &TestServer, asker: &User, user: &UserId) -> Value {
    let (status, body) = asker
        .raw(server)
        .json(
            "POST",
            "/_matrix/client/v3/keys/query",
            json!({ "device_keys": { user.as_str(): [] } }),
        )
        .await;
    json!({ "status": status, "body": body })
}

async fn send_text(room: &Room, who: &str, body: &str) -> OwnedEventId {
    let result = room
        .send(RoomMessageEventContent::text_plain(body))
        .await
        .unwrap_or_else(|e| panic!("{who} sends {body:?}: {e:?}"));
    assert!(
        result.encryption_info.is_some(),
        "{who}: matrix-sdk did not encrypt the message in an encrypted room"
    );
    result.response.event_id
}

/// Creates an encrypted room inviting `invite`, and syncs until the
/// creator's client knows it is encrypted.
async fn create_encrypted_room(creator: &mut User, invite: Vec<OwnedUserId>) -> Room {
    let mut create = create_room::v3::Request::new();
    create.name = Some("Secrets".to_owned());
    create.invite = invite;
    create.initial_state = vec![InitialStateEvent::with_empty_state_key(
        RoomEncryptionEventContent::with_recommended_defaults(),
    )
    .to_raw_any()];
    let room = creator
        .client
        .create_room(create)
        .await
        .unwrap_or_else(|e| panic!("{} creates an encrypted room: {e:?}", creator.name));
    for _ in 0..MAX_SYNCS {
        creator.sync().await;
        if room.encryption_state().is_encrypted() {
            return room;
        }
    }
    panic!(
        "{}'s client never learned from /sync that {} is encrypted",
        creator.name,
        room.room_id()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_exchange_encrypted_messages() {
    common::init_logging();
    let server = common::start().await;
    exchange(&server, &server).await;
}

/// The same conversation between two users on two servers: device keys,
/// one-time keys and the room keys' to-device messages cross federation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_on_two_servers_exchange_encrypted_messages() {
    common::init_logging();
    let (ours, theirs) = (
        common::start_federated().await,
        common::start_federated().await,
    );
    exchange(&ours, &theirs).await;
}

/// Alice (on `alice_server`) and Bob (on `bob_server`) talk in an
/// encrypted room Alice creates, both ways, through matrix-sdk.
async fn exchange(alice_server: &TestServer, bob_server: &TestServer) {
    let mut alice = register(alice_server, "alice").await;
    let mut bob = register(bob_server, "bob").await;
    let alice_id = alice.user_id().to_owned();
    let bob_id = bob.user_id().to_owned();

    // The first syncs upload device keys and one-time keys (/keys/upload).
    alice.sync().await;
    bob.sync().await;
    for (user, other, other_server) in [(&alice, &bob, bob_server), (&bob, &alice, alice_server)] {
        let keys = server_keys(other_server, other, user.user_id()).await;
        let device =
            &keys["body"]["device_keys"][user.user_id().as_str()][user.device_id().as_str()];
        let curve_key = format!("curve25519:{}", user.device_id());
        assert!(
            device["keys"][curve_key.as_str()].is_string(),
            "{}'s device keys are not on the server after the first sync: {keys}",
            user.name
        );
    }

    // Alice creates an encrypted room and invites Bob.
    let alice_room = create_encrypted_room(&mut alice, vec![bob_id.clone()]).await;
    let room_id = alice_room.room_id().to_owned();

    // Bob sees the invite and joins.
    let mut invited = false;
    for _ in 0..MAX_SYNCS {
        let response = bob.sync().await;
        if response.rooms.invited.contains_key(&room_id) {
            invited = true;
            break;
        }
    }
    assert!(invited, "bob never saw the invite to {room_id} in /sync");
    let bob_room = bob
        .client
        .join_room_by_id(&room_id)
        .await
        .expect("bob joins the encrypted room");
    assert_eq!(bob_room.state(), RoomState::Joined);

    let mut encrypted = false;
    for _ in 0..MAX_SYNCS {
        bob.sync().await;
        if bob_room.encryption_state().is_encrypted() {
            encrypted = true;
            break;
        }
    }
    assert!(
        encrypted,
        "bob's client never learned that {room_id} is encrypted"
    );

    wait_for_join(&mut alice, &room_id, &bob_id).await;

    // Both sync until each knows the other's device (/keys/query, driven
    // by device tracking of room members and `device_lists` in /sync).
    let mut alice_knows_bob = false;
    let mut bob_knows_alice = false;
    for _ in 0..MAX_SYNCS {
        alice.sync().await;
        bob.sync().await;
        alice_knows_bob = alice
            .client
            .encryption()
            .get_device(&bob_id, bob.device_id())
            .await
            .expect("alice's crypto store")
            .is_some();
        bob_knows_alice = bob
            .client
            .encryption()
            .get_device(&alice_id, alice.device_id())
            .await
            .expect("bob's crypto store")
            .is_some();
        if alice_knows_bob && bob_knows_alice {
            break;
        }
    }
    if !(alice_knows_bob && bob_knows_alice) {
        panic!(
            "devices never became known: alice knows bob's device: {alice_knows_bob}, \
             bob knows alice's device: {bob_knows_alice}.\n\
             server /keys/query for bob: {}\nserver /keys/query for alice: {}",
            server_keys(alice_server, &alice, &bob_id).await,
            server_keys(bob_server, &bob, &alice_id).await,
        );
    }

    // Alice -> Bob (/keys/claim, /sendToDevice with the room key, megolm).
    let text = "The cake is in the cupboard, second shelf";
    let event_id = send_text(&alice_room, "alice", text).await;
    let to_device_before = bob.to_device_seen;
    let (decrypted, from_sync) = wait_for_decrypted(&mut bob, &room_id, &event_id).await;
    check_decrypted(&decrypted, &alice, text, "bob");
    let alice_session = decrypted.encryption_info.session_id().map(str::to_owned);
    assert!(
        alice_session.is_some(),
        "megolm session id of alice's message"
    );
    assert!(
        bob.to_device_seen > to_device_before,
        "bob decrypted without receiving any to-device event?"
    );
    if !from_sync {
        eprintln!(
            "note: bob's /sync delivered {event_id} before its room key; \
             it decrypted after re-fetching"
        );
    }
    check_stored_encrypted(bob_server, &bob, &room_id, &event_id, text).await;

    // Bob -> Alice.
    let reply = "Thanks! Eating it now";
    let reply_id = send_text(&bob_room, "bob", reply).await;
    let to_device_before = alice.to_device_seen;
    let (decrypted, from_sync) = wait_for_decrypted(&mut alice, &room_id, &reply_id).await;
    check_decrypted(&decrypted, &bob, reply, "alice");
    assert!(
        alice.to_device_seen > to_device_before,
        "alice decrypted without receiving any to-device event?"
    );
    if !from_sync {
        eprintln!(
            "note: alice's /sync delivered {reply_id} before its room key; \
             it decrypted after re-fetching"
        );
    }
    check_stored_encrypted(alice_server, &alice, &room_id, &reply_id, reply).await;

    // A second message from Alice reuses the megolm session Bob already has.
    let text2 = "And there is more cake tomorrow";
    let event_id2 = send_text(&alice_room, "alice", text2).await;
    let (decrypted2, _) = wait_for_decrypted(&mut bob, &room_id, &event_id2).await;
    check_decrypted(&decrypted2, &alice, text2, "bob");
    assert_eq!(
        decrypted2.encryption_info.session_id(),
        alice_session.as_deref(),
        "alice's second message should reuse her megolm session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_backup_restores_history_on_a_new_device() {
    common::init_logging();
    let server = common::start().await;
    let mut alice = register(&server, "alice").await;
    alice.sync().await;

    // Recovery: a key backup version plus secret storage holding its key.
    let recovery_key = alice
        .client
        .encryption()
        .recovery()
        .enable()
        .wait_for_backups_to_upload()
        .await
        .expect("alice enables recovery");
    let room = create_encrypted_room(&mut alice, vec![]).await;
    let room_id = room.room_id().to_owned();
    let text = "Remember the blue door";
    let event_id = send_text(&room, "alice", text).await;
    alice
        .client
        .encryption()
        .backups()
        .wait_for_steady_state()
        .await
        .expect("alice's room keys are backed up");

    // The server holds the backed-up session, encrypted.
    let raw = alice.raw(&server);
    let (status, version) = raw
        .call("GET", "/_matrix/client/v3/room_keys/version", None)
        .await;
    assert_eq!(status, 200, "backup version: {version}");
    assert!(version["count"].as_u64() >= Some(1), "{version}");
    let path = format!(
        "/_matrix/client/v3/room_keys/keys/{}?version={}",
        enc(room_id.as_str()),
        version["version"].as_str().expect("version")
    );
    let (status, keys) = raw.call("GET", &path, None).await;
    assert_eq!(status, 200, "room keys: {keys}");
    let sessions = keys["sessions"].as_object().expect("sessions");
    assert!(!sessions.is_empty(), "no session backed up: {keys}");
    assert!(
        !keys.to_string().contains(text),
        "the backup holds plain text: {keys}"
    );

    // A new device restores from the recovery key and reads the history.
    let client = common::sdk::login(&server, "alice", PASSWORD).await;
    let mut alice2 = User {
        name: "alice2",
        client,
        to_device_seen: 0,
    };
    alice2.sync().await;
    alice2
        .client
        .encryption()
        .recovery()
        .recover(&recovery_key)
        .await
        .expect("alice's new device recovers");
    alice2
        .client
        .encryption()
        .backups()
        .download_room_keys_for_room(&room_id)
        .await
        .expect("alice's new device downloads the room's keys");
    let event = alice2
        .room(&room_id)
        .event(&event_id, None)
        .await
        .expect("alice's new device fetches the old event");
    match &event.kind {
        TimelineEventKind::Decrypted(decrypted) => {
            let json: Value =
                serde_json::from_str(decrypted.event.json().get()).expect("decrypted JSON");
            assert_eq!(json["content"]["body"], text, "{json}");
        }
        other => panic!("the restored key did not decrypt the old message: {other:?}"),
    }
}
