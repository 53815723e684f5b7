//! Event filters (`/user/{id}/filter`, inline `filter=` JSON).

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::rooms::Pdu;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EventFilter {
    pub limit: Option<usize>,
    pub types: Option<Vec<String>>,
    pub not_types: Vec<String>,
    pub senders: Option<Vec<String>>,
    pub not_senders: Vec<String>,
    pub rooms: Option<Vec<String>>,
    pub not_rooms: Vec<String>,
    pub lazy_load_members: bool,
    pub include_redundant_members: bool,
    /// Counts per thread in `unread_thread_notifications` (timeline filter).
    pub unread_thread_notifications: bool,
    /// Only events whose content has a `url` string (true), or only those
    /// without one (false).
    pub contains_url: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RoomFilter {
    pub rooms: Option<Vec<String>>,
    pub not_rooms: Vec<String>,
    pub include_leave: bool,
    pub timeline: EventFilter,
    pub state: EventFilter,
    pub ephemeral: EventFilter,
    pub account_data: EventFilter,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Filter {
    pub room: RoomFilter,
    pub account_data: EventFilter,
    pub presence: EventFilter,
}

/// `m.room.*` matches every type starting with `m.room.`.
fn type_matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => pattern == kind,
    }
}

impl EventFilter {
    pub fn allows_type_and_sender(&self, kind: &str, sender: &str) -> bool {
        if self.not_types.iter().any(|p| type_matches(p, kind)) {
            return false;
        }
        if let Some(types) = &self.types {
            if !types.iter().any(|p| type_matches(p, kind)) {
                return false;
            }
        }
        if self.not_senders.iter().any(|s| s == sender) {
            return false;
        }
        if let Some(senders) = &self.senders {
            if !senders.iter().any(|s| s == sender) {
                return false;
            }
        }
        true
    }

    pub fn allows(&self, pdu: &Pdu) -> bool {
        let unfiltered = self.types.is_none()
            && self.not_types.is_empty()
            && self.senders.is_none()
            && self.not_senders.is_empty();
        let url_as_asked = self
            .contains_url
            .is_none_or(|wanted| has_url(pdu) == wanted);
        url_as_asked
            && (unfiltered
                || self.allows_type_and_sender(&pdu.kind.to_string(), pdu.sender.as_str()))
    }
}

/// Whether an event's content has a `url` string (a file, an image), as
/// Synapse reads `contains_url`.
fn has_url(pdu: &Pdu) -> bool {
    #[derive(Deserialize)]
    struct Url<'a> {
        #[serde(borrow)]
        url: Option<&'a serde_json::value::RawValue>,
    }
    serde_json::from_str::<Url<'_>>(pdu.content.get())
        .ok()
        .and_then(|c| c.url)
        .is_some_and(|url| url.get().starts_with('"'))
}

/// Whether a filter's `rooms` (all when absent) and `not_rooms` let `room`
/// through.
fn lets_room_through(rooms: Option<&[String]>, not_rooms: &[String], room: &str) -> bool {
    !not_rooms.iter().any(|r| r == room) && rooms.is_none_or(|rs| rs.iter().any(|r| r == room))
}

impl RoomFilter {
    pub fn allows_room(&self, room: &str) -> bool {
        lets_room_through(self.rooms.as_deref(), &self.not_rooms, room)
    }
}

impl EventFilter {
    pub fn allows_room(&self, room: &str) -> bool {
        lets_room_through(self.rooms.as_deref(), &self.not_rooms, room)
    }
}

impl Filter {
    pub fn from_json(value: &Value) -> Result<Self> {
        serde_json::from_value(value.clone())
            .map_err(|e| Error::bad_json(format!("Invalid filter: {e}")))
    }

    /// A `/messages` filter: a RoomEventFilter as inline JSON.
    pub fn parse_room_event_filter(text: &str) -> Result<EventFilter> {
        serde_json::from_str(text).map_err(|e| Error::bad_json(format!("Invalid filter: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards_and_exclusions() {
        let f: EventFilter = serde_json::from_value(json!({
            "types": ["m.room.*"], "not_types": ["m.room.member"], "not_senders": ["@spam:x"]
        }))
        .unwrap();
        assert!(f.allows_type_and_sender("m.room.message", "@a:x"));
        assert!(!f.allows_type_and_sender("m.room.member", "@a:x"));
        assert!(!f.allows_type_and_sender("m.reaction", "@a:x"));
        assert!(!f.allows_type_and_sender("m.room.message", "@spam:x"));
    }

    #[test]
    fn bad_filters_are_refused() {
        assert!(Filter::from_json(&json!({"room": {"timeline": {"limit": "ten"}}})).is_err());
        let f = Filter::from_json(&json!({"room": {"rooms": ["!a:x"]}})).unwrap();
        assert!(f.room.allows_room("!a:x") && !f.room.allows_room("!b:x"));
    }
}
