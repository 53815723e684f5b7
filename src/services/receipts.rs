//! Read receipts (persisted, part of the sync stream) and typing
//! notifications (in memory, expiring).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use matrixos_storage::tables::RECEIPTS;
use matrixos_storage::typed::Parts;
use matrixos_storage::Batch;
use parking_lot::Mutex;
use ruma::{EventId, OwnedRoomId, OwnedUserId, RoomId, UserId};
use serde_json::{json, Map, Value};

use super::Store;
use crate::error::Result;
use crate::services::Wake;

/// A stored receipt.
pub struct Receipt {
    pub user: OwnedUserId,
    pub kind: String,
    pub event_id: String,
    pub data: Value,
    pub count: u64,
}

/// Who is typing (user → expiry) and the stream position of the last change.
type TypingState = (HashMap<OwnedUserId, Instant>, u64);

pub struct Receipts {
    /// Shared so that pending typing expiries hold it only weakly and never
    /// keep the database open after the server stops.
    store: Arc<Store>,
    typing: Arc<Mutex<HashMap<OwnedRoomId, TypingState>>>,
}

/// Longest typing notification a client may ask for.
const MAX_TYPING: Duration = Duration::from_secs(120);

impl Receipts {
    pub fn new(store: Store) -> Self {
        Self {
            store: Arc::new(store),
            typing: Arc::default(),
        }
    }

    /// Stores a receipt, in one write with `prelude`'s operations.
    pub async fn set(
        &self,
        room: &RoomId,
        user: &UserId,
        kind: &str,
        event: &EventId,
        thread: Option<&str>,
        prelude: Batch,
    ) -> Result<()> {
        let key = [
            room.to_string(),
            user.to_string(),
            kind.to_owned(),
            thread.unwrap_or("").to_owned(),
        ];
        let mut data = json!({ "ts": crate::services::accounts::now_ms() });
        if let Some(t) = thread {
            data["thread_id"] = json!(t);
        }
        let mut batch = prelude;
        let position = self.store.db.reserve_count(&mut batch);
        let value = (position.get(), json!({ "event_id": event, "data": data }));
        RECEIPTS.put(&mut batch, &key, &value);
        self.store
            .commit(batch, vec![position], Wake::room(room))
            .await
    }

    /// Receipts in the room written after `since`.
    pub fn since(&self, room: &RoomId, since: u64) -> Result<Vec<Receipt>> {
        let prefix = Parts::prefix(&[room.as_str()]);
        let mut out = Vec::new();
        for item in RECEIPTS.scan_prefix(&self.store.db, &prefix) {
            let (parts, (count, body)) = item?;
            if count <= since {
                continue;
            }
            let [_, user, kind, _] = parts.as_slice() else {
                continue;
            };
            let Ok(user) = UserId::parse(user.as_str()) else {
                continue;
            };
            out.push(Receipt {
                user,
                kind: kind.clone(),
                event_id: body["event_id"].as_str().unwrap_or_default().to_owned(),
                data: body["data"].clone(),
                count,
            });
        }
        Ok(out)
    }

    /// The `m.receipt` EDU content for receipts visible to `viewer`.
    pub fn edu<'a>(
        receipts: impl IntoIterator<Item = &'a Receipt>,
        viewer: &UserId,
    ) -> Option<Value> {
        let mut content: Map<String, Value> = Map::new();
        for r in receipts {
            if r.kind == "m.read.private" && r.user != viewer {
                continue;
            }
            let entry = content
                .entry(r.event_id.clone())
                .or_insert_with(|| json!({}));
            entry[&r.kind][r.user.as_str()] = r.data.clone();
        }
        (!content.is_empty()).then(|| json!({ "type": "m.receipt", "content": content }))
    }

    /// Marks the user typing (or not) and wakes syncs. A typing
    /// notification that is not renewed ends by itself after its timeout,
    /// and that end wakes syncs too.
    pub async fn set_typing(
        &self,
        room: &RoomId,
        user: &UserId,
        typing: bool,
        timeout: Duration,
    ) -> Result<()> {
        if !typing {
            return change_typing(&self.typing, &self.store, room, |users| {
                users.remove(user);
            })
            .await;
        }
        let expires = Instant::now() + timeout.min(MAX_TYPING);
        change_typing(&self.typing, &self.store, room, |users| {
            users.insert(user.to_owned(), expires);
        })
        .await?;
        let (typing, store) = (self.typing.clone(), Arc::downgrade(&self.store));
        let (room, user) = (room.to_owned(), user.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep_until(expires.into()).await;
            let Some(store) = store.upgrade() else {
                return;
            };
            let result = change_typing(&typing, &store, &room, |users| {
                if users.get(&user) == Some(&expires) {
                    users.remove(&user);
                }
            })
            .await;
            if let Err(e) = result {
                tracing::warn!(room = %room, error = %e, "could not end a typing notification");
            }
        });
        Ok(())
    }

    /// The `m.typing` EDU if the room's typing set changed after `since`.
    pub fn typing_edu(&self, room: &RoomId, since: u64) -> Option<Value> {
        let mut rooms = self.typing.lock();
        let (users, changed) = rooms.get_mut(room)?;
        let now = Instant::now();
        users.retain(|_, expires| *expires > now);
        if *changed <= since {
            return None;
        }
        let ids: Vec<&OwnedUserId> = users.keys().collect();
        Some(json!({ "type": "m.typing", "content": { "user_ids": ids } }))
    }
}

/// Applies `change` to a room's typing set, records it at a new stream
/// position and wakes syncs (the empty write moves the position).
async fn change_typing(
    typing: &Mutex<HashMap<OwnedRoomId, TypingState>>,
    store: &Store,
    room: &RoomId,
    change: impl FnOnce(&mut HashMap<OwnedUserId, Instant>),
) -> Result<()> {
    let mut batch = Batch::new();
    let position = store.db.reserve_count(&mut batch);
    {
        let mut rooms = typing.lock();
        let (users, changed) = rooms.entry(room.to_owned()).or_default();
        change(users);
        *changed = position.get();
    }
    store.commit(batch, vec![position], Wake::room(room)).await
}
