//! Which member events each device has been sent, for lazy-loading syncs.
//!
//! With `lazy_load_members`, a sync sends the member events of the people
//! whose events it carries, once: a later sync leaves out the ones the
//! device already has (unless `include_redundant_members`). As in Synapse,
//! this is remembered in memory only, per device, with a bound on how many
//! devices are remembered; a forgotten device is sent its members again,
//! which is redundant but never wrong.
//!
//! An entry counts only for a sync whose `since` is at or after the answer
//! that carried it: a client that retries an older token (its answer was
//! lost) is sent the members again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use ruma::{OwnedDeviceId, OwnedRoomId, OwnedUserId, RoomId, UserId};

use crate::bounded_map::BoundedMap;

/// Devices remembered at once; the least recently synced are forgotten.
const MAX_DEVICES: usize = 10_000;

/// One member event sent to a device.
#[derive(Clone, Copy)]
struct Sent {
    /// Short id of the member event.
    event: u64,
    /// The `next_batch` of the answer that carried it.
    at: u64,
}

type Device = (OwnedUserId, OwnedDeviceId);
type PerRoom = HashMap<OwnedRoomId, HashMap<OwnedUserId, Sent>>;

/// A member event a sync answer carries: (room, member, event).
pub type Carried = (OwnedRoomId, OwnedUserId, u64);

pub struct LazyMembers(Mutex<BoundedMap<Device, PerRoom>>);

impl Default for LazyMembers {
    fn default() -> Self {
        Self(Mutex::new(BoundedMap::new(MAX_DEVICES)))
    }
}

impl LazyMembers {
    /// Whether the device holds `event` as `member`'s member event in
    /// `room`, from an answer it has acknowledged by syncing from `since`.
    pub fn has(
        &self,
        device: (&UserId, &ruma::DeviceId),
        since: u64,
        room: &RoomId,
        member: &UserId,
        event: u64,
    ) -> bool {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = (device.0.to_owned(), device.1.to_owned());
        map.get(&key)
            .and_then(|rooms| rooms.get(room))
            .and_then(|members| members.get(member))
            .is_some_and(|sent| sent.event == event && sent.at <= since)
    }

    /// Notes what an answer with `next_batch` `at` carried to the device.
    pub fn record(&self, device: (&UserId, &ruma::DeviceId), at: u64, carried: Vec<Carried>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = (device.0.to_owned(), device.1.to_owned());
        let mut rooms = map.remove(&key).unwrap_or_default();
        for (room, member, event) in carried {
            let members = rooms.entry(room).or_default();
            let fresh = members.get(&member).is_none_or(|s| s.event != event);
            if fresh {
                members.insert(member, Sent { event, at });
            }
        }
        map.insert(key, rooms, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruma::{device_id, room_id, user_id};

    #[test]
    fn counts_only_once_acknowledged_and_for_the_same_event() {
        let lazy = LazyMembers::default();
        let device = (user_id!("@a:x"), device_id!("D"));
        let (room, bob) = (room_id!("!r:x"), user_id!("@b:x"));
        assert!(!lazy.has(device, 10, room, bob, 5));
        lazy.record(device, 10, vec![(room.to_owned(), bob.to_owned(), 5)]);
        // A retry of the sync before that answer was not given it.
        assert!(!lazy.has(device, 9, room, bob, 5));
        assert!(lazy.has(device, 10, room, bob, 5));
        // A newer member event is news.
        assert!(!lazy.has(device, 10, room, bob, 6));
        // Carried again later, the first delivery still counts.
        lazy.record(device, 20, vec![(room.to_owned(), bob.to_owned(), 5)]);
        assert!(lazy.has(device, 15, room, bob, 5));
        // Other devices have their own.
        assert!(!lazy.has((user_id!("@a:x"), device_id!("E")), 10, room, bob, 5));
    }
}
