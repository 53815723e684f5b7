//! A room event as stored (the PDU) and its client-facing serialisation.

use ruma::events::TimelineEventType;
use ruma::{
    MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UInt, UserId,
};
use serde::Deserialize;
use serde_json::value::RawValue as RawJsonValue;
use serde_json::{json, Map, Value};

/// A PDU as this server reads it. The stored JSON is the signed PDU plus
/// `event_id` (which room versions ≥ 3 do not carry on the wire).
#[derive(Debug, Clone, Deserialize)]
pub struct Pdu {
    pub event_id: OwnedEventId,
    /// Absent only on room version 12 create events, whose id *is* the room's.
    pub room_id: Option<OwnedRoomId>,
    pub sender: OwnedUserId,
    pub origin_server_ts: MilliSecondsSinceUnixEpoch,
    #[serde(rename = "type")]
    pub kind: TimelineEventType,
    pub content: Box<RawJsonValue>,
    pub state_key: Option<String>,
    #[serde(default)]
    pub prev_events: Vec<OwnedEventId>,
    #[serde(default)]
    pub auth_events: Vec<OwnedEventId>,
    pub depth: UInt,
    pub redacts: Option<OwnedEventId>,
}

impl Pdu {
    pub fn content_value(&self) -> Value {
        serde_json::from_str(self.content.get()).unwrap_or(Value::Null)
    }

    /// The event a redaction targets, wherever the room version puts it.
    pub fn redacted_event(&self) -> Option<OwnedEventId> {
        if self.redacts.is_some() || self.kind != TimelineEventType::RoomRedaction {
            return self.redacts.clone();
        }
        serde_json::from_str::<Value>(self.content.get())
            .ok()
            .and_then(|c| c.get("redacts").and_then(Value::as_str).map(str::to_owned))
            .and_then(|id| id.try_into().ok())
    }

    /// The client-server API shape of this event. `room_id` is included for
    /// endpoints that need it (`/event`, `/messages`), not in `/sync`.
    pub fn to_client(&self, room_id: Option<&RoomId>, unsigned: Map<String, Value>) -> Value {
        let mut event = json!({
            "type": self.kind.to_string(),
            "content": self.content_value(),
            "event_id": self.event_id,
            "sender": self.sender,
            "origin_server_ts": self.origin_server_ts,
        });
        if let Some(room) = room_id {
            event["room_id"] = json!(room);
        }
        if let Some(key) = &self.state_key {
            event["state_key"] = json!(key);
        }
        if let Some(redacts) = self.redacted_event() {
            event["redacts"] = json!(redacts);
        }
        if !unsigned.is_empty() {
            event["unsigned"] = Value::Object(unsigned);
        }
        event
    }

    /// The stripped form used in invite and knock state.
    pub fn to_stripped(&self) -> Value {
        json!({
            "type": self.kind.to_string(),
            "state_key": self.state_key.clone().unwrap_or_default(),
            "content": self.content_value(),
            "sender": self.sender,
        })
    }

    pub fn is_state(&self) -> bool {
        self.state_key.is_some()
    }

    pub fn sender(&self) -> &UserId {
        &self.sender
    }
}

impl ruma::state_res::Event for Pdu {
    type Id = OwnedEventId;

    fn event_id(&self) -> &Self::Id {
        &self.event_id
    }
    fn room_id(&self) -> Option<&RoomId> {
        self.room_id.as_deref()
    }
    fn sender(&self) -> &UserId {
        &self.sender
    }
    fn origin_server_ts(&self) -> MilliSecondsSinceUnixEpoch {
        self.origin_server_ts
    }
    fn event_type(&self) -> &TimelineEventType {
        &self.kind
    }
    fn content(&self) -> &RawJsonValue {
        &self.content
    }
    fn state_key(&self) -> Option<&str> {
        self.state_key.as_deref()
    }
    fn prev_events(&self) -> Box<dyn DoubleEndedIterator<Item = &Self::Id> + '_> {
        Box::new(self.prev_events.iter())
    }
    fn auth_events(&self) -> Box<dyn DoubleEndedIterator<Item = &Self::Id> + '_> {
        Box::new(self.auth_events.iter())
    }
    fn redacts(&self) -> Option<&Self::Id> {
        self.redacts.as_ref()
    }
    fn rejected(&self) -> bool {
        false
    }
}
