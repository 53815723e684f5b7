//! Targeted wake-ups for long-polling syncs. Every write names whom it
//! concerns (users, rooms) when it is committed; once it is durable and
//! visible, only the syncs waiting on those users or rooms wake. The last
//! change of each room is kept too, so that an incremental sync looks only
//! at rooms that changed since its token.

use std::collections::{BTreeMap, HashMap};

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
    /// Wake-ups of writes at positions not yet visible (a lower position is
    /// still being written), by position: sent once they are. At most one
    /// per write in flight.
    pending: Mutex<BTreeMap<u64, Vec<Wake>>>,
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
            pending: Mutex::new(BTreeMap::new()),
            started_at,
        }
    }

    /// Records that the rooms a write at `position` concerns changed. Called
    /// before the write becomes visible, so that a sync which can see it
    /// never passes over its room as unchanged.
    pub fn note_changes(&self, wake: &Wake, position: u64) {
        if wake.rooms.is_empty() {
            return;
        }
        let mut changes = self.room_changes.lock();
        for room in &wake.rooms {
            let last = changes.entry(room.clone()).or_insert(0);
            *last = (*last).max(position);
        }
    }

    /// Wakes the syncs a durable write at `position` concerns once the
    /// stream has become visible up to it (`visible` is how far it is now),
    /// and any earlier write's wake-up that was waiting for `visible`. A
    /// sync woken earlier would look, not see the write, and wait again on
    /// channels no later write may touch.
    pub fn wake(&self, wake: Wake, position: u64, visible: u64) {
        let mut ready = Vec::new();
        {
            let mut pending = self.pending.lock();
            if position > visible {
                pending.entry(position).or_default().push(wake);
            } else {
                ready.push(wake);
            }
            let later = pending.split_off(&(visible + 1));
            let due = std::mem::replace(&mut *pending, later);
            ready.extend(due.into_values().flatten());
        }
        for wake in ready {
            self.send(&wake, visible);
        }
    }

    fn send(&self, wake: &Wake, position: u64) {
        if !wake.rooms.is_empty() {
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

        notifier.wake(Wake::room(&theirs), 11, 11);
        assert!(!woken(&mut alice_sync).await, "another room's write");
        notifier.wake(Wake::user(&bob), 12, 12);
        assert!(!woken(&mut alice_sync).await, "another user's write");
        assert!(woken(&mut bob_sync).await, "bob's own write");
        notifier.wake(Wake::room(&ours), 13, 13);
        assert!(woken(&mut alice_sync).await, "a write in alice's room");
        // A write before the subscription is not missed by a sync that
        // subscribed after it and then looks: it is in what it reads.
        assert!(!woken(&mut alice_sync).await, "each write wakes once");
    }

    #[tokio::test]
    async fn a_write_wakes_its_syncs_only_once_they_can_see_it() {
        let notifier = Notifier::new(10);
        let alice = owned_user_id!("@alice:x");
        let (first, second) = (owned_room_id!("!first:x"), owned_room_id!("!second:x"));
        let mut in_second = notifier.subscribe(&alice, [&second]);
        // Position 12 (in the second room) is durable while 11 (in the
        // first) is still being written: the stream is visible up to 10.
        notifier.note_changes(&Wake::room(&second), 12);
        notifier.wake(Wake::room(&second), 12, 10);
        assert!(
            !woken(&mut in_second).await,
            "woken now, the sync would not see 12 and wait again"
        );
        assert!(notifier.room_changed_since(&second, 11), "but it changed");
        // 11 lands: both are visible, and the wait for 12 is over.
        notifier.wake(Wake::room(&first), 11, 12);
        assert!(woken(&mut in_second).await);
        assert!(notifier.pending.lock().is_empty());
    }

    #[test]
    fn rooms_remember_their_last_change() {
        let notifier = Notifier::new(10);
        let (room, other) = (owned_room_id!("!r:x"), owned_room_id!("!o:x"));
        notifier.note_changes(&Wake::room(&room), 15);
        assert!(notifier.room_changed_since(&room, 14));
        assert!(!notifier.room_changed_since(&room, 15));
        // No change recorded since the start: unchanged for tokens after it,
        // possibly changed for tokens from before it.
        assert!(!notifier.room_changed_since(&other, 12));
        assert!(notifier.room_changed_since(&other, 9));
    }
}
