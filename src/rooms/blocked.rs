//! Rooms an admin blocked (Synapse's `blocked_rooms`): this server's users
//! may no longer join, be invited to or knock on them. Kept in the server
//! settings table, one key per room, the blocking admin as the value.

use matrixos_storage::tables::SERVER_SETTINGS;
use matrixos_storage::Batch;
use ruma::{RoomId, UserId};

use super::Rooms;
use crate::error::Result;
use crate::store::Wake;

fn blocked_key(room: &RoomId) -> String {
    format!("blocked_room:{room}")
}

impl Rooms {
    /// The admin who blocked the room (their user id), if it is blocked.
    pub fn blocked_by(&self, room: &RoomId) -> Result<Option<String>> {
        Ok(SERVER_SETTINGS
            .get(&self.store.db, &blocked_key(room))?
            .map(|by| String::from_utf8_lossy(&by).into_owned()))
    }

    /// Blocks the room (by `admin`) or, with `None`, unblocks it.
    pub async fn set_blocked(&self, room: &RoomId, admin: Option<&UserId>) -> Result<()> {
        let mut batch = Batch::new();
        match admin {
            Some(admin) => SERVER_SETTINGS.put(
                &mut batch,
                &blocked_key(room),
                &admin.as_str().as_bytes().to_vec(),
            ),
            None => SERVER_SETTINGS.delete(&mut batch, &blocked_key(room)),
        }
        self.store.commit(batch, vec![], Wake::none()).await
    }
}
