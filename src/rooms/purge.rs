//! Purging a room's content, as an admin deleting a room with `purge`
//! asks: every event of the room stored here (in its history, and the
//! outliers and rejected events outside it) is pruned in place, as a
//! redaction prunes it. Ids, senders, times and the
//! keys the auth rules need stay, so the room's history still holds
//! together for whatever reads it; bodies, names, topics, profiles and
//! attachments' addresses are gone from storage.
//!
//! A purged room is marked so: while no user of this server is joined to
//! it again, the admin API knows it no more than Synapse knows a room it
//! purged (it is not listed, its details are 404). Its members keep their
//! `leave`, which a client that was away still has to sync.

use std::sync::Arc;

use matrixos_storage::tables::{self, SERVER_SETTINGS};
use matrixos_storage::Batch;
use ruma::RoomId;

use super::build::rules_of;
use super::{Pdu, Rooms};
use crate::error::Result;
use crate::store::Wake;

/// Events pruned per write batch.
const PER_BATCH: usize = 256;

fn purged_key(room: &RoomId) -> String {
    format!("purged_room:{room}")
}

impl Rooms {
    /// Prunes every event of `room` stored here. `pruned` is called for
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
        events.extend(self.outside_history(room)?);
        for chunk in events.chunks(PER_BATCH) {
            let mut batch = Batch::new();
            let mut done = Vec::with_capacity(chunk.len());
            for &short in chunk {
                let stored = self.pdu_by_short(short)?;
                let mut pdu = self.prune_stored(&mut batch, short, &stored.event_id, &rules)?;
                pdu.rejected = stored.rejected;
                pruned(&mut batch, short, &pdu);
                done.push((short, Arc::new(pdu)));
            }
            self.store.commit(batch, vec![], Wake::none()).await?;
            for (short, pdu) in done {
                self.cache_pdu(short, pdu);
            }
        }
        let mut batch = Batch::new();
        SERVER_SETTINGS.put(&mut batch, &purged_key(room), &Vec::new());
        self.store.commit(batch, vec![], Wake::none()).await?;
        tracing::info!(room = %room, events = events.len(), "room content purged");
        Ok(events.len())
    }

    /// Whether the room was purged and nobody here joined it since: gone
    /// from this server as far as its admins see.
    pub fn purged_and_empty(&self, room: &RoomId) -> Result<bool> {
        Ok(SERVER_SETTINGS.contains(&self.store.db, &purged_key(room))?
            && !self.has_joined_member(room)?)
    }

    /// The room's stored events that have no place in its history:
    /// outliers (fetched for a join or as auth events) and rejected events.
    /// Neither is indexed by room, so both tables are read through.
    fn outside_history(&self, room: &RoomId) -> Result<Vec<u64>> {
        let db = &self.store.db;
        let outliers = tables::OUTLIERS
            .scan_prefix(db, &[])
            .map(|item| item.map(|(short, ())| short));
        let rejected = tables::REJECTIONS
            .scan_prefix(db, &[])
            .map(|item| item.map(|(short, _)| short));
        let mut out = Vec::new();
        for short in outliers.chain(rejected) {
            let short = short?;
            if self.pdu_by_short(short)?.room_id.as_deref() == Some(room) {
                out.push(short);
            }
        }
        Ok(out)
    }
}
