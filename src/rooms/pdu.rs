//! A room event as stored (the PDU) and its client-facing serialisation.

use std::sync::OnceLock;

use ruma::events::TimelineEventType;
use ruma::{
    MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UInt, UserId,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue as RawJsonValue;
use serde_json::{json, Map, Value};

use super::auth_shortcut::SendLevels;

/// An event as the client-server API shows it.
#[derive(Serialize)]
struct ClientEvent<'a> {
    #[serde(rename = "type")]
    kind: &'a TimelineEventType,
    content: &'a RawJsonValue,
    event_id: &'a OwnedEventId,
    sender: &'a OwnedUserId,
    origin_server_ts: MilliSecondsSinceUnixEpoch,
    #[serde(skip_serializing_if = "Option::is_none")]
    room_id: Option<&'a RoomId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redacts: Option<OwnedEventId>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    unsigned: Map<String, Value>,
}

/// A PDU as this server reads it. Room versions 3 and later carry no
/// `event_id` on the wire: it is kept beside the PDU (`stored_event`) and
/// set by [`Pdu::from_signed`].
#[derive(Debug, Clone, Deserialize)]
pub struct Pdu {
    #[serde(default = "id_set_after_parsing")]
    pub event_id: OwnedEventId,
    /// Absent only on room version 12 create events, whose id *is* the room's.
    pub room_id: Option<OwnedRoomId>,
    pub sender: OwnedUserId,
    pub origin_server_ts: MilliSecondsSinceUnixEpoch,
    #[serde(rename = "type")]
    pub kind: TimelineEventType,
    pub content: Box<RawJsonValue>,
    pub state_key: Option<String>,
    #[serde(default, deserialize_with = "super::event_refs::ids")]
    pub prev_events: Vec<OwnedEventId>,
    #[serde(default, deserialize_with = "super::event_refs::ids")]
    pub auth_events: Vec<OwnedEventId>,
    pub depth: UInt,
    pub redacts: Option<OwnedEventId>,
    /// Whether the auth rules rejected this event (not part of the JSON).
    #[serde(skip)]
    pub rejected: bool,
    /// The power levels a power levels event sets, once read.
    #[serde(skip)]
    send_levels: OnceLock<Option<Box<SendLevels>>>,
}

/// A stand-in replaced by the id the PDU is stored under.
fn id_set_after_parsing() -> OwnedEventId {
    OwnedEventId::try_from("$0").expect("a valid event id")
}

impl Pdu {
    /// The event whose signed PDU is `signed`, named `event_id` (or by its
    /// own `event_id` field, in room versions 1 and 2 and older records).
    pub fn from_signed(event_id: Option<OwnedEventId>, signed: &[u8]) -> serde_json::Result<Pdu> {
        let mut pdu: Pdu = serde_json::from_slice(signed)?;
        if let Some(id) = event_id {
            pdu.event_id = id;
        }
        Ok(pdu)
    }

    /// `content.membership`, read without parsing the rest of the content.
    pub fn membership(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Content {
            membership: Option<String>,
        }
        serde_json::from_str::<Content>(self.content.get())
            .ok()?
            .membership
    }

    /// The levels this power levels event sets, parsed on first use (see
    /// `auth_shortcut`).
    pub fn send_levels(&self) -> Option<&SendLevels> {
        self.send_levels
            .get_or_init(|| SendLevels::parse(self.content.get()).map(Box::new))
            .as_deref()
    }

    pub fn content_value(&self) -> Value {
        serde_json::from_str(self.content.get()).unwrap_or(Value::Null)
    }

    /// A copy with its content pruned as a redaction prunes it, for
    /// serving (the stored event is unchanged).
    pub fn pruned(
        &self,
        rules: &ruma::room_version_rules::RedactionRules,
    ) -> serde_json::Result<Pdu> {
        let mut content: ruma::CanonicalJsonObject = serde_json::from_str(self.content.get())?;
        ruma::canonical_json::redact_content_in_place(&mut content, rules, self.kind.to_string());
        let mut copy = self.clone();
        copy.content = serde_json::value::to_raw_value(&content)?;
        copy.send_levels = OnceLock::new();
        Ok(copy)
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
        serde_json::to_value(self.client_view(room_id, unsigned)).unwrap_or(Value::Null)
    }

    /// [`Self::to_client`] as JSON text, with the content copied through
    /// as it is stored instead of parsed and re-encoded (for long pages).
    pub fn to_client_raw(
        &self,
        room_id: Option<&RoomId>,
        unsigned: Map<String, Value>,
    ) -> serde_json::Result<Box<RawJsonValue>> {
        serde_json::value::to_raw_value(&self.client_view(room_id, unsigned))
    }

    fn client_view<'a>(
        &'a self,
        room_id: Option<&'a RoomId>,
        unsigned: Map<String, Value>,
    ) -> ClientEvent<'a> {
        ClientEvent {
            kind: &self.kind,
            content: &self.content,
            event_id: &self.event_id,
            sender: &self.sender,
            origin_server_ts: self.origin_server_ts,
            room_id,
            state_key: self.state_key.as_deref(),
            redacts: self.redacted_event(),
            unsigned,
        }
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
        self.rejected
    }
}
