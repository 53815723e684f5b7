//! Telling other servers that a local user's devices changed. Each
//! `m.device_list_update` carries a `stream_id` that grows per user and,
//! as `prev_id`, the one of the update before it, so a receiver that saw
//! every update in between applies this one as it is, and one that
//! missed some (or never had the list) knows to fetch the whole list
//! again (`/user/devices`, which answers the latest `stream_id`).
//! The stream record and the queued EDUs commit together.

use matrixos_storage::tables::DEVICE_LIST_STREAMS;
use matrixos_storage::Batch;
use ruma::{DeviceId, UserId};
use serde_json::{json, Value};

use super::edus::{sharing_servers, to_sharing_servers};
use crate::error::Result;
use crate::services::Services;
use crate::store::Wake;

/// The stream id of the last device list update about `user` (0 if none
/// was ever sent).
pub fn stream_id(s: &Services, user: &UserId) -> Result<u64> {
    Ok(DEVICE_LIST_STREAMS
        .get(&s.store.db, user.as_str())?
        .unwrap_or(0))
}

/// Tells the servers that share a room with a local user that one of
/// their devices changed (`keys`) or went away (`None`).
pub async fn send_update(
    s: &Services,
    user: &UserId,
    device: &DeviceId,
    keys: Option<Value>,
) -> Result<()> {
    let destinations = sharing_servers(s, user)?;
    // One update per user at a time, so that the chain has no forks.
    let _chain = s.federation.device_list_updates.lock().await;
    let previous = DEVICE_LIST_STREAMS.get(&s.store.db, user.as_str())?;
    let stream_id = s
        .store
        .position()
        .max(previous.map_or(1, |p| p.saturating_add(1)));
    let mut content = json!({
        "user_id": user,
        "device_id": device,
        "stream_id": stream_id,
        "prev_id": previous.into_iter().collect::<Vec<_>>(),
        "deleted": keys.is_none(),
    });
    if let Some(keys) = keys {
        content["keys"] = keys;
    }
    let edu = json!({ "edu_type": "m.device_list_update", "content": content });
    let mut batch = Batch::new();
    DEVICE_LIST_STREAMS.put(&mut batch, user.as_str(), &stream_id);
    for destination in &destinations {
        s.federation
            .outbox
            .queue_edu_into(s, &mut batch, destination, &edu)?;
    }
    s.store.commit(batch, Vec::new(), Wake::none()).await?;
    for destination in &destinations {
        s.federation.outbox.wake(destination);
    }
    Ok(())
}

/// Tells the servers that share a room with a local user of their new
/// master and self-signing keys (never the user-signing key).
pub async fn send_signing_key_update(s: &Services, user: &UserId) -> Result<()> {
    let keys = s.cross_signing.stored(user)?;
    let mut content = json!({ "user_id": user });
    if let Some(master) = keys.master {
        content["master_key"] = master;
    }
    if let Some(self_signing) = keys.self_signing {
        content["self_signing_key"] = self_signing;
    }
    let edu = json!({ "edu_type": "m.signing_key_update", "content": content });
    to_sharing_servers(s, user, &edu).await
}
