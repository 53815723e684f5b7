//! A room state as the changes from a parent state (a full snapshot when
//! the parent is 0): state key ids mapped to event ids, 0 for a removal.

use crate::keys::read_u64;
use crate::typed::ValueCodec;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDiff {
    pub parent: u64,
    /// How many diffs lead from the last full snapshot to this one.
    pub chain: u32,
    /// (state key id, event id), sorted by key; event id 0 removes the key.
    pub changes: Vec<(u64, u64)>,
}

/// Layout: parent (u64 BE), chain (u32 BE), then 16 bytes per change.
impl ValueCodec for StateDiff {
    type Value = StateDiff;

    fn encode(diff: &StateDiff) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + diff.changes.len() * 16);
        out.extend_from_slice(&diff.parent.to_be_bytes());
        out.extend_from_slice(&diff.chain.to_be_bytes());
        for (k, v) in &diff.changes {
            out.extend_from_slice(&k.to_be_bytes());
            out.extend_from_slice(&v.to_be_bytes());
        }
        out
    }

    fn decode(raw: &[u8]) -> Option<StateDiff> {
        if raw.len() < 12 || !(raw.len() - 12).is_multiple_of(16) {
            return None;
        }
        let changes = raw[12..]
            .chunks_exact(16)
            .map(|pair| Some((read_u64(&pair[..8])?, read_u64(&pair[8..])?)))
            .collect::<Option<Vec<_>>>()?;
        Some(StateDiff {
            parent: read_u64(raw)?,
            chain: u32::from_be_bytes(raw[8..12].try_into().ok()?),
            changes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_read_back_and_refuse_torn_records() {
        let diff = StateDiff {
            parent: 9,
            chain: 3,
            changes: vec![(1, 100), (4, 0)],
        };
        let bytes = StateDiff::encode(&diff);
        assert_eq!(StateDiff::decode(&bytes), Some(diff));
        assert_eq!(StateDiff::decode(&bytes[..bytes.len() - 3]), None);
    }
}
