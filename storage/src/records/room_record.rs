//! What the server keeps about a room besides its events.

use ruma::{OwnedEventId, OwnedRoomId, RoomVersionId};
use serde::{Deserialize, Serialize};

use crate::typed::ValueCodec;
use crate::wire::{Reader, Writer};

/// A room's head: its version, current state and forward extremities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomRecord {
    pub room_id: OwnedRoomId,
    pub version: RoomVersionId,
    /// The current state's short id.
    pub state: u64,
    /// Forward extremities: the events a new event points at.
    pub extremities: Vec<OwnedEventId>,
    pub depth: u64,
}

/// The binary format's first byte (JSON records start with `{`).
const FORMAT: u8 = 1;

impl ValueCodec for RoomRecord {
    type Value = RoomRecord;

    fn encode(r: &RoomRecord) -> Vec<u8> {
        let mut w = Writer::new(FORMAT);
        w.text(r.room_id.as_str())
            .text(r.version.as_str())
            .u64(r.state)
            .u64(r.depth)
            .u64(r.extremities.len() as u64);
        for event in &r.extremities {
            w.text(event.as_str());
        }
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Option<RoomRecord> {
        if bytes.first() == Some(&b'{') {
            return serde_json::from_slice(bytes).ok();
        }
        let mut r = Reader::new(bytes, FORMAT)?;
        let room_id = OwnedRoomId::try_from(r.text()?).ok()?;
        let version = RoomVersionId::try_from(r.text()?).ok()?;
        let state = r.u64()?;
        let depth = r.u64()?;
        let n = r.u64()?;
        // Each extremity takes at least two bytes: a count beyond what is
        // left is corruption, not a reason to reserve memory.
        let mut extremities = Vec::with_capacity((n as usize).min(bytes.len() / 2));
        for _ in 0..n {
            extremities.push(OwnedEventId::try_from(r.text()?).ok()?);
        }
        r.done().then_some(RoomRecord {
            room_id,
            version,
            state,
            extremities,
            depth,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_legacy_json_records_read_back() {
        let record = RoomRecord {
            room_id: "!r:example.org".try_into().unwrap(),
            version: RoomVersionId::V12,
            state: 17,
            extremities: vec![
                "$a".try_into().unwrap(),
                "$b:example.org".try_into().unwrap(),
            ],
            depth: 40,
        };
        let bytes = RoomRecord::encode(&record);
        assert_eq!(RoomRecord::decode(&bytes), Some(record.clone()));
        assert_eq!(RoomRecord::decode(&bytes[..bytes.len() - 2]), None);
        let legacy = serde_json::to_vec(&record).unwrap();
        assert_eq!(RoomRecord::decode(&legacy), Some(record));
    }
}
