//! Global and per-room account data (including room tags).

use matrixos_storage::{keys, Batch, Table};
use ruma::{OwnedRoomId, RoomId, UserId};
use serde_json::Value;

use super::Store;
use crate::error::Result;
use crate::services::Wake;

pub struct AccountData {
    store: Store,
}

/// One account-data entry that changed after a sync position.
pub struct AccountDataEntry {
    pub room_id: Option<OwnedRoomId>,
    pub kind: String,
    pub content: Value,
}

impl AccountDataEntry {
    /// The entry as an account data event.
    pub fn event(&self) -> Value {
        serde_json::json!({ "type": self.kind, "content": self.content })
    }
}

fn key(user: &UserId, room: Option<&RoomId>, kind: &str) -> Vec<u8> {
    let room = room.map(|r| r.as_bytes()).unwrap_or(b"");
    keys::join(&[user.as_bytes(), room, kind.as_bytes()])
}

impl AccountData {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub async fn set(
        &self,
        user: &UserId,
        room: Option<&RoomId>,
        kind: &str,
        content: &Value,
    ) -> Result<()> {
        let mut batch = Batch::new();
        let position = self.store.db.reserve_count(&mut batch);
        let mut value = position.get().to_be_bytes().to_vec();
        value.extend_from_slice(&serde_json::to_vec(content)?);
        batch.put(Table::AccountData, key(user, room, kind), value);
        self.store
            .commit(batch, vec![position], Wake::user(user))
            .await
    }

    pub fn get(&self, user: &UserId, room: Option<&RoomId>, kind: &str) -> Result<Option<Value>> {
        match self
            .store
            .db
            .get(Table::AccountData, &key(user, room, kind))?
        {
            Some(v) if v.len() >= 8 => Ok(Some(serde_json::from_slice(&v[8..])?)),
            _ => Ok(None),
        }
    }

    /// Entries written after `since` (all of them for 0).
    pub fn changed_since(&self, user: &UserId, since: u64) -> Result<Vec<AccountDataEntry>> {
        let prefix = keys::prefix(&[user.as_bytes()]);
        let mut out = Vec::new();
        for item in self.store.db.scan_prefix(Table::AccountData, &prefix) {
            let (k, v) = item?;
            if keys::read_u64(&v).unwrap_or(0) <= since {
                continue;
            }
            let parts = keys::split(&k[prefix.len()..]);
            let (Some(room), Some(kind)) = (parts.first(), parts.get(1)) else {
                continue;
            };
            let room_id = if room.is_empty() {
                None
            } else {
                std::str::from_utf8(room)
                    .ok()
                    .and_then(|r| RoomId::parse(r).ok())
            };
            out.push(AccountDataEntry {
                room_id,
                kind: String::from_utf8_lossy(kind).into_owned(),
                content: serde_json::from_slice(&v[8..])?,
            });
        }
        Ok(out)
    }
}
