//! Membership indexes: which rooms a user is in (and how), and who is in a
//! room. Written in the same batch as the member event they come from.

use matrixos_storage::typed::{room_prefix, TextPair};
use matrixos_storage::{tables, Batch, Db};
use ruma::events::StateEventType;
use ruma::{OwnedRoomId, OwnedServerName, OwnedUserId, RoomId, UserId};
use serde_json::Value;

use super::{Pdu, RoomRecord, Rooms};
use crate::error::{Error, Result};
use crate::store::Wake;

pub use matrixos_storage::records::MembershipRecord;

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

fn user_room_key(user: &UserId, room: &RoomId) -> (String, String) {
    (user.to_string(), room.to_string())
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
        let membership = pdu.membership().unwrap_or_else(|| "leave".to_owned());
        let stripped_state = if membership == "invite" || membership == "knock" {
            let mut stripped = self.stripped_state(head.state)?;
            stripped.push(pdu.to_stripped());
            stripped
        } else {
            Vec::new()
        };
        let key = user_room_key(&target, &head.room_id);
        // A joined member's new member event (a profile change) keeps the
        // position of the join: syncs tell a join by it.
        let count = match tables::USER_ROOMS.get(&self.store.db, &key)? {
            Some(old) if old.membership == "join" && membership == "join" => old.count,
            _ => count,
        };
        let record = MembershipRecord {
            membership: membership.clone(),
            count,
            event: short_event,
            stripped_state,
        };
        tables::USER_ROOMS.put(batch, &key, &record);
        tables::ROOM_MEMBERS.put(batch, &(short_room, target.to_string()), &membership);
        Ok(())
    }

    /// The state an invitee or knocker is shown of a room: its create
    /// event, name, avatar, topic, join rules, alias and encryption.
    pub fn stripped_state(&self, state: u64) -> Result<Vec<Value>> {
        self.stripped_state_events(state)?
            .into_iter()
            .map(|short| Ok(self.pdu_by_short(short)?.to_stripped()))
            .collect()
    }

    /// The events of [`Self::stripped_state`], by short id (sent to other
    /// servers as full PDUs).
    pub fn stripped_state_events(&self, state: u64) -> Result<Vec<u64>> {
        let map = self.state.load(state)?;
        let mut shorts = Vec::new();
        for kind in STRIPPED_TYPES {
            if let Some(key) = self.state.short_key(&kind.to_string(), "")? {
                if let Some(short) = map.get(&key) {
                    shorts.push(*short);
                }
            }
        }
        Ok(shorts)
    }

    /// Removes the user's record of a room they left (`/forget`).
    pub async fn forget(&self, user: &UserId, room: &RoomId) -> Result<()> {
        let mut batch = Batch::new();
        tables::USER_ROOMS.delete(&mut batch, &user_room_key(user, room));
        self.store.commit(batch, vec![], Wake::none()).await
    }

    pub fn membership(&self, user: &UserId, room: &RoomId) -> Result<Option<MembershipRecord>> {
        Ok(tables::USER_ROOMS.get(&self.store.db, &user_room_key(user, room))?)
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

    /// Every room this server holds, with its head.
    pub fn all_rooms(&self) -> Result<Vec<(u64, RoomRecord)>> {
        tables::ROOMS
            .scan_prefix(&self.store.db, &[])
            .map(|item| Ok(item?))
            .collect()
    }

    /// Every user with a membership in the room, with that membership.
    pub fn members(&self, short_room: u64) -> Result<Vec<(OwnedUserId, String)>> {
        let prefix = room_prefix(short_room);
        let mut out = Vec::new();
        for item in tables::ROOM_MEMBERS.scan_prefix(&self.store.db, &prefix) {
            let ((_, user), membership) = item?;
            if let Ok(user) = UserId::parse(user) {
                out.push((user, membership));
            }
        }
        Ok(out)
    }

    /// The servers with a joined member in the room, this one first (if it
    /// has one): where to join it through.
    pub fn servers_in_room(&self, room: &RoomId) -> Result<Vec<OwnedServerName>> {
        let short = self
            .short_room(room)?
            .ok_or_else(|| Error::not_found("Unknown room"))?;
        let mut servers: Vec<OwnedServerName> = Vec::new();
        for (user, membership) in self.members(short)? {
            let server = user.server_name();
            if membership == "join" && !servers.iter().any(|s| s == server) {
                servers.push(server.to_owned());
            }
        }
        servers.sort_by_key(|s| *s != self.server_name);
        Ok(servers)
    }

    /// Whether a user of this server is joined to the room (whether this
    /// server is in it).
    pub fn has_joined_member(&self, room: &RoomId) -> Result<bool> {
        Ok(match self.short_room(room)? {
            Some(_) => self.servers_in_room(room)?.contains(&self.server_name),
            None => false,
        })
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
    let prefix = TextPair::prefix(user.as_str());
    let mut out = Vec::new();
    for item in tables::USER_ROOMS.scan_prefix(db, &prefix) {
        let ((_, room), record) = item?;
        if let Ok(room) = RoomId::parse(room) {
            out.push((room, record));
        }
    }
    Ok(out)
}

impl Rooms {
    /// Records an invite from another server to a room this server is not
    /// in: the event is kept as an outlier and the user sees the invite,
    /// with the stripped state the inviting server sent, at once.
    pub async fn store_remote_invite(
        &self,
        room: &RoomId,
        remote: super::remote::RemotePdu,
        mut stripped_state: Vec<Value>,
    ) -> Result<()> {
        let (pdu, stored) = remote.into_parts();
        let target = pdu
            .state_key
            .as_deref()
            .and_then(|k| UserId::parse(k).ok())
            .ok_or_else(|| Error::bad_json("An invite names a user"))?;
        stripped_state.push(pdu.to_stripped());
        self.record_out_of_room(room, &target, pdu, stored, "invite", stripped_state)
            .await
    }

    /// Records a member event of a room this server is not in (an invite
    /// received, an invite rejected through another server) as an outlier
    /// and as the user's membership.
    pub(crate) async fn record_out_of_room(
        &self,
        room: &RoomId,
        target: &UserId,
        pdu: Pdu,
        stored: Vec<u8>,
        membership: &str,
        stripped_state: Vec<Value>,
    ) -> Result<()> {
        let mut batch = Batch::new();
        let short = match self.short_event(&pdu.event_id)? {
            Some(short) => short,
            None => {
                let short = self.store.db.allocate_short(&mut batch);
                self.put_event(&mut batch, short, &pdu.event_id, &stored);
                tables::OUTLIERS.put(&mut batch, &short, &());
                short
            }
        };
        let position = self.store.db.reserve_count(&mut batch);
        let record = MembershipRecord {
            membership: membership.to_owned(),
            count: position.get(),
            event: short,
            stripped_state,
        };
        tables::USER_ROOMS.put(&mut batch, &user_room_key(target, room), &record);
        self.store
            .commit(batch, vec![position], crate::store::Wake::user(target))
            .await
    }
}
