//! A notification a user has not read: its flags, thread and actions.

use crate::keys::SEP;
use crate::typed::ValueCodec;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRow {
    /// Notify and highlight bits.
    pub flags: u8,
    /// The thread root, empty for the main timeline.
    pub thread: String,
    /// The push actions, as JSON.
    pub actions: Vec<u8>,
}

/// Layout: flags, thread, 0xff, actions.
impl ValueCodec for PushRow {
    type Value = PushRow;

    fn encode(row: &PushRow) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + row.thread.len() + row.actions.len());
        out.push(row.flags);
        out.extend_from_slice(row.thread.as_bytes());
        out.push(SEP);
        out.extend_from_slice(&row.actions);
        out
    }

    fn decode(bytes: &[u8]) -> Option<PushRow> {
        let (flags, rest) = bytes.split_first()?;
        let end = rest.iter().position(|b| *b == SEP)?;
        Some(PushRow {
            flags: *flags,
            thread: String::from_utf8(rest[..end].to_vec()).ok()?,
            actions: rest[end + 1..].to_vec(),
        })
    }
}
