//! What push rules need to know about a room at one state: who may be
//! notified (local, joined, not an AI user) under which display name, how
//! many people are joined, and the power levels that decide who may notify
//! the whole room.

use std::collections::{HashMap, HashSet};

use ruma::{OwnedRoomId, OwnedUserId, UserId};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::rooms::power::as_level;
use crate::rooms::{Pdu, RoomRecord, Rooms};

#[derive(Clone)]
pub struct Recipient {
    pub user: OwnedUserId,
    /// Lowercased, as push rules compare it.
    pub display_name: String,
}

#[derive(Clone)]
pub struct RoomPushCtx {
    /// The state hash this context describes.
    pub state: u64,
    pub room_id: OwnedRoomId,
    /// Everyone joined, local or not.
    joined: HashSet<OwnedUserId>,
    pub recipients: Vec<Recipient>,
    levels: Levels,
}

/// The power levels relevant to notifications.
#[derive(Clone, Default)]
struct Levels {
    /// `None` until the room has a power levels event.
    users: Option<HashMap<String, i64>>,
    users_default: i64,
    notify_room: i64,
    creator: Option<OwnedUserId>,
    /// Creators who outrank everyone (room versions that privilege them).
    privileged: Vec<OwnedUserId>,
    privilege_creators: bool,
}

impl Levels {
    fn level_of(&self, user: &UserId) -> i64 {
        if self.privileged.iter().any(|c| c == user) {
            return i64::MAX;
        }
        match &self.users {
            Some(users) => users
                .get(user.as_str())
                .copied()
                .unwrap_or(self.users_default),
            None if self.creator.as_deref() == Some(user) => 100,
            None => 0,
        }
    }

    fn read_power_levels(&mut self, content: &Value) {
        let users = content
            .get("users")
            .and_then(Value::as_object)
            .map(|users| {
                users
                    .iter()
                    .filter_map(|(u, l)| Some((u.clone(), as_level(Some(l))?)))
                    .collect()
            })
            .unwrap_or_default();
        self.users = Some(users);
        self.users_default = as_level(content.get("users_default")).unwrap_or(0);
        self.notify_room =
            as_level(content.get("notifications").and_then(|n| n.get("room"))).unwrap_or(50);
    }

    fn read_create(&mut self, pdu: &Pdu) {
        self.creator = Some(pdu.sender.clone());
        self.privileged.clear();
        if self.privilege_creators {
            self.privileged.push(pdu.sender.clone());
            if let Some(extra) = pdu
                .content_value()
                .get("additional_creators")
                .and_then(Value::as_array)
            {
                self.privileged.extend(
                    extra
                        .iter()
                        .filter_map(Value::as_str)
                        .filter_map(|u| UserId::parse(u).ok()),
                );
            }
        }
    }
}

/// A member event's membership and display name.
fn member_of(pdu: &Pdu) -> (String, Option<String>) {
    let content = pdu.content_value();
    let membership = content
        .get("membership")
        .and_then(Value::as_str)
        .unwrap_or("leave")
        .to_owned();
    let name = content
        .get("displayname")
        .and_then(Value::as_str)
        .map(str::to_owned);
    (membership, name)
}

impl RoomPushCtx {
    /// Reads the context from the whole state of `head`.
    pub fn build(rooms: &Rooms, head: &RoomRecord) -> Result<Self> {
        let rules = head
            .version
            .rules()
            .ok_or_else(|| Error::unsupported_room_version("Unsupported room version"))?;
        let mut ctx = Self {
            state: head.state,
            room_id: head.room_id.clone(),
            joined: HashSet::new(),
            recipients: Vec::new(),
            levels: Levels {
                privilege_creators: rules.authorization.explicitly_privilege_room_creators,
                notify_room: 50,
                ..Levels::default()
            },
        };
        for (short_key, short_event) in rooms.state.load(head.state)?.iter() {
            let (kind, key) = rooms.state.key_of(*short_key)?;
            match (kind.as_str(), key.as_str()) {
                ("m.room.member", _) => {
                    ctx.apply_member(rooms, &*rooms.pdu_by_short(*short_event)?)
                }
                ("m.room.power_levels", "") => ctx
                    .levels
                    .read_power_levels(&rooms.pdu_by_short(*short_event)?.content_value()),
                ("m.room.create", "") => {
                    ctx.levels.read_create(&*rooms.pdu_by_short(*short_event)?)
                }
                _ => {}
            }
        }
        Ok(ctx)
    }

    /// This context moved on by one state event.
    pub fn advanced(&self, rooms: &Rooms, after: &RoomRecord, pdu: &Pdu) -> Result<Self> {
        let mut next = self.clone();
        next.state = after.state;
        match (pdu.kind.to_string().as_str(), pdu.state_key.as_deref()) {
            ("m.room.member", _) => {
                next.forget_member(pdu);
                next.apply_member(rooms, pdu);
            }
            ("m.room.power_levels", Some("")) => {
                next.levels.read_power_levels(&pdu.content_value())
            }
            ("m.room.create", Some("")) => next.levels.read_create(pdu),
            _ => {}
        }
        Ok(next)
    }

    /// Removes what an earlier member event of the same user added.
    fn forget_member(&mut self, pdu: &Pdu) {
        let Some(user) = pdu.state_key.as_deref().and_then(|k| UserId::parse(k).ok()) else {
            return;
        };
        self.joined.remove(&user);
        self.recipients.retain(|r| r.user != user);
    }

    /// Whether the user is one whose notifications are recorded.
    pub fn is_recipient(&self, user: &UserId) -> bool {
        self.recipients.iter().any(|r| r.user == user)
    }

    pub fn joined_count(&self) -> u64 {
        self.joined.len() as u64
    }

    fn apply_member(&mut self, rooms: &Rooms, pdu: &Pdu) {
        let Some(user) = pdu.state_key.as_deref().and_then(|k| UserId::parse(k).ok()) else {
            return;
        };
        let (membership, name) = member_of(pdu);
        if membership != "join" {
            return;
        }
        self.joined.insert(user.clone());
        if rooms.is_local(&user) && !crate::ai::is_ai_user(&user) {
            self.recipients.push(Recipient {
                display_name: name
                    .unwrap_or_else(|| user.localpart().to_owned())
                    .to_lowercase(),
                user,
            });
        }
    }

    /// Whether the sender may notify the whole room (`@room`).
    pub fn may_notify_room(&self, sender: &UserId) -> bool {
        self.levels.level_of(sender) >= self.levels.notify_room
    }
}
