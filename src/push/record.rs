//! The stored record of notifications: one row per (user, room, event) that
//! notifies the user and that they have not read. Rows are written with the
//! event and removed by read receipts, by the user's own messages and when
//! they leave the room.

use matrixos_storage::records::PushRow;
use matrixos_storage::tables::PUSH_ACTIONS;
use matrixos_storage::typed::TextAndTwoU64;
use matrixos_storage::{Batch, Db};
use ruma::push::Action;
use ruma::{OwnedUserId, UserId};
use serde_json::Value;

use crate::error::Result;
use crate::rooms::Pdu;

pub const NOTIFY: u8 = 1;
pub const HIGHLIGHT: u8 = 2;

/// A row of `/notifications`.
pub struct Notification {
    pub short_room: u64,
    pub count: u64,
    pub actions: Value,
}

fn row_key(user: &UserId, short_room: u64, count: u64) -> (String, u64, u64) {
    (user.to_string(), short_room, count)
}

/// The thread an event belongs to, if it is in one.
pub fn thread_of(content: &Value) -> Option<String> {
    let relation = content.get("m.relates_to")?;
    (relation.get("rel_type")?.as_str()? == "m.thread")
        .then(|| relation.get("event_id")?.as_str().map(str::to_owned))
        .flatten()
}

/// The local-or-not user a member event removes from the room, if any.
pub fn departed_member(pdu: &Pdu) -> Option<OwnedUserId> {
    if pdu.kind.to_string() != "m.room.member" {
        return None;
    }
    let membership = pdu.content_value().get("membership")?.as_str()?.to_owned();
    if membership == "join" || membership == "invite" {
        return None;
    }
    UserId::parse(pdu.state_key.as_deref()?).ok()
}

/// The flags of a set of actions (0: nothing to store).
pub fn flags_of(actions: &[Action]) -> u8 {
    let mut flags = 0;
    if actions.iter().any(Action::should_notify) {
        flags |= NOTIFY;
    }
    if actions.iter().any(Action::is_highlight) {
        flags |= HIGHLIGHT;
    }
    flags
}

/// Stores a row with these (non-zero) flags.
pub fn put(
    batch: &mut Batch,
    user: &UserId,
    short_room: u64,
    count: u64,
    (flags, thread): (u8, Option<&str>),
    actions: &[Action],
) -> Result<()> {
    let row = PushRow {
        flags,
        thread: thread.unwrap_or("").to_owned(),
        actions: serde_json::to_vec(actions)?,
    };
    PUSH_ACTIONS.put(batch, &row_key(user, short_room, count), &row);
    Ok(())
}

pub fn delete(batch: &mut Batch, user: &UserId, short_room: u64, count: u64) {
    PUSH_ACTIONS.delete(batch, &row_key(user, short_room, count));
}

/// Every stored row of a room: position, flags, thread root (empty for
/// the main timeline).
pub fn scan_room(db: &Db, user: &UserId, short_room: u64) -> Result<Vec<(u64, u8, String)>> {
    let prefix = TextAndTwoU64::prefix(user.as_str(), Some(short_room));
    let mut out = Vec::new();
    for item in PUSH_ACTIONS.scan_prefix(db, &prefix) {
        let ((_, _, count), row) = item?;
        out.push((count, row.flags, row.thread));
    }
    Ok(out)
}

/// How many rooms hold unread notifications for the user (the badge).
pub fn unread_rooms(db: &Db, user: &UserId) -> Result<u64> {
    let prefix = TextAndTwoU64::prefix(user.as_str(), None);
    let mut rooms = 0;
    let mut last = None;
    for item in PUSH_ACTIONS.scan_prefix(db, &prefix) {
        let ((_, room, _), row) = item?;
        let room = Some(room);
        let notifies = row.flags & NOTIFY != 0;
        if notifies && room != last {
            rooms += 1;
            last = room;
        }
    }
    Ok(rooms)
}

/// The user's rows, newest first, with stream position below `before`.
pub fn list(
    db: &Db,
    user: &UserId,
    before: Option<u64>,
    limit: usize,
    only_highlight: bool,
) -> Result<Vec<Notification>> {
    let prefix = TextAndTwoU64::prefix(user.as_str(), None);
    let mut out = Vec::new();
    for item in PUSH_ACTIONS.scan_prefix(db, &prefix) {
        let ((_, short_room, count), row) = item?;
        if before.is_some_and(|b| count >= b) {
            continue;
        }
        if only_highlight && row.flags & HIGHLIGHT == 0 {
            continue;
        }
        out.push(Notification {
            short_room,
            count,
            actions: serde_json::from_slice(&row.actions).unwrap_or(Value::Null),
        });
    }
    out.sort_by_key(|n| std::cmp::Reverse(n.count));
    out.truncate(limit);
    Ok(out)
}
