//! Peeks (MSC2753): a device following a world-readable room it is not in
//! through its own `/sync`, where the room appears under `rooms.peek`.
//! A peek is per device, lives an hour unless renewed, and ends when the
//! device unpeeks, when it lapses, when the room stops being world-readable
//! or when the user joins the room. An ended peek is kept until the
//! device's syncs have had the chance to show it in `leave`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use matrixos_storage::records::PeekRecord;
use matrixos_storage::tables::{PEEKS, PEEKS_PART};
use matrixos_storage::typed::Parts;
use matrixos_storage::Batch;
use parking_lot::Mutex;
use ruma::{DeviceId, OwnedRoomId, RoomId, UserId};

use super::accounts::now_ms;
use crate::error::{Error, Result};
use crate::store::{Store, Wake};

/// How long a peek lives unless the device renews it.
pub const LIFETIME: Duration = Duration::from_secs(60 * 60);

/// Most rooms one device may peek into at once.
pub const MAX_PER_DEVICE: usize = 100;

/// How long an ended peek is kept for the device's syncs.
const KEEP_ENDED: Duration = Duration::from_secs(24 * 60 * 60);

/// One of a device's peeks.
#[derive(Debug, Clone)]
pub struct Peek {
    pub room: OwnedRoomId,
    pub record: PeekRecord,
}

impl Peek {
    pub fn active(&self) -> bool {
        self.record.ended.is_none()
    }
}

pub struct Peeks {
    store: Store,
    /// Serialises each change (read, then write) of anyone's peeks.
    changing: Mutex<()>,
    /// Whether any peek was ever stored: until one is, a sync need not
    /// look (most servers never see one).
    any: AtomicBool,
}

fn key(user: &UserId, device: &DeviceId, room: &RoomId) -> [String; 4] {
    [
        PEEKS_PART.to_owned(),
        user.to_string(),
        device.to_string(),
        room.to_string(),
    ]
}

fn ms(duration: Duration) -> u64 {
    duration.as_millis() as u64
}

impl Peeks {
    pub fn new(store: Store) -> Self {
        let prefix = Parts::prefix(&[PEEKS_PART]);
        // Unreadable counts as some: the syncs will look (and report it).
        let any = PEEKS.scan_prefix(&store.db, &prefix).next().is_some();
        Self {
            store,
            changing: Mutex::new(()),
            any: AtomicBool::new(any),
        }
    }

    /// The device's peeks, active and recently ended.
    pub fn of_device(&self, user: &UserId, device: &DeviceId) -> Result<Vec<Peek>> {
        if !self.any.load(Ordering::Acquire) {
            return Ok(Vec::new());
        }
        let prefix = Parts::prefix(&[PEEKS_PART, user.as_str(), device.as_str()]);
        let mut out = Vec::new();
        for item in PEEKS.scan_prefix(&self.store.db, &prefix) {
            let (parts, record) = item?;
            let Some(room) = parts.get(3).and_then(|r| RoomId::parse(r).ok()) else {
                continue;
            };
            out.push(Peek { room, record });
        }
        Ok(out)
    }

    /// Starts a peek, or renews the active one; returns when it lapses.
    /// `M_FORBIDDEN` when the device already peeks into as many rooms as
    /// it may.
    pub async fn start(&self, user: &UserId, device: &DeviceId, room: &RoomId) -> Result<u64> {
        let now = now_ms();
        let expires_ts = now + ms(LIFETIME);
        let written = {
            let _changing = self.changing.lock();
            let peeks = self.of_device(user, device)?;
            let mut batch = Batch::new();
            for old in peeks
                .iter()
                .filter(|p| p.record.ended_ts.is_some_and(|t| t + ms(KEEP_ENDED) < now))
            {
                PEEKS.delete(&mut batch, &key(user, device, &old.room));
            }
            let current = peeks.iter().find(|p| p.room == room && p.active());
            let mut positions = Vec::new();
            let record = match current {
                Some(peek) => PeekRecord {
                    expires_ts,
                    ..peek.record.clone()
                },
                None => {
                    if peeks.iter().filter(|p| p.active()).count() >= MAX_PER_DEVICE {
                        return Err(Error::forbidden(format!(
                            "A device may peek into at most {MAX_PER_DEVICE} rooms at once"
                        )));
                    }
                    let position = self.store.db.reserve_count(&mut batch);
                    let started = position.get();
                    positions.push(position);
                    PeekRecord {
                        started,
                        expires_ts,
                        ended: None,
                        ended_ts: None,
                    }
                }
            };
            PEEKS.put(&mut batch, &key(user, device, room), &record);
            self.any.store(true, Ordering::Release);
            self.store.commit(batch, positions, Wake::user(user))
        };
        written.await?;
        Ok(expires_ts)
    }

    /// Ends the device's active peeks into `rooms`; returns how many it
    /// ended. Each ended peek gets a stream position of its own, so that
    /// the device's next sync shows the room in `leave`.
    pub async fn end(
        &self,
        user: &UserId,
        device: &DeviceId,
        rooms: &[OwnedRoomId],
    ) -> Result<usize> {
        if rooms.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let (written, ended) = {
            let _changing = self.changing.lock();
            let mut batch = Batch::new();
            let mut positions = Vec::new();
            for peek in self.of_device(user, device)? {
                if !peek.active() || !rooms.contains(&peek.room) {
                    continue;
                }
                let position = self.store.db.reserve_count(&mut batch);
                let record = PeekRecord {
                    ended: Some(position.get()),
                    ended_ts: Some(now),
                    ..peek.record
                };
                positions.push(position);
                PEEKS.put(&mut batch, &key(user, device, &peek.room), &record);
            }
            let ended = positions.len();
            (self.store.commit(batch, positions, Wake::user(user)), ended)
        };
        written.await?;
        Ok(ended)
    }

    /// Forgets the device's peeks into `rooms` without a trace in its
    /// syncs (the user joined them: they are in `join` from then on).
    pub async fn forget(
        &self,
        user: &UserId,
        device: &DeviceId,
        rooms: &[OwnedRoomId],
    ) -> Result<()> {
        if rooms.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::new();
        for room in rooms {
            PEEKS.delete(&mut batch, &key(user, device, room));
        }
        self.store.commit(batch, vec![], Wake::none()).await
    }

    /// Forgets every peek of a device (it logged out or was deleted).
    pub fn forget_device(batch: &mut Batch, user: &UserId, device: &DeviceId) {
        let prefix = Parts::prefix(&[PEEKS_PART, user.as_str(), device.as_str()]);
        PEEKS.delete_parts_prefix(batch, prefix);
    }
}
