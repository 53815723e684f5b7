//! EDUs: typing notifications, read receipts and presence, both ways. Another
//! server speaks only for its own users, and only in rooms where they are
//! joined; anything else is logged and dropped (an EDU has no answer).

use std::collections::BTreeSet;
use std::time::Duration;

use ruma::{EventId, OwnedEventId, OwnedServerName, OwnedUserId, RoomId, ServerName, UserId};
use serde::Deserialize;
use serde_json::value::RawValue as RawJsonValue;
use serde_json::{json, Value};

use crate::error::Result;
use crate::services::Services;

/// How long a remote typing notification lasts unless renewed (Synapse
/// sends none longer).
const REMOTE_TYPING: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
struct Edu<'a> {
    edu_type: &'a str,
    #[serde(borrow)]
    content: &'a RawJsonValue,
}

#[derive(Deserialize)]
struct TypingContent {
    room_id: ruma::OwnedRoomId,
    user_id: OwnedUserId,
    typing: bool,
}

#[derive(Deserialize)]
struct UserReceipt {
    event_ids: Vec<OwnedEventId>,
    #[serde(default)]
    data: ReceiptData,
}

#[derive(Deserialize, Default)]
struct ReceiptData {
    thread_id: Option<String>,
}

/// Takes one EDU of a transaction from `origin`.
pub async fn handle_edu(s: &Services, origin: &ServerName, raw: &RawJsonValue) {
    let result = match serde_json::from_str::<Edu<'_>>(raw.get()) {
        Ok(edu) => match edu.edu_type {
            "m.typing" => typing(s, origin, edu.content).await,
            "m.receipt" => receipts(s, origin, edu.content).await,
            "m.presence" => presence(s, origin, edu.content).await,
            "m.direct_to_device" => direct_to_device(s, origin, edu.content).await,
            "m.device_list_update" | "m.signing_key_update" => {
                device_list_changed(s, origin, edu.content).await
            }
            other => {
                tracing::debug!(%origin, edu_type = other, "EDU type not handled");
                Ok(())
            }
        },
        Err(e) => Err(crate::error::Error::bad_json(e.to_string())),
    };
    if let Err(e) = result {
        tracing::info!(%origin, error = %e, "EDU dropped");
    }
}

#[derive(Deserialize)]
struct PresenceContent {
    push: Vec<PresenceUpdate>,
}

#[derive(Deserialize)]
struct PresenceUpdate {
    user_id: OwnedUserId,
    presence: ruma::presence::PresenceState,
    last_active_ago: Option<u64>,
    status_msg: Option<String>,
}

/// Most presence updates taken from one EDU.
const MAX_PRESENCE_PUSH: usize = 1000;

/// Presence of `origin`'s users who are in a room here.
async fn presence(s: &Services, origin: &ServerName, content: &RawJsonValue) -> Result<()> {
    let content: PresenceContent = serde_json::from_str(content.get())?;
    for update in content.push.into_iter().take(MAX_PRESENCE_PUSH) {
        let user = &update.user_id;
        if user.server_name() != origin || s.rooms.joined_rooms(user)?.is_empty() {
            continue;
        }
        let presence = match update.presence {
            ruma::presence::PresenceState::Online => "online",
            ruma::presence::PresenceState::Unavailable => "unavailable",
            _ => "offline",
        };
        let state = crate::services::presence::PresenceState {
            presence: presence.to_owned(),
            status_msg: update.status_msg,
            last_active_ago_ms: update.last_active_ago,
        };
        s.presence.set_remote(user, state).await?;
    }
    Ok(())
}

/// Tells other servers of a local user's new presence; a failure to queue
/// is logged (presence is advisory).
pub async fn presence_changed(s: &Services, user: &UserId) {
    if let Err(e) = send_presence(s, user).await {
        tracing::warn!(%user, error = %e, "presence not sent to other servers");
    }
}

/// Tells the servers sharing a room with a local user of their presence.
async fn send_presence(s: &Services, user: &UserId) -> Result<()> {
    let mut update = s.presence.get(user).content();
    update["user_id"] = json!(user);
    let edu = json!({ "edu_type": "m.presence", "content": { "push": [update] } });
    to_sharing_servers(s, user, &edu).await
}

/// Whether `user` is `origin`'s and joined to `room` here.
fn speaks_for(s: &Services, origin: &ServerName, user: &UserId, room: &RoomId) -> Result<bool> {
    Ok(user.server_name() == origin
        && s.rooms.is_joined(user, room)?
        && super::acl::allows(s, room, origin)?)
}

async fn typing(s: &Services, origin: &ServerName, content: &RawJsonValue) -> Result<()> {
    let content: TypingContent = serde_json::from_str(content.get())?;
    if !speaks_for(s, origin, &content.user_id, &content.room_id)? {
        tracing::info!(%origin, user = %content.user_id, "typing for a user not joined dropped");
        return Ok(());
    }
    s.receipts
        .set_typing(
            &content.room_id,
            &content.user_id,
            content.typing,
            REMOTE_TYPING,
        )
        .await
}

async fn receipts(s: &Services, origin: &ServerName, content: &RawJsonValue) -> Result<()> {
    type ByRoom = std::collections::BTreeMap<
        ruma::OwnedRoomId,
        std::collections::BTreeMap<String, std::collections::BTreeMap<OwnedUserId, UserReceipt>>,
    >;
    let rooms: ByRoom = serde_json::from_str(content.get())?;
    for (room, kinds) in rooms {
        for (kind, users) in kinds {
            if kind != "m.read" {
                continue;
            }
            for (user, receipt) in users {
                if !speaks_for(s, origin, &user, &room)? {
                    continue;
                }
                let Some(event) = receipt.event_ids.first() else {
                    continue;
                };
                if !event_in_room(s, &room, event)? {
                    continue;
                }
                s.receipts
                    .set(
                        &room,
                        &user,
                        &kind,
                        event,
                        receipt.data.thread_id.as_deref(),
                        matrixos_storage::Batch::new(),
                    )
                    .await?;
            }
        }
    }
    Ok(())
}

fn event_in_room(s: &Services, room: &RoomId, event: &EventId) -> Result<bool> {
    Ok(s.rooms.timeline_event_in(room, event).is_ok())
}

/// To-device messages for other servers: server → user → device (or
/// `*`) → content.
pub type ToDeviceByServer = super::ByServer<String, Value>;

/// Most to-device messages one EDU from another server delivers.
const MAX_TO_DEVICE: usize = 1000;

#[derive(Deserialize)]
struct DirectToDevice {
    sender: OwnedUserId,
    #[serde(rename = "type")]
    kind: String,
    message_id: String,
    messages: std::collections::BTreeMap<OwnedUserId, std::collections::BTreeMap<String, Value>>,
}

/// Delivers another server's to-device messages to local devices, once per
/// (origin, message id).
async fn direct_to_device(s: &Services, origin: &ServerName, content: &RawJsonValue) -> Result<()> {
    let edu: DirectToDevice = serde_json::from_str(content.get())?;
    if edu.sender.server_name() != origin {
        tracing::info!(%origin, sender = %edu.sender, "to-device for another server's user dropped");
        return Ok(());
    }
    let mut messages = Vec::new();
    for (user, devices) in edu.messages {
        if user.server_name() != s.server_name {
            continue;
        }
        for (device, content) in devices {
            messages.push((user.clone(), device, content));
        }
    }
    messages.truncate(MAX_TO_DEVICE);
    // The origin stands in for the sending device: its message ids are
    // unique per origin.
    let device = <&ruma::DeviceId>::from(origin.as_str());
    let accounts = &s.accounts;
    s.keys
        .send_to_device(
            &edu.sender,
            device,
            &edu.message_id,
            &edu.kind,
            messages,
            |u| accounts.device_ids(u),
        )
        .await
}

/// Queues to-device messages of a local user for other servers.
pub async fn send_to_device(
    s: &Services,
    sender: &UserId,
    kind: &str,
    message_id: &str,
    by_server: ToDeviceByServer,
) -> Result<()> {
    for (server, messages) in by_server {
        let edu = json!({
            "edu_type": "m.direct_to_device",
            "content": {
                "sender": sender,
                "type": kind,
                "message_id": message_id,
                "messages": messages,
            },
        });
        s.federation.outbox.queue_edu(s, &server, &edu).await?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct DeviceListUpdate {
    user_id: OwnedUserId,
}

/// Another server's user changed their devices or cross-signing keys:
/// this server keeps none of their keys (it asks their server each time),
/// so it only tells the local users who share a room with them to ask
/// again (`device_lists.changed` in `/sync`).
async fn device_list_changed(
    s: &Services,
    origin: &ServerName,
    content: &RawJsonValue,
) -> Result<()> {
    let update: DeviceListUpdate = serde_json::from_str(content.get())?;
    if update.user_id.server_name() != origin {
        tracing::info!(%origin, user = %update.user_id, "device list of another server's user dropped");
        return Ok(());
    }
    let mut batch = matrixos_storage::Batch::new();
    let position = s.keys.mark_changed(&mut batch, &update.user_id);
    let wake = crate::store::Wake::sharers(&s.store.db, &update.user_id)?;
    s.store.commit(batch, vec![position], wake).await
}

/// The other servers that share a room with `user`.
pub(super) fn sharing_servers(s: &Services, user: &UserId) -> Result<BTreeSet<OwnedServerName>> {
    let mut servers = BTreeSet::new();
    for room in s.rooms.joined_rooms(user)? {
        servers.extend(s.rooms.servers_in_room(&room)?);
    }
    servers.remove(&s.server_name);
    Ok(servers)
}

/// Queues an EDU for every other server that shares a room with `user`.
pub(super) async fn to_sharing_servers(s: &Services, user: &UserId, edu: &Value) -> Result<()> {
    for server in sharing_servers(s, user)? {
        s.federation.outbox.queue_edu(s, &server, edu).await?;
    }
    Ok(())
}

/// Queues an EDU for every other server in the room.
async fn to_room(s: &Services, room: &RoomId, edu: Value) -> Result<()> {
    for server in s.rooms.servers_in_room(room)? {
        if server != s.server_name {
            s.federation.outbox.queue_edu(s, &server, &edu).await?;
        }
    }
    Ok(())
}

/// Tells the room's other servers that a local user types (or stopped).
pub async fn send_typing(s: &Services, room: &RoomId, user: &UserId, typing: bool) -> Result<()> {
    let edu = json!({
        "edu_type": "m.typing",
        "content": { "room_id": room, "user_id": user, "typing": typing },
    });
    to_room(s, room, edu).await
}

/// Tells the room's other servers of a local user's public read receipt.
pub async fn send_receipt(
    s: &Services,
    room: &RoomId,
    user: &UserId,
    event: &EventId,
    thread: Option<&str>,
) -> Result<()> {
    let mut data = json!({ "ts": crate::services::accounts::now_ms() });
    if let Some(thread) = thread {
        data["thread_id"] = json!(thread);
    }
    let edu = json!({
        "edu_type": "m.receipt",
        "content": { room.as_str(): { "m.read": { user.as_str(): {
            "event_ids": [event],
            "data": data,
        } } } },
    });
    to_room(s, room, edu).await
}
