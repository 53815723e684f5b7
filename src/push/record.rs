//! The stored record of notifications: one row per (user, room, event) that
//! notifies the user and that they have not read. Rows are written with the
//! event and removed by read receipts, by the user's own messages and when
//! they leave the room.

use matrixos_storage::{keys, Batch, Db, Table};
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

fn room_prefix(user: &UserId, short_room: u64) -> Vec<u8> {
    let mut key = keys::prefix(&[user.as_bytes()]);
    key.extend_from_slice(&short_room.to_be_bytes());
    key
}

fn row_key(user: &UserId, short_room: u64, count: u64) -> Vec<u8> {
    let mut key = room_prefix(user, short_room);
    key.extend_from_slice(&count.to_be_bytes());
    key
}

/// Flags, thread root and actions of a stored row.
fn parse_value(value: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (flags, rest) = value.split_first()?;
    let end = rest.iter().position(|b| *b == keys::SEP)?;
    Some((*flags, &rest[..end], &rest[end + 1..]))
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
    let mut value = vec![flags];
    value.extend_from_slice(thread.unwrap_or("").as_bytes());
    value.push(keys::SEP);
    value.extend_from_slice(&serde_json::to_vec(actions)?);
    batch.put(Table::PushActions, row_key(user, short_room, count), value);
    Ok(())
}

pub fn delete(batch: &mut Batch, user: &UserId, short_room: u64, count: u64) {
    batch.delete(Table::PushActions, row_key(user, short_room, count));
}

/// Every stored row of a room: position, flags, thread root (empty for
/// the main timeline).
pub fn scan_room(db: &Db, user: &UserId, short_room: u64) -> Result<Vec<(u64, u8, String)>> {
    let prefix = room_prefix(user, short_room);
    let mut out = Vec::new();
    for item in db.scan_prefix(Table::PushActions, &prefix) {
        let (key, value) = item?;
        let (Some(count), Some((flags, thread, _))) =
            (keys::read_u64(&key[prefix.len()..]), parse_value(&value))
        else {
            continue;
        };
        out.push((count, flags, String::from_utf8_lossy(thread).into_owned()));
    }
    Ok(out)
}

/// How many rooms hold unread notifications for the user (the badge).
pub fn unread_rooms(db: &Db, user: &UserId) -> Result<u64> {
    let prefix = keys::prefix(&[user.as_bytes()]);
    let mut rooms = 0;
    let mut last = None;
    for item in db.scan_prefix(Table::PushActions, &prefix) {
        let (key, value) = item?;
        let room = keys::read_u64(&key[prefix.len()..]);
        let notifies = parse_value(&value).is_some_and(|(flags, _, _)| flags & NOTIFY != 0);
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
    let prefix = keys::prefix(&[user.as_bytes()]);
    let mut out = Vec::new();
    for item in db.scan_prefix(Table::PushActions, &prefix) {
        let (key, value) = item?;
        let rest = &key[prefix.len()..];
        let (Some(short_room), Some(count)) =
            (keys::read_u64(rest), rest.get(8..).and_then(keys::read_u64))
        else {
            continue;
        };
        if before.is_some_and(|b| count >= b) {
            continue;
        }
        let Some((flags, _, actions)) = parse_value(&value) else {
            continue;
        };
        if only_highlight && flags & HIGHLIGHT == 0 {
            continue;
        }
        out.push(Notification {
            short_room,
            count,
            actions: serde_json::from_slice(actions).unwrap_or(Value::Null),
        });
    }
    out.sort_by_key(|n| std::cmp::Reverse(n.count));
    out.truncate(limit);
    Ok(out)
}
