//! Bump stamps: the stream position of a room's latest event of a kind
//! that moves it up a room list (a message, not a profile change), kept in
//! memory and raised by an append hook as such events arrive.

use std::collections::HashMap;

use matrixos_storage::{Batch, Direction};
use parking_lot::RwLock;

use crate::error::Result;
use crate::rooms::hooks::{AppendHook, Appended};
use crate::rooms::timeline::TimelinePos;
use crate::rooms::Rooms;

/// Event types that bump a room (Synapse's defaults).
const BUMP_TYPES: [&str; 7] = [
    "m.room.create",
    "m.room.message",
    "m.room.encrypted",
    "m.sticker",
    "m.call.invite",
    "m.poll.start",
    "m.beacon_info",
];

/// How many of a room's latest events a first look goes through for one
/// that bumps; past that, its latest event stands in.
const SCAN: usize = 100;

pub fn bumps(kind: &str) -> bool {
    BUMP_TYPES.contains(&kind)
}

#[derive(Default)]
pub struct BumpStamps {
    /// short room id → bump stamp.
    stamps: RwLock<HashMap<u64, u64>>,
}

impl BumpStamps {
    /// The room's bump stamp (0 when it has no event).
    pub fn of(&self, rooms: &Rooms, short_room: u64) -> Result<u64> {
        if let Some(stamp) = self.stamps.read().get(&short_room) {
            return Ok(*stamp);
        }
        let latest = rooms.timeline(
            short_room,
            TimelinePos::live(u64::MAX),
            Direction::Backward,
            SCAN,
            None,
        )?;
        let found = latest
            .iter()
            .find(|e| bumps(&e.pdu.kind.to_string()))
            .or(latest.first())
            .map_or(0, |e| e.pos.stream_count());
        let mut stamps = self.stamps.write();
        let stamp = stamps.entry(short_room).or_insert(found);
        *stamp = (*stamp).max(found);
        Ok(*stamp)
    }
}

impl AppendHook for BumpStamps {
    fn appended(&self, _: &Rooms, _: &mut Batch, event: &Appended<'_>) -> Result<()> {
        if bumps(&event.pdu.kind.to_string()) {
            let mut stamps = self.stamps.write();
            let stamp = stamps.entry(event.short_room).or_insert(event.count);
            *stamp = (*stamp).max(event.count);
        }
        Ok(())
    }
}
