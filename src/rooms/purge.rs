//! Purging a room's content, as an admin deleting a room with `purge`
//! asks: every event of the room that has a place in its history is
//! pruned in place, as a redaction prunes it. Ids, senders, times and the
//! keys the auth rules need stay, so the room's history still holds
//! together for whatever reads it; bodies, names, topics, profiles and
//! attachments' addresses are gone from storage.

use std::sync::Arc;

use matrixos_storage::{tables, Batch};
use ruma::RoomId;

use super::build::rules_of;
use super::{Pdu, Rooms};
use crate::error::Result;
use crate::store::Wake;

/// Events pruned per write batch.
const PER_BATCH: usize = 256;

impl Rooms {
    /// Prunes every event of `room` with a place in its history (outliers
    /// and rejected events have none and are left). `pruned` is called for
    /// each with the batch that stores it, for what indexes events (the
    /// search index). Answers how many events were pruned.
    pub async fn purge_content(
        &self,
        room: &RoomId,
        pruned: impl Fn(&mut Batch, u64, &Pdu),
    ) -> Result<usize> {
        let (short_room, record) = self.record_of(room)?;
        let rules = rules_of(&record)?;
        let lock = self.lock(room);
        let _held = lock.lock().await;
        let mut events = Vec::new();
        for item in tables::EVENT_META.scan_prefix(&self.store.db, &[]) {
            let (short, meta) = item?;
            if meta.room == short_room {
                events.push(short);
            }
        }
        for chunk in events.chunks(PER_BATCH) {
            let mut batch = Batch::new();
            let mut done = Vec::with_capacity(chunk.len());
            for &short in chunk {
                let event_id = self.pdu_by_short(short)?.event_id.clone();
                let pdu = self.prune_stored(&mut batch, short, &event_id, &rules)?;
                pruned(&mut batch, short, &pdu);
                done.push((short, Arc::new(pdu)));
            }
            self.store.commit(batch, vec![], Wake::none()).await?;
            for (short, pdu) in done {
                self.cache_pdu(short, pdu);
            }
        }
        tracing::info!(room = %room, events = events.len(), "room content purged");
        Ok(events.len())
    }
}
