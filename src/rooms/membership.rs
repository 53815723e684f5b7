//! Membership indexes: which rooms a user is in (and how), and who is in a
//! room. Written in the same batch as the member event they come from.

use matrixos_storage::{keys, Batch, Db, Table};
use ruma::events::StateEventType;
use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Pdu, RoomRecord, Rooms};
use crate::error::Result;
use crate::services::Wake;

/// A user's membership in one room.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MembershipRecord {
    pub membership: String,
    /// Stream position of the member event.
    pub count: u64,
    /// Short id of the member event.
    pub event: u64,
    /// Stripped state shown with an invite or knock.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stripped_state: Vec<Value>,
}

/// State types shown to invitees before they join.
const STRIPPED_TYPES: [StateEventType; 7] = [
    StateEventType::RoomCreate,
    StateEventType::RoomJoinRules,
    StateEventType::RoomName,
    StateEventType::RoomAvatar,
    StateEventType::RoomCanonicalAlias,
    StateEventType::RoomEncryption,
    StateEventType::RoomTopic,
];

fn user_room_key(user: &UserId, room: &RoomId) -> Vec<u8> {
    keys::join(&[user.as_bytes(), room.as_bytes()])
}

impl Rooms {
    pub(crate) fn index_membership(
        &self,
        batch: &mut Batch,
        short_room: u64,
        head: &RoomRecord,
        pdu: &Pdu,
        short_event: u64,
        count: u64,
    ) -> Result<()> {
        let Some(target) = pdu.state_key.as_deref().and_then(|k| UserId::parse(k).ok()) else {
            return Ok(());
        };
        let membership = pdu
            .content_value()
            .get("membership")
            .and_then(Value::as_str)
            .unwrap_or("leave")
            .to_owned();
        let stripped_state = if membership == "invite" || membership == "knock" {
            let mut stripped = Vec::new();
            for kind in STRIPPED_TYPES {
                if let Some(event) = self.state_event(head.state, &kind.to_string(), "")? {
                    stripped.push(event.to_stripped());
                }
            }
            stripped.push(pdu.to_stripped());
            stripped
        } else {
            Vec::new()
        };
        let record = MembershipRecord {
            membership: membership.clone(),
            count,
            event: short_event,
            stripped_state,
        };
        batch.put(
            Table::UserRooms,
            user_room_key(&target, &head.room_id),
            serde_json::to_vec(&record)?,
        );
        batch.put(
            Table::RoomMembers,
            keys::short_and_str(short_room, target.as_str()),
            membership.into_bytes(),
        );
        Ok(())
    }

    /// Removes the user's record of a room they left (`/forget`).
    pub async fn forget(&self, user: &UserId, room: &RoomId) -> Result<()> {
        let mut batch = Batch::new();
        batch.delete(Table::UserRooms, user_room_key(user, room));
        self.store.commit(batch, vec![], Wake::none()).await
    }

    pub fn membership(&self, user: &UserId, room: &RoomId) -> Result<Option<MembershipRecord>> {
        match self
            .store
            .db
            .get(Table::UserRooms, &user_room_key(user, room))?
        {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    pub fn is_joined(&self, user: &UserId, room: &RoomId) -> Result<bool> {
        Ok(self
            .membership(user, room)?
            .is_some_and(|m| m.membership == "join"))
    }

    /// Every room the user has a membership in, with that membership.
    pub fn rooms_of(&self, user: &UserId) -> Result<Vec<(OwnedRoomId, MembershipRecord)>> {
        rooms_of(&self.store.db, user)
    }

    pub fn joined_rooms(&self, user: &UserId) -> Result<Vec<OwnedRoomId>> {
        Ok(self
            .rooms_of(user)?
            .into_iter()
            .filter(|(_, m)| m.membership == "join")
            .map(|(r, _)| r)
            .collect())
    }

    /// Every user with a membership in the room, with that membership.
    pub fn members(&self, short_room: u64) -> Result<Vec<(OwnedUserId, String)>> {
        let prefix = short_room.to_be_bytes();
        let mut out = Vec::new();
        for item in self.store.db.scan_prefix(Table::RoomMembers, &prefix) {
            let (k, v) = item?;
            if let Ok(user) = UserId::parse(String::from_utf8_lossy(&k[8..]).as_ref()) {
                out.push((user, String::from_utf8_lossy(&v).into_owned()));
            }
        }
        Ok(out)
    }

    /// Whether two users share a joined room (who may see whose devices).
    pub fn share_a_room(&self, a: &UserId, b: &UserId) -> Result<bool> {
        if a == b {
            return Ok(true);
        }
        for room in self.joined_rooms(a)? {
            if self.is_joined(b, &room)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Every room the user has a membership in, with that membership.
pub fn rooms_of(db: &Db, user: &UserId) -> Result<Vec<(OwnedRoomId, MembershipRecord)>> {
    let prefix = keys::prefix(&[user.as_bytes()]);
    let mut out = Vec::new();
    for item in db.scan_prefix(Table::UserRooms, &prefix) {
        let (k, v) = item?;
        let Ok(room) = RoomId::parse(String::from_utf8_lossy(&k[prefix.len()..]).as_ref()) else {
            continue;
        };
        out.push((room, serde_json::from_slice(&v)?));
    }
    Ok(out)
}
