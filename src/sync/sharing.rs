//! Who started or stopped sharing a room with a user between two stream
//! positions: what device-list tracking needs (`/sync`'s `device_lists`,
//! `/keys/changes`). A user who starts sharing a room with someone must
//! fetch their devices; one who shares no room with them any more may
//! forget them.

use std::collections::BTreeSet;

use ruma::{OwnedUserId, UserId};
use serde_json::Value;

use crate::error::Result;
use crate::services::Services;

#[derive(Default)]
pub struct SharingChanges {
    /// Users who share a room with the user now and did not share that
    /// room at the start.
    pub started: BTreeSet<OwnedUserId>,
    /// Users who shared a room at the start and share none now.
    pub stopped: BTreeSet<OwnedUserId>,
}

/// The joined members of a room in the state at a stream position.
fn joined_at(s: &Services, short_room: u64, position: u64) -> Result<BTreeSet<OwnedUserId>> {
    let state = s
        .rooms
        .state
        .load(s.rooms.state_at(short_room, position)?)?;
    let mut joined = BTreeSet::new();
    for (short_key, short_event) in state.iter() {
        let (kind, key) = s.rooms.state.key_of(*short_key)?;
        if kind != "m.room.member" {
            continue;
        }
        let pdu = s.rooms.pdu_by_short(*short_event)?;
        let membership = pdu.content_value();
        if membership.get("membership").and_then(Value::as_str) == Some("join") {
            if let Ok(user) = UserId::parse(key.as_str()) {
                joined.insert(user);
            }
        }
    }
    Ok(joined)
}

/// Changes in who shares a room with `user` after `from` up to `to`. Only
/// rooms written to in that window are looked at.
pub fn sharing_changes(s: &Services, user: &UserId, from: u64, to: u64) -> Result<SharingChanges> {
    let mut out = SharingChanges::default();
    for (room, record) in s.rooms.rooms_of(user)? {
        let gone_before = record.membership != "join" && record.count <= from;
        if gone_before || !s.store.notifier.room_changed_since(&room, from) {
            continue;
        }
        let Some(short_room) = s.rooms.short_room(&room)? else {
            continue;
        };
        let (state_from, state_to) = (
            s.rooms.state_at(short_room, from)?,
            s.rooms.state_at(short_room, to)?,
        );
        if state_from == state_to {
            continue;
        }
        let before = joined_at(s, short_room, from)?;
        let after = joined_at(s, short_room, to)?;
        match (before.contains(user), after.contains(user)) {
            (false, true) => out.started.extend(after),
            (true, false) => out.stopped.extend(before),
            (true, true) => {
                out.started.extend(after.difference(&before).cloned());
                out.stopped.extend(before.difference(&after).cloned());
            }
            (false, false) => {}
        }
    }
    out.started.remove(user);
    out.stopped.remove(user);
    let mut stopped = BTreeSet::new();
    for other in std::mem::take(&mut out.stopped) {
        if !s.rooms.share_a_room(user, &other)? {
            out.started.remove(&other);
            stopped.insert(other);
        }
    }
    out.stopped = stopped;
    Ok(out)
}
