//! The AI user in an encrypted room, with a real client (matrix-sdk, olm
//! machine on): the client shares its room key with the AI's device, the
//! AI decrypts, answers encrypted with its own Megolm session, the client
//! decrypts the answer; after a server restart the AI still reads and
//! writes (its crypto state and the conversation were kept).

use crate::common;

use std::time::Duration;

use common::llm::{text, ScriptedLlm};
use common::{enc, expect_ok, start_with, Raw, TestServer};
use matrix_sdk::config::SyncSettings;
use matrix_sdk::deserialized_responses::TimelineEventKind;
use matrix_sdk::ruma::api::client::room::create_room;
use matrix_sdk::ruma::events::room::encryption::RoomEncryptionEventContent;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::events::InitialStateEvent;
use matrix_sdk::ruma::{OwnedRoomId, UserId};
use matrix_sdk::Client;
use serde_json::{json, Value};

const AI: &str = "@alice_ai:localhost";
const MAX_SYNCS: usize = 60;

fn settings() -> SyncSettings {
    SyncSettings::default().timeout(Duration::from_millis(500))
}

/// Syncs until a message from the AI arrives; answers it decrypted.
async fn decrypted_reply(client: &Client, room: &OwnedRoomId, ai: &str) -> (Value, String) {
    for _ in 0..MAX_SYNCS {
        let response = client.sync_once(settings()).await.expect("sync");
        let Some(joined) = response.rooms.joined.get(room) else {
            continue;
        };
        for ev in &joined.timeline.events {
            let Some(sender) = ev.raw().get_field::<String>("sender").ok().flatten() else {
                continue;
            };
            if sender != ai {
                continue;
            }
            match &ev.kind {
                TimelineEventKind::Decrypted(d) => {
                    let json: Value = serde_json::from_str(d.event.json().get()).expect("json");
                    let device = d
                        .encryption_info
                        .sender_device
                        .as_ref()
                        .map(|d| d.to_string())
                        .unwrap_or_default();
                    return (json, device);
                }
                other => panic!("the AI's message is not decryptable by the client: {other:?}"),
            }
        }
    }
    panic!("no answer from the AI in {room}");
}

async fn stored_event(raw: &Raw, room: &OwnedRoomId, event: &str) -> Value {
    expect_ok(
        raw.call(
            "GET",
            &format!(
                "/_matrix/client/v3/rooms/{}/event/{}",
                enc(room.as_str()),
                enc(event)
            ),
            None,
        )
        .await,
        "GET event",
    )
}

/// Creates an encrypted DM with `ai` and syncs until the AI has joined
/// and the client knows the room is encrypted.
async fn encrypted_dm(client: &Client, ai: &str) -> OwnedRoomId {
    let ai = UserId::parse(ai).unwrap();
    let mut create = create_room::v3::Request::new();
    create.invite = vec![ai.clone()];
    create.is_direct = true;
    create.initial_state = vec![InitialStateEvent::with_empty_state_key(
        RoomEncryptionEventContent::with_recommended_defaults(),
    )
    .to_raw_any()];
    let room = client
        .create_room(create)
        .await
        .expect("create encrypted room");
    for _ in 0..MAX_SYNCS {
        client.sync_once(settings()).await.expect("sync");
        let member = room.get_member_no_sync(&ai).await.expect("member");
        if member.is_some_and(|m| m.membership().as_str() == "join")
            && room.encryption_state().is_encrypted()
        {
            return room.room_id().to_owned();
        }
    }
    panic!("the AI never joined the encrypted room");
}

async fn send(client: &Client, room: &OwnedRoomId, body: &str) {
    let room = client.get_room(room).expect("room");
    let sent = room
        .send(RoomMessageEventContent::text_plain(body))
        .await
        .expect("send");
    assert!(
        sent.encryption_info.is_some(),
        "matrix-sdk encrypted the message"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_conversation_with_the_ai_survives_a_restart() {
    common::init_logging();
    let llm = ScriptedLlm::start().await;
    let base = llm.base.clone();
    let server: TestServer = start_with(move |c| {
        c.ai.provider = serde_json::from_value(json!("anthropic")).unwrap();
        c.ai.base_url = Some(base);
        c.ai.model = "m".into();
    })
    .await;
    let client = common::sdk::register(&server, "alice", "pw-alice-1").await;
    client
        .sync_once(settings())
        .await
        .expect("first sync uploads keys");
    let raw = Raw::new(&server).with_token(&client.access_token().expect("token"));

    // The AI's device is published like any client's.
    let keys = expect_ok(
        raw.json(
            "POST",
            "/_matrix/client/v3/keys/query",
            json!({ "device_keys": { AI: [] } }),
        )
        .await,
        "keys/query",
    );
    let device = &keys["device_keys"][AI]["MATRIXOSAI"];
    assert!(
        device["keys"]["curve25519:MATRIXOSAI"].is_string(),
        "AI device keys: {keys}"
    );
    let claim = expect_ok(
        raw.json(
            "POST",
            "/_matrix/client/v3/keys/claim",
            json!({ "one_time_keys": { AI: { "MATRIXOSAI": "signed_curve25519" } } }),
        )
        .await,
        "keys/claim",
    );
    assert!(
        claim["one_time_keys"][AI]["MATRIXOSAI"]
            .as_object()
            .is_some_and(|k| !k.is_empty()),
        "AI one-time keys: {claim}"
    );

    let room_id = encrypted_dm(&client, AI).await;

    llm.push(text("I read you: pineapple."));
    send(&client, &room_id, "The secret word is pineapple").await;
    let (reply, device) = decrypted_reply(&client, &room_id, AI).await;
    assert_eq!(reply["content"]["body"], "I read you: pineapple.");
    assert_eq!(
        device, "MATRIXOSAI",
        "the reply comes from the AI's own device"
    );
    let asked = llm.requests()[0].to_string();
    assert!(
        asked.contains("The secret word is pineapple"),
        "the AI decrypted the message: {asked}"
    );
    let stored = stored_event(&raw, &room_id, reply["event_id"].as_str().unwrap()).await;
    assert_eq!(stored["type"], "m.room.encrypted");
    assert!(
        !stored.to_string().contains("pineapple"),
        "the server holds only ciphertext: {stored}"
    );

    let server = server.restart().await;
    llm.push(text("Still here, and still private."));
    send(&client, &room_id, "Second secret: mango").await;
    let (reply, _) = decrypted_reply(&client, &room_id, AI).await;
    assert_eq!(reply["content"]["body"], "Still here, and still private.");
    let asked = llm.requests()[1].to_string();
    assert!(
        asked.contains("Second secret: mango") && asked.contains("pineapple"),
        "decrypted after the restart, with its history: {asked}"
    );
    drop(server);
}

/// A user of another server (Synapse-like: a second Matrix OS) opens an
/// encrypted DM with an AI user: keys, room keys and the AI's answer all
/// cross federation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ai_user_talks_encrypted_with_a_user_of_another_server() {
    common::init_logging();
    let llm = ScriptedLlm::start().await;
    let base = llm.base.clone();
    let ours = common::start_federated_with(move |c| {
        c.ai.provider = serde_json::from_value(json!("anthropic")).unwrap();
        c.ai.base_url = Some(base);
        c.ai.model = "m".into();
    })
    .await;
    let theirs = common::start_federated().await;
    Raw::new(&ours).register("alice").await;
    let ai = format!("@alice_ai:{}", ours.services.server_name);
    let client = common::sdk::register(&theirs, "bob", "pw-bob-1").await;
    client
        .sync_once(settings())
        .await
        .expect("first sync uploads keys");

    let room_id = encrypted_dm(&client, &ai).await;

    llm.push(text("Across servers: mango."));
    send(&client, &room_id, "alice_ai: the secret word is mango").await;
    let (reply, device) = decrypted_reply(&client, &room_id, &ai).await;
    assert_eq!(reply["content"]["body"], "Across servers: mango.");
    assert_eq!(device, "MATRIXOSAI");
    let asked = llm.requests()[0].to_string();
    assert!(
        asked.contains("mango"),
        "the AI decrypted the message: {asked}"
    );
}
