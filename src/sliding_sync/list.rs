//! The rooms a connection's lists hold: the user's rooms, filtered, ordered
//! by their latest activity (bump stamp) and cut to the lists' ranges.

use std::collections::{BTreeMap, BTreeSet};

use matrixos_storage::records::MembershipRecord;
use ruma::{OwnedRoomId, RoomId, UserId};
use serde_json::Value;

use super::request::{ListFilters, ListRequest};
use crate::error::Result;
use crate::services::Services;

/// A room of the user's that a list may hold.
pub struct Candidate {
    pub room_id: OwnedRoomId,
    pub membership: MembershipRecord,
    /// The room's short id, when this server has the room (not for an
    /// invite over federation).
    pub short_room: Option<u64>,
    pub bump_stamp: u64,
}

impl Candidate {
    pub fn is_invite(&self) -> bool {
        self.membership.membership == "invite"
    }
}

/// The user's rooms at stream position `next`, most recently active first:
/// joined, invited and knocked rooms, and rooms left since `since` (so
/// that the client learns it left them).
pub fn candidates(s: &Services, user: &UserId, since: u64, next: u64) -> Result<Vec<Candidate>> {
    let mut out = Vec::new();
    for (room_id, membership) in s.rooms.rooms_of(user)? {
        if membership.count > next {
            continue;
        }
        let listed = match membership.membership.as_str() {
            "join" | "invite" | "knock" => true,
            _ => since > 0 && membership.count > since,
        };
        if !listed {
            continue;
        }
        let short_room = s.rooms.short_room(&room_id)?;
        let bump_stamp = match (membership.membership.as_str(), short_room) {
            ("join", Some(short)) => s.bump_stamps.of(&s.rooms, short)?.min(next),
            _ => membership.count,
        };
        out.push(Candidate {
            room_id,
            membership,
            short_room,
            bump_stamp,
        });
    }
    out.sort_by(|a, b| {
        b.bump_stamp
            .cmp(&a.bump_stamp)
            .then_with(|| a.room_id.cmp(&b.room_id))
    });
    Ok(out)
}

/// What filters ask of rooms, read once per request.
pub struct FilterFacts<'a> {
    s: &'a Services,
    user: &'a UserId,
    direct: Option<BTreeSet<String>>,
    space_children: BTreeMap<OwnedRoomId, BTreeSet<String>>,
}

impl<'a> FilterFacts<'a> {
    pub fn new(s: &'a Services, user: &'a UserId) -> Self {
        Self {
            s,
            user,
            direct: None,
            space_children: BTreeMap::new(),
        }
    }

    /// The rooms `m.direct` names.
    pub fn direct_rooms(&mut self) -> Result<&BTreeSet<String>> {
        if self.direct.is_none() {
            let content = self.s.account_data.get(self.user, None, "m.direct")?;
            let rooms = content
                .as_ref()
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(|users| users.values())
                .filter_map(Value::as_array)
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            self.direct = Some(rooms);
        }
        Ok(self.direct.get_or_insert_default())
    }

    pub fn is_dm(&mut self, room: &RoomId) -> Result<bool> {
        Ok(self.direct_rooms()?.contains(room.as_str()))
    }

    /// A state event's content in the room's current state, or in the
    /// stripped state of an invite or knock.
    fn state_content(&self, room: &Candidate, kind: &str) -> Result<Option<Value>> {
        if matches!(room.membership.membership.as_str(), "invite" | "knock") {
            let found = room.membership.stripped_state.iter().find(|e| {
                e.get("type").and_then(Value::as_str) == Some(kind)
                    && e.get("state_key").and_then(Value::as_str) == Some("")
            });
            return Ok(found.and_then(|e| e.get("content")).cloned());
        }
        let Some(short_room) = room.short_room else {
            return Ok(None);
        };
        let Some(record) = self.s.rooms.record(short_room)? else {
            return Ok(None);
        };
        let event = self.s.rooms.state_event(record.state, kind, "")?;
        Ok(event.map(|e| e.content_value()))
    }

    fn is_encrypted(&self, room: &Candidate) -> Result<bool> {
        Ok(self.state_content(room, "m.room.encryption")?.is_some())
    }

    fn room_type(&self, room: &Candidate) -> Result<Option<String>> {
        let create = self.state_content(room, "m.room.create")?;
        Ok(create
            .as_ref()
            .and_then(|c| c.get("type"))
            .and_then(Value::as_str)
            .map(str::to_owned))
    }

    fn tags(&self, room: &RoomId) -> Result<Vec<String>> {
        let content = self.s.account_data.get(self.user, Some(room), "m.tag")?;
        Ok(content
            .as_ref()
            .and_then(|c| c.get("tags"))
            .and_then(Value::as_object)
            .map(|tags| tags.keys().cloned().collect())
            .unwrap_or_default())
    }

    /// The rooms a space names as its children (`m.space.child` with a
    /// `via`), if the user is in it.
    fn children_of(&mut self, space: &RoomId) -> Result<&BTreeSet<String>> {
        if !self.space_children.contains_key(space) {
            let mut children = BTreeSet::new();
            if self.s.rooms.is_joined(self.user, space)? {
                let (_, record) = self.s.rooms.record_of(space)?;
                for event in self.s.rooms.state_events(record.state)? {
                    let is_child = event.kind.to_string() == "m.space.child"
                        && event.content_value().get("via").is_some_and(|v| {
                            v.as_array().is_some_and(|servers| !servers.is_empty())
                        });
                    if let (true, Some(key)) = (is_child, event.state_key.as_deref()) {
                        children.insert(key.to_owned());
                    }
                }
            }
            self.space_children.insert(space.to_owned(), children);
        }
        Ok(&self.space_children[space])
    }

    /// Whether `room` passes every filter given.
    pub fn allows(&mut self, filters: &ListFilters, room: &Candidate) -> Result<bool> {
        if filters
            .is_invite
            .is_some_and(|want| want != room.is_invite())
        {
            return Ok(false);
        }
        if let Some(want) = filters.is_dm {
            if want != self.is_dm(&room.room_id)? {
                return Ok(false);
            }
        }
        if let Some(want) = filters.is_encrypted {
            if want != self.is_encrypted(room)? {
                return Ok(false);
            }
        }
        if !filters.room_types.is_empty() || !filters.not_room_types.is_empty() {
            let kind = self.room_type(room)?;
            if filters.not_room_types.contains(&kind)
                || (!filters.room_types.is_empty() && !filters.room_types.contains(&kind))
            {
                return Ok(false);
            }
        }
        if !filters.tags.is_empty() || !filters.not_tags.is_empty() {
            let tags = self.tags(&room.room_id)?;
            if tags.iter().any(|t| filters.not_tags.contains(t))
                || (!filters.tags.is_empty() && !tags.iter().any(|t| filters.tags.contains(t)))
            {
                return Ok(false);
            }
        }
        if !filters.spaces.is_empty() {
            let mut inside = false;
            for space in &filters.spaces {
                inside |= self.children_of(space)?.contains(room.room_id.as_str());
            }
            if !inside {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// A list's rooms: how many pass its filters, and the indexes (into
/// `candidates`) of those within its ranges.
pub fn select(
    facts: &mut FilterFacts<'_>,
    list: &ListRequest,
    candidates: &[Candidate],
) -> Result<(u64, Vec<usize>)> {
    let mut passing = Vec::new();
    for (i, room) in candidates.iter().enumerate() {
        let passes = match &list.filters {
            Some(filters) => facts.allows(filters, room)?,
            None => true,
        };
        if passes {
            passing.push(i);
        }
    }
    let mut picked = BTreeSet::new();
    for &(from, to) in &list.ranges {
        let from = usize::try_from(from).unwrap_or(usize::MAX);
        let to = usize::try_from(to).unwrap_or(usize::MAX);
        picked.extend(
            passing
                .iter()
                .skip(from)
                .take(to.saturating_sub(from).saturating_add(1)),
        );
    }
    Ok((passing.len() as u64, picked.into_iter().collect()))
}
