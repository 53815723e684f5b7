//! Room aliases and the public room directory.
//!
//! The aliases table holds both directions: `#alias` → record, and
//! `!room ‖ 0xff ‖ #alias` → nothing (room ids start with `!`, aliases with
//! `#`, so the two never collide).

use matrixos_storage::{keys, Batch, Table};
use ruma::{OwnedRoomAliasId, OwnedRoomId, OwnedUserId, RoomAliasId, RoomId, UserId};
use serde::{Deserialize, Serialize};

use super::Rooms;
use crate::error::{Error, Result};
use crate::services::Wake;

/// Where an alias points and who made it (who may delete it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AliasRecord {
    pub room_id: OwnedRoomId,
    pub creator: OwnedUserId,
}

const PUBLIC_PREFIX: &[u8] = b"public_room";

impl Rooms {
    pub fn alias(&self, alias: &RoomAliasId) -> Result<Option<AliasRecord>> {
        match self.store.db.get(Table::Aliases, alias.as_bytes())? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    pub fn alias_target(&self, alias: &RoomAliasId) -> Result<Option<OwnedRoomId>> {
        Ok(self.alias(alias)?.map(|a| a.room_id))
    }

    pub(crate) fn put_alias_into(
        &self,
        batch: &mut Batch,
        alias: &RoomAliasId,
        room: &RoomId,
        creator: &UserId,
    ) -> Result<()> {
        let record = AliasRecord {
            room_id: room.to_owned(),
            creator: creator.to_owned(),
        };
        batch.put(
            Table::Aliases,
            alias.as_bytes().to_vec(),
            serde_json::to_vec(&record)?,
        );
        batch.put(
            Table::Aliases,
            keys::join(&[room.as_bytes(), alias.as_bytes()]),
            Vec::new(),
        );
        Ok(())
    }

    /// Creates an alias; `M_ROOM_IN_USE`-style 409 if it exists.
    pub async fn set_alias(
        &self,
        alias: &RoomAliasId,
        room: &RoomId,
        creator: &UserId,
    ) -> Result<()> {
        if self.alias(alias)?.is_some() {
            return Err(Error::new(
                http::StatusCode::CONFLICT,
                "M_UNKNOWN",
                "Room alias already exists",
            ));
        }
        let mut batch = Batch::new();
        self.put_alias_into(&mut batch, alias, room, creator)?;
        self.store.commit(batch, vec![], Wake::none()).await
    }

    pub async fn delete_alias(&self, alias: &RoomAliasId, record: &AliasRecord) -> Result<()> {
        let mut batch = Batch::new();
        batch.delete(Table::Aliases, alias.as_bytes().to_vec());
        batch.delete(
            Table::Aliases,
            keys::join(&[record.room_id.as_bytes(), alias.as_bytes()]),
        );
        self.store.commit(batch, vec![], Wake::none()).await
    }

    /// The local aliases pointing at a room.
    pub fn aliases_of(&self, room: &RoomId) -> Result<Vec<OwnedRoomAliasId>> {
        let prefix = keys::prefix(&[room.as_bytes()]);
        let mut out = Vec::new();
        for item in self.store.db.scan_prefix(Table::Aliases, &prefix) {
            let (k, _) = item?;
            if let Ok(alias) =
                RoomAliasId::parse(String::from_utf8_lossy(&k[prefix.len()..]).as_ref())
            {
                out.push(alias);
            }
        }
        Ok(out)
    }

    /// Lists or unlists a room in the public room directory.
    pub async fn set_published(&self, room: &RoomId, published: bool) -> Result<()> {
        let key = keys::join(&[PUBLIC_PREFIX, room.as_bytes()]);
        let mut batch = Batch::new();
        if published {
            batch.put(Table::Server, key, Vec::new());
        } else {
            batch.delete(Table::Server, key);
        }
        self.store.commit(batch, vec![], Wake::none()).await
    }

    pub fn is_published(&self, room: &RoomId) -> Result<bool> {
        Ok(self.store.db.exists(
            Table::Server,
            &keys::join(&[PUBLIC_PREFIX, room.as_bytes()]),
        )?)
    }

    /// Every room in the public directory.
    pub fn published_rooms(&self) -> Result<Vec<OwnedRoomId>> {
        let prefix = keys::prefix(&[PUBLIC_PREFIX]);
        let mut out = Vec::new();
        for item in self.store.db.scan_prefix(Table::Server, &prefix) {
            let (k, _) = item?;
            if let Ok(room) = RoomId::parse(String::from_utf8_lossy(&k[prefix.len()..]).as_ref()) {
                out.push(room);
            }
        }
        Ok(out)
    }
}
