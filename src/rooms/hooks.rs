//! Append hooks: what else happens when an event joins a room's timeline
//! (push rules and notifications, the AI users' observer, later the
//! federation send queue). Every path that appends (local sends, the AI,
//! events from other servers) runs the same hooks, registered at startup;
//! the room core knows none of them by name.

use std::sync::Arc;

use matrixos_storage::Batch;
use parking_lot::RwLock;

use super::{Pdu, RoomRecord, Rooms};
use crate::error::Result;

/// An event being appended to a room's timeline.
pub struct Appended<'a> {
    pub short_room: u64,
    /// Its stream position.
    pub count: u64,
    pub short_event: u64,
    /// The room's head before the event and after it.
    pub head: &'a RoomRecord,
    pub after: &'a RoomRecord,
    pub pdu: &'a Arc<Pdu>,
    /// The state before the event and after it.
    pub state_before: u64,
    pub state_after: u64,
    /// The state event this one replaced in the state.
    pub replaces: Option<u64>,
}

pub trait AppendHook: Send + Sync {
    /// Runs on the append path, under the room lock, before the batch is
    /// committed: what it adds to `batch` becomes durable with the event.
    /// It must be quick; an error refuses the event.
    fn appended(&self, rooms: &Rooms, batch: &mut Batch, event: &Appended<'_>) -> Result<()>;

    /// Runs for each accepted event stored before the timeline's start
    /// (history fetched from a peer), in the backfill's batch. Nothing by
    /// default: notifications, the AI and the send queue are for new
    /// events only.
    fn backfilled(
        &self,
        _rooms: &Rooms,
        _batch: &mut Batch,
        _short_event: u64,
        _pdu: &Pdu,
    ) -> Result<()> {
        Ok(())
    }
}

#[derive(Default)]
pub(crate) struct Hooks {
    hooks: RwLock<Vec<Arc<dyn AppendHook>>>,
}

impl Hooks {
    pub fn add(&self, hook: Arc<dyn AppendHook>) {
        self.hooks.write().push(hook);
    }

    pub fn run(&self, rooms: &Rooms, batch: &mut Batch, event: &Appended<'_>) -> Result<()> {
        let hooks = self.hooks.read().clone();
        for hook in hooks {
            hook.appended(rooms, batch, event)?;
        }
        Ok(())
    }

    pub fn run_backfilled(
        &self,
        rooms: &Rooms,
        batch: &mut Batch,
        short: u64,
        pdu: &Pdu,
    ) -> Result<()> {
        let hooks = self.hooks.read().clone();
        for hook in hooks {
            hook.backfilled(rooms, batch, short, pdu)?;
        }
        Ok(())
    }
}

impl Rooms {
    /// Registers a hook run for every event appended from now on.
    pub fn add_hook(&self, hook: Arc<dyn AppendHook>) {
        self.hooks.add(hook);
    }
}
