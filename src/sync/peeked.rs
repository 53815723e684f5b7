//! The rooms a device peeks into (MSC2753) in its `/sync`: an active peek
//! is answered like a joined room under `rooms.peek` (the whole state when
//! the peek is new to the token, what changed otherwise); a peek that
//! ended since the token puts the room in `leave`, with the events up to
//! its end.

use std::collections::BTreeMap;

use ruma::api::client::sync::sync_events::v3::{JoinedRoom, LeftRoom};
use ruma::OwnedRoomId;

use super::room::MemberChanges;
use super::{Memberships, RoomScope, SyncParams};
use crate::error::Result;
use crate::http::Caller;
use crate::services::peeks::Peek;
use crate::services::Services;

/// Before a sync looks: ends the device's peeks that lapsed or whose room
/// is no longer world-readable, forgets those into rooms the user has
/// joined since, and returns the device's peeks.
pub async fn settle(s: &Services, caller: &Caller, rooms: &Memberships) -> Result<Vec<Peek>> {
    let peeks = s.peeks.of_device(&caller.user_id, &caller.device_id)?;
    if peeks.is_empty() {
        return Ok(peeks);
    }
    let now = crate::services::accounts::now_ms();
    let joined = |room: &OwnedRoomId| {
        rooms
            .iter()
            .any(|(r, m)| r == room && m.membership == "join")
    };
    let mut ended = Vec::new();
    let mut forgotten = Vec::new();
    for peek in peeks.iter().filter(|p| p.active()) {
        if joined(&peek.room) {
            forgotten.push(peek.room.clone());
        } else if peek.record.expires_ts <= now || !s.rooms.is_world_readable(&peek.room)? {
            ended.push(peek.room.clone());
        }
    }
    if ended.is_empty() && forgotten.is_empty() {
        return Ok(peeks);
    }
    let (user, device) = (&caller.user_id, &caller.device_id);
    s.peeks.forget(user, device, &forgotten).await?;
    s.peeks.end(user, device, &ended).await?;
    s.peeks.of_device(user, device)
}

/// The rooms of active peeks, whose events wake the device's syncs.
pub fn active_rooms(peeks: &[Peek]) -> impl Iterator<Item = &OwnedRoomId> {
    peeks.iter().filter(|p| p.active()).map(|p| &p.room)
}

/// The peeked rooms of an answer, and the rooms whose peek ended.
#[derive(Default)]
pub struct PeekPart {
    pub peek: BTreeMap<OwnedRoomId, JoinedRoom>,
    pub left: BTreeMap<OwnedRoomId, LeftRoom>,
}

/// The peeks' part of the answer at `next` to a sync from `since`. Member
/// events sent for lazy-loading are noted in `changes`.
pub fn part(
    scope: &RoomScope<'_>,
    p: &SyncParams,
    (since, next): (u64, u64),
    peeks: &[Peek],
    changes: &mut MemberChanges,
) -> Result<PeekPart> {
    let mut out = PeekPart::default();
    for peek in peeks {
        let room_id = &peek.room;
        if !p.filter.room.allows_room(room_id.as_str()) || peek.record.started > next {
            continue;
        }
        let ctx = |since, next| p.room(scope, room_id, (since, next));
        match peek.record.ended {
            None => {
                let fresh = peek.record.started > since;
                if !fresh && super::unchanged(scope.s, p, room_id, since, scope.account_data) {
                    continue;
                }
                // Only lazy-loading's record of sent members is kept: the
                // peeker shares no room with these members, so their
                // presence is not sent.
                let mut seen = MemberChanges::default();
                match ctx(since, next).joined(fresh, &mut seen) {
                    Ok(Some(room)) => {
                        out.peek.insert(room_id.clone(), room);
                    }
                    Ok(None) => {}
                    // The room closed since `settle` looked: the device's
                    // next sync (which the change wakes) ends the peek.
                    Err(e) if e.status == http::StatusCode::FORBIDDEN => continue,
                    Err(e) => return Err(e),
                }
                changes.carried.append(&mut seen.carried);
            }
            Some(ended) if since > 0 && ended > since && ended <= next => {
                let from = since.max(peek.record.started);
                out.left
                    .insert(room_id.clone(), ctx(from, ended).peek_ended()?);
            }
            Some(_) => {}
        }
    }
    Ok(out)
}
