//! Which text of an event is searched: the body of a message, the name of
//! an `m.room.name`, the topic of an `m.room.topic`.

use ruma::events::TimelineEventType;
use serde_json::Value;

use crate::rooms::Pdu;

/// The searched part of an event, by its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Body,
    Name,
    Topic,
}

impl Part {
    /// The part searched in events of this type; none for other types.
    pub fn of(kind: &TimelineEventType) -> Option<Part> {
        match kind {
            TimelineEventType::RoomMessage => Some(Part::Body),
            TimelineEventType::RoomName => Some(Part::Name),
            TimelineEventType::RoomTopic => Some(Part::Topic),
            _ => None,
        }
    }

    /// The content field holding it.
    fn key(self) -> &'static str {
        match self {
            Part::Body => "body",
            Part::Name => "name",
            Part::Topic => "topic",
        }
    }
}

/// An event's searched part and its text, while it has one (a redacted
/// event has none).
pub fn searched_text(pdu: &Pdu) -> Option<(Part, String)> {
    let part = Part::of(&pdu.kind)?;
    let content = pdu.content_value();
    let text = content.get(part.key()).and_then(Value::as_str)?;
    Some((part, text.to_owned()))
}
