//! Targeted wake-ups for long-polling syncs. Every write names whom it
//! concerns (users, rooms) when it is committed; once it is durable and
//! visible, only the syncs waiting on those users or rooms wake. The last
//! change of each room is kept too, so that an incremental sync looks only
//! at rooms that changed since its token.

use std::collections::HashMap;

use futures::future::select_all;
use matrixos_storage::Db;
use parking_lot::Mutex;
use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};
use tokio::sync::watch;

use crate::error::Result;

/// Whom a write concerns.
#[derive(Debug, Default, Clone)]
pub struct Wake {
    users: Vec<OwnedUserId>,
    rooms: Vec<OwnedRoomId>,
}

impl Wake {
    /// Nobody's sync shows this write.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn user(user: &UserId) -> Self {
        Self::none().and_user(user)
    }

    pub fn room(room: &RoomId) -> Self {
        Self::none().and_room(room)
    }

    pub fn users(users: impl IntoIterator<Item = OwnedUserId>) -> Self {
        Self {
            users: users.into_iter().collect(),
            rooms: Vec::new(),
        }
    }

    pub fn rooms(rooms: impl IntoIterator<Item = OwnedRoomId>) -> Self {
        Self {
            users: Vec::new(),
            rooms: rooms.into_iter().collect(),
        }
    }

    pub fn and_user(mut self, user: &UserId) -> Self {
        self.users.push(user.to_owned());
        self
    }

    pub fn and_room(mut self, room: &RoomId) -> Self {
        self.rooms.push(room.to_owned());
        self
    }

    /// The user and everyone who shares a room with them (device list and
    /// presence changes): the user's own channel and their joined rooms'.
    pub fn sharers(db: &Db, user: &UserId) -> Result<Self> {
        let rooms = crate::rooms::membership::rooms_of(db, user)?
            .into_iter()
            .filter(|(_, m)| m.membership == "join")
            .map(|(room, _)| room);
        Ok(Self::rooms(rooms).and_user(user))
    }

    pub fn merge(&mut self, other: Wake) {
        self.users.extend(other.users);
        self.rooms.extend(other.rooms);
    }
}

/// Waiting syncs by user and by room, and each room's last change.
pub struct Notifier {
    users: Mutex<HashMap<OwnedUserId, watch::Sender<u64>>>,
    rooms: Mutex<HashMap<OwnedRoomId, watch::Sender<u64>>>,
    room_changes: Mutex<HashMap<OwnedRoomId, u64>>,
    /// The stream position when the server started: rooms with no change
    /// recorded since then may have changed before it.
    started_at: u64,
}

/// Channels with nobody waiting are dropped when a map grows past this.
const PRUNE_AT: usize = 10_000;

fn sender_for<K: std::hash::Hash + Eq + Clone>(
    map: &Mutex<HashMap<K, watch::Sender<u64>>>,
    key: &K,
) -> watch::Receiver<u64> {
    let mut map = map.lock();
    if map.len() >= PRUNE_AT {
        map.retain(|_, s| s.receiver_count() > 0);
    }
    map.entry(key.clone())
        .or_insert_with(|| watch::channel(0).0)
        .subscribe()
}

impl Notifier {
    pub fn new(started_at: u64) -> Self {
        Self {
            users: Mutex::new(HashMap::new()),
            rooms: Mutex::new(HashMap::new()),
            room_changes: Mutex::new(HashMap::new()),
            started_at,
        }
    }

    /// Wakes the syncs a durable write at `position` concerns.
    pub fn wake(&self, wake: &Wake, position: u64) {
        if !wake.rooms.is_empty() {
            let mut changes = self.room_changes.lock();
            for room in &wake.rooms {
                let last = changes.entry(room.clone()).or_insert(0);
                *last = (*last).max(position);
            }
            let rooms = self.rooms.lock();
            for room in &wake.rooms {
                if let Some(sender) = rooms.get(room) {
                    sender.send_replace(position);
                }
            }
        }
        let users = self.users.lock();
        for user in &wake.users {
            if let Some(sender) = users.get(user) {
                sender.send_replace(position);
            }
        }
    }

    /// Whether anything in the room may have changed after `since`.
    pub fn room_changed_since(&self, room: &RoomId, since: u64) -> bool {
        match self.room_changes.lock().get(room) {
            Some(last) => *last > since,
            None => since < self.started_at,
        }
    }

    /// A subscription to a user's own changes and those of their rooms,
    /// taken before the sync looks, so that no write in between is missed.
    pub fn subscribe<'a>(
        &self,
        user: &UserId,
        rooms: impl IntoIterator<Item = &'a OwnedRoomId>,
    ) -> Subscription {
        let mut receivers = vec![sender_for(&self.users, &user.to_owned())];
        receivers.extend(rooms.into_iter().map(|r| sender_for(&self.rooms, r)));
        Subscription { receivers }
    }
}

/// Resolves when any of the user's or their rooms' channels changes.
pub struct Subscription {
    receivers: Vec<watch::Receiver<u64>>,
}

impl Subscription {
    pub async fn changed(&mut self) {
        let waits = self
            .receivers
            .iter_mut()
            .map(|r| Box::pin(r.changed()))
            .collect::<Vec<_>>();
        // A closed channel (never: the map keeps its sender) would resolve
        // at once; either way the caller looks again.
        let _ = select_all(waits).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ruma::{owned_room_id, owned_user_id};

    use super::*;

    async fn woken(sub: &mut Subscription) -> bool {
        tokio::time::timeout(Duration::from_millis(200), sub.changed())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_write_wakes_only_the_syncs_it_concerns() {
        let notifier = Notifier::new(10);
        let (alice, bob) = (owned_user_id!("@alice:x"), owned_user_id!("@bob:x"));
        let (ours, theirs) = (owned_room_id!("!ours:x"), owned_room_id!("!theirs:x"));
        let mut alice_sync = notifier.subscribe(&alice, [&ours]);
        let mut bob_sync = notifier.subscribe(&bob, []);

        notifier.wake(&Wake::room(&theirs), 11);
        assert!(!woken(&mut alice_sync).await, "another room's write");
        notifier.wake(&Wake::user(&bob), 12);
        assert!(!woken(&mut alice_sync).await, "another user's write");
        assert!(woken(&mut bob_sync).await, "bob's own write");
        notifier.wake(&Wake::room(&ours), 13);
        assert!(woken(&mut alice_sync).await, "a write in alice's room");
        // A write before the subscription is not missed by a sync that
        // subscribed after it and then looks: it is in what it reads.
        assert!(!woken(&mut alice_sync).await, "each write wakes once");
    }

    #[test]
    fn rooms_remember_their_last_change() {
        let notifier = Notifier::new(10);
        let (room, other) = (owned_room_id!("!r:x"), owned_room_id!("!o:x"));
        notifier.wake(&Wake::room(&room), 15);
        assert!(notifier.room_changed_since(&room, 14));
        assert!(!notifier.room_changed_since(&room, 15));
        // No change recorded since the start: unchanged for tokens after it,
        // possibly changed for tokens from before it.
        assert!(!notifier.room_changed_since(&other, 12));
        assert!(notifier.room_changed_since(&other, 9));
    }
}
