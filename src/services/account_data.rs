//! Global and per-room account data (including room tags).

use matrixos_storage::tables::ACCOUNT_DATA;
use matrixos_storage::typed::Parts;
use matrixos_storage::Batch;
use std::collections::BTreeSet;

use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};
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

fn key(user: &UserId, room: Option<&RoomId>, kind: &str) -> [String; 3] {
    let room = room.map(|r| r.as_str()).unwrap_or("");
    [user.to_string(), room.to_owned(), kind.to_owned()]
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
        let value = (position.get(), content.clone());
        ACCOUNT_DATA.put(&mut batch, &key(user, room, kind), &value);
        self.store
            .commit(batch, vec![position], Wake::user(user))
            .await
    }

    pub fn get(&self, user: &UserId, room: Option<&RoomId>, kind: &str) -> Result<Option<Value>> {
        let found = ACCOUNT_DATA.get(&self.store.db, &key(user, room, kind))?;
        Ok(found.map(|(_, content)| content))
    }

    /// Removes every entry of `user`, global and per room (push rules and
    /// ignored users included): their account is being deactivated.
    pub async fn purge(&self, user: &UserId) -> Result<()> {
        let prefix = Parts::prefix(&[user.as_str()]);
        let mut batch = Batch::new();
        for item in ACCOUNT_DATA.scan_prefix(&self.store.db, &prefix) {
            let (parts, _) = item?;
            ACCOUNT_DATA.delete(&mut batch, &parts);
        }
        self.store.commit(batch, vec![], Wake::none()).await
    }

    /// The users `user` ignores (`m.ignored_user_list`).
    pub fn ignored_users(&self, user: &UserId) -> Result<BTreeSet<OwnedUserId>> {
        let list = self.get(user, None, "m.ignored_user_list")?;
        let ignored = list
            .as_ref()
            .and_then(|l| l.get("ignored_users"))
            .and_then(Value::as_object);
        Ok(ignored
            .into_iter()
            .flat_map(|users| users.keys())
            .filter_map(|u| UserId::parse(u.as_str()).ok())
            .collect())
    }

    /// Entries written after `since` (all of them for 0).
    pub fn changed_since(&self, user: &UserId, since: u64) -> Result<Vec<AccountDataEntry>> {
        let prefix = Parts::prefix(&[user.as_str()]);
        let mut out = Vec::new();
        for item in ACCOUNT_DATA.scan_prefix(&self.store.db, &prefix) {
            let (parts, (count, content)) = item?;
            let [_, room, kind] = parts.as_slice() else {
                continue;
            };
            if count <= since {
                continue;
            }
            let room_id = match room.as_str() {
                "" => None,
                room => RoomId::parse(room).ok(),
            };
            out.push(AccountDataEntry {
                room_id,
                kind: kind.clone(),
                content,
            });
        }
        Ok(out)
    }
}
