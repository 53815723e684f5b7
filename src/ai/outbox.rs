//! Everything the AI user says goes out here: encrypted with its own
//! device in encrypted rooms, in the clear elsewhere, through the same send
//! path as any local user.

use ruma::events::TimelineEventType;
use ruma::{OwnedEventId, RoomId, UserId};
use serde_json::Value;

use super::crypto;
use crate::error::Result;
use crate::rooms::send::EventDraft;
use crate::services::Services;

pub async fn send_message(
    s: &Services,
    ai: &UserId,
    room: &RoomId,
    content: Value,
) -> Result<OwnedEventId> {
    let draft = match crypto::encryption_of(s, room)? {
        Some(settings) => {
            let encrypted =
                crypto::encrypt(s, ai, room, &settings, "m.room.message", &content).await?;
            EventDraft::message(TimelineEventType::RoomEncrypted, encrypted)
        }
        None => EventDraft::message(TimelineEventType::RoomMessage, content),
    };
    s.rooms.send(ai, room, draft, None).await
}
