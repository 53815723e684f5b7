//! Per-event bookkeeping that is not part of the PDU, and what the auth
//! rules decided about the event.

use serde::{Deserialize, Serialize};

use super::TimelinePos;
use crate::typed::ValueCodec;
use crate::wire::{Reader, Writer};

/// What the auth checks decided about an event, stored with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Passed every check: in the timeline and the state.
    #[default]
    Accepted,
    /// Failed against its auth events or the state before it: kept so that
    /// it is never fetched again, never served, never part of any state.
    Rejected,
    /// Allowed by the state before it but not by the room's current state:
    /// kept (and part of the state after it), not served, not a forward
    /// extremity.
    SoftFailed,
}

impl Verdict {
    pub fn is_accepted(self) -> bool {
        self == Verdict::Accepted
    }

    fn byte(self) -> u8 {
        match self {
            Verdict::Accepted => 0,
            Verdict::Rejected => 1,
            Verdict::SoftFailed => 2,
        }
    }

    fn of_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Verdict::Accepted,
            1 => Verdict::Rejected,
            2 => Verdict::SoftFailed,
            _ => return None,
        })
    }
}

/// An event's place and states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    pub room: u64,
    /// The stream position it was appended at; 0 when backfilled.
    pub count: u64,
    /// Its backfill number when it was backfilled (0 otherwise).
    #[serde(default)]
    pub backfill: u64,
    pub state_before: u64,
    pub state_after: u64,
    /// What the auth rules decided (only accepted events are in the
    /// timeline; rejected ones have no metadata at all).
    #[serde(default)]
    pub verdict: Verdict,
    /// The state event this one replaced (for `unsigned.prev_content`).
    #[serde(default)]
    pub replaces: Option<u64>,
    /// The sending device and its transaction id.
    #[serde(default)]
    pub txn: Option<(String, String)>,
}

impl EventMeta {
    /// Its place in the room's timeline.
    pub fn position(&self) -> TimelinePos {
        match self.backfill {
            0 => TimelinePos::live(self.count),
            n => TimelinePos::backfilled(n),
        }
    }
}

/// The binary format's first byte (JSON records, from before it, start
/// with `{`).
const FORMAT: u8 = 1;

impl ValueCodec for EventMeta {
    type Value = EventMeta;

    fn encode(m: &EventMeta) -> Vec<u8> {
        let mut w = Writer::new(FORMAT);
        w.u64(m.room)
            .u64(m.count)
            .u64(m.backfill)
            .u64(m.state_before)
            .u64(m.state_after)
            .u8(m.verdict.byte());
        match m.replaces {
            Some(short) => w.u8(1).u64(short),
            None => w.u8(0),
        };
        match &m.txn {
            Some((device, txn)) => w.u8(1).text(device).text(txn),
            None => w.u8(0),
        };
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Option<EventMeta> {
        if bytes.first() == Some(&b'{') {
            return serde_json::from_slice(bytes).ok();
        }
        let mut r = Reader::new(bytes, FORMAT)?;
        let mut meta = EventMeta {
            room: r.u64()?,
            count: r.u64()?,
            backfill: r.u64()?,
            state_before: r.u64()?,
            state_after: r.u64()?,
            verdict: Verdict::of_byte(r.u8()?)?,
            replaces: None,
            txn: None,
        };
        if r.u8()? == 1 {
            meta.replaces = Some(r.u64()?);
        }
        if r.u8()? == 1 {
            meta.txn = Some((r.text()?.to_owned(), r.text()?.to_owned()));
        }
        r.done().then_some(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_legacy_json_records_read_back() {
        let full = EventMeta {
            room: 3,
            count: 99,
            backfill: 0,
            state_before: 7,
            state_after: 8,
            verdict: Verdict::SoftFailed,
            replaces: Some(41),
            txn: Some(("DEVICE".into(), "txn1".into())),
        };
        let bare = EventMeta {
            replaces: None,
            txn: None,
            verdict: Verdict::Accepted,
            backfill: 5,
            ..full.clone()
        };
        for meta in [&full, &bare] {
            let bytes = EventMeta::encode(meta);
            assert_eq!(EventMeta::decode(&bytes).as_ref(), Some(meta));
            assert_eq!(EventMeta::decode(&bytes[..bytes.len() - 1]), None);
        }
        let legacy = br#"{"room":3,"count":99,"state_before":7,"state_after":8,"txn":["D","t"]}"#;
        let read = EventMeta::decode(legacy).unwrap();
        assert_eq!(
            (read.count, read.verdict, read.backfill),
            (99, Verdict::Accepted, 0)
        );
        assert_eq!(read.txn, Some(("D".into(), "t".into())));
    }
}
