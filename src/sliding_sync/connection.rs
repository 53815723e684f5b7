//! Sliding sync connections, kept in the database per user, device and
//! `conn_id`. A position names what the client had been sent; the position
//! a request continues from and the one it answers stay valid, so a client
//! that retries or cancels a request loses nothing. A position the server
//! no longer has is `M_UNKNOWN_POS`, and the client starts over.

use http::StatusCode;
use matrixos_storage::records::{SlidingConnection, SlidingPosition};
use matrixos_storage::tables::SLIDING_CONNECTIONS;
use matrixos_storage::typed::Parts;
use matrixos_storage::Batch;
use ruma::{DeviceId, UserId};

use crate::error::{Error, Result};
use crate::services::accounts::now_ms;
use crate::services::{Services, Wake};

/// Most connections one device keeps; opening another drops the least
/// recently used.
const MAX_PER_DEVICE: usize = 20;
/// How stale `last_used_ms` may get before a request that changes nothing
/// still writes it (at most a tenth of the expiry).
const TOUCH_EVERY_MS: u64 = 3600 * 1000;

pub fn unknown_pos() -> Error {
    Error::new(
        StatusCode::BAD_REQUEST,
        "M_UNKNOWN_POS",
        "Unknown or expired position: start a new connection",
    )
}

/// A `pos` token: the connection's position and the stream position.
pub struct Pos {
    pub id: u64,
    pub stream: u64,
}

impl Pos {
    pub fn parse(token: &str) -> Result<Self> {
        let (id, stream) = token.split_once('_').ok_or_else(unknown_pos)?;
        match (id.parse(), stream.parse()) {
            (Ok(id), Ok(stream)) => Ok(Pos { id, stream }),
            _ => Err(unknown_pos()),
        }
    }

    pub fn token(&self) -> String {
        format!("{}_{}", self.id, self.stream)
    }
}

/// One connection of a device, as a request found it.
pub struct Connection {
    key: [String; 3],
    record: SlidingConnection,
    /// The position the request continues from (empty for a new one).
    pub from: SlidingPosition,
}

impl Connection {
    /// The connection a request continues (`pos` given) or starts.
    pub fn open(
        s: &Services,
        user: &UserId,
        device: &DeviceId,
        conn_id: &str,
        pos: Option<&Pos>,
    ) -> Result<Self> {
        let key = [user.to_string(), device.to_string(), conn_id.to_owned()];
        let expiry_ms = s
            .config
            .sliding_sync_connection_expiry_secs
            .saturating_mul(1000);
        let stored = SLIDING_CONNECTIONS
            .get(&s.store.db, &key)?
            .filter(|c| c.last_used_ms.saturating_add(expiry_ms) > now_ms());
        let Some(pos) = pos else {
            let record = SlidingConnection {
                next_id: stored.map_or(1, |c| c.next_id),
                ..SlidingConnection::default()
            };
            return Ok(Self {
                key,
                record,
                from: SlidingPosition::default(),
            });
        };
        let record = stored.ok_or_else(unknown_pos)?;
        let from = record
            .positions
            .iter()
            .find(|p| p.id == pos.id)
            .cloned()
            .ok_or_else(unknown_pos)?;
        Ok(Self { key, record, from })
    }

    /// Keeps `sent` as the position after this answer and names it: the
    /// position continued from when nothing changed, else a new one (the
    /// one continued from stays valid beside it).
    pub async fn save(mut self, s: &Services, sent: SlidingPosition) -> Result<u64> {
        let now = now_ms();
        let fresh = self.record.positions.is_empty();
        let id = if !fresh && sent.rooms == self.from.rooms && sent.configs == self.from.configs {
            let expiry_ms = s
                .config
                .sliding_sync_connection_expiry_secs
                .saturating_mul(1000);
            let touch_every = TOUCH_EVERY_MS.min(expiry_ms / 10);
            if self.record.last_used_ms + touch_every > now {
                return Ok(self.from.id);
            }
            self.from.id
        } else {
            let id = self.record.next_id;
            self.record.next_id += 1;
            let from = self.from.id;
            self.record.positions.retain(|p| p.id == from);
            self.record.positions.push(SlidingPosition { id, ..sent });
            id
        };
        self.record.last_used_ms = now;
        let mut batch = Batch::new();
        if fresh {
            self.evict_others(s, &mut batch)?;
        }
        SLIDING_CONNECTIONS.put(&mut batch, &self.key, &self.record);
        s.store.commit(batch, vec![], Wake::none()).await?;
        Ok(id)
    }

    /// Drops the device's least recently used connections beyond the
    /// most it keeps (this one about to be added).
    fn evict_others(&self, s: &Services, batch: &mut Batch) -> Result<()> {
        let prefix = Parts::prefix(&[&self.key[0], &self.key[1]]);
        let mut others: Vec<(Vec<String>, u64)> = SLIDING_CONNECTIONS
            .scan_prefix(&s.store.db, &prefix)
            .map(|item| item.map(|(key, c)| (key, c.last_used_ms)))
            .collect::<std::result::Result<_, _>>()?;
        others.retain(|(key, _)| key[2] != self.key[2]);
        others.sort_by_key(|(_, used)| std::cmp::Reverse(*used));
        for (key, _) in others.into_iter().skip(MAX_PER_DEVICE - 1) {
            SLIDING_CONNECTIONS.delete(batch, &key);
        }
        Ok(())
    }
}

/// Forgets every connection of a device (it logged out or was deleted).
pub fn forget_device(batch: &mut Batch, user: &UserId, device: &DeviceId) {
    let prefix = Parts::prefix(&[user.as_str(), device.as_str()]);
    SLIDING_CONNECTIONS.delete_parts_prefix(batch, prefix);
}
