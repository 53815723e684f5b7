//! Room aliases and the public room directory.
//!
//! The aliases table holds both directions: `#alias` → record, and
//! `(!room, #alias)` → nothing (room ids start with `!`, aliases with `#`,
//! so the two never collide).

use matrixos_storage::tables::{ALIASES, PUBLIC_ROOMS, PUBLIC_ROOMS_PART, ROOM_ALIASES};
use matrixos_storage::typed::TextPair;
use matrixos_storage::Batch;
use ruma::{OwnedRoomAliasId, OwnedRoomId, RoomAliasId, RoomId, UserId};

use super::Rooms;
use crate::error::{Error, Result};
use crate::store::Wake;

pub use matrixos_storage::records::AliasRecord;

fn public_key(room: &RoomId) -> (String, String) {
    (PUBLIC_ROOMS_PART.to_owned(), room.to_string())
}

fn room_alias_key(room: &RoomId, alias: &RoomAliasId) -> (String, String) {
    (room.to_string(), alias.to_string())
}

impl Rooms {
    pub fn alias(&self, alias: &RoomAliasId) -> Result<Option<AliasRecord>> {
        Ok(ALIASES.get(&self.store.db, alias.as_str())?)
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
        ALIASES.put(batch, alias.as_str(), &record);
        ROOM_ALIASES.put(batch, &room_alias_key(room, alias), &());
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
        ALIASES.delete(&mut batch, alias.as_str());
        ROOM_ALIASES.delete(&mut batch, &room_alias_key(&record.room_id, alias));
        self.store.commit(batch, vec![], Wake::none()).await
    }

    /// The local aliases pointing at a room.
    pub fn aliases_of(&self, room: &RoomId) -> Result<Vec<OwnedRoomAliasId>> {
        let prefix = TextPair::prefix(room.as_str());
        let mut out = Vec::new();
        for item in ROOM_ALIASES.scan_prefix(&self.store.db, &prefix) {
            let ((_, alias), ()) = item?;
            if let Ok(alias) = RoomAliasId::parse(alias) {
                out.push(alias);
            }
        }
        Ok(out)
    }

    /// Lists or unlists a room in the public room directory.
    pub async fn set_published(&self, room: &RoomId, published: bool) -> Result<()> {
        let mut batch = Batch::new();
        if published {
            PUBLIC_ROOMS.put(&mut batch, &public_key(room), &());
        } else {
            PUBLIC_ROOMS.delete(&mut batch, &public_key(room));
        }
        self.store.commit(batch, vec![], Wake::none()).await
    }

    pub fn is_published(&self, room: &RoomId) -> Result<bool> {
        Ok(PUBLIC_ROOMS.contains(&self.store.db, &public_key(room))?)
    }

    /// Every room in the public directory.
    pub fn published_rooms(&self) -> Result<Vec<OwnedRoomId>> {
        let prefix = TextPair::prefix(PUBLIC_ROOMS_PART);
        let mut out = Vec::new();
        for item in PUBLIC_ROOMS.scan_prefix(&self.store.db, &prefix) {
            let ((_, room), ()) = item?;
            if let Ok(room) = RoomId::parse(room) {
                out.push(room);
            }
        }
        Ok(out)
    }
}
