//! Sending and appending a local event: the one path every local sender
//! (people, the AI user, room creation) goes through. Building the event
//! itself is `build.rs`.

use std::future::Future;

use matrixos_storage::{tables, Batch, CountGuard};
use ruma::events::{StateEventType, TimelineEventType};
use ruma::{DeviceId, OwnedEventId, RoomId, UserId};
use serde_json::Value;

use super::append::Incoming;
pub use super::build::BuiltEvent;
use super::{RoomRecord, Rooms};
use crate::error::{Error, Result};
use crate::store::Wake;

/// An event a local user wants to send.
#[derive(Debug, Clone)]
pub struct EventDraft {
    pub kind: TimelineEventType,
    pub content: Value,
    pub state_key: Option<String>,
    pub redacts: Option<OwnedEventId>,
}

impl EventDraft {
    pub fn state(kind: StateEventType, state_key: impl Into<String>, content: Value) -> Self {
        Self {
            kind: kind.to_string().into(),
            content,
            state_key: Some(state_key.into()),
            redacts: None,
        }
    }

    pub fn message(kind: TimelineEventType, content: Value) -> Self {
        Self {
            kind,
            content,
            state_key: None,
            redacts: None,
        }
    }
}

/// Where an event comes from, for idempotency and `unsigned.transaction_id`.
/// A transaction id is scoped, as in Synapse, to the device and the endpoint
/// it was used on: the same id in another room or on `/redact` is a new
/// request.
pub struct Txn<'a> {
    pub device: &'a DeviceId,
    pub id: &'a str,
    /// `send` or `redact`.
    pub endpoint: &'static str,
}

fn txn_key(sender: &UserId, room: &RoomId, txn: &Txn<'_>) -> [String; 5] {
    [
        sender.to_string(),
        txn.device.to_string(),
        txn.endpoint.to_owned(),
        room.to_string(),
        txn.id.to_owned(),
    ]
}

impl Rooms {
    /// Sends an event as a local user: builds it on the room's head, checks
    /// the auth rules, signs it and waits until it is durable.
    pub async fn send(
        &self,
        sender: &UserId,
        room: &RoomId,
        draft: EventDraft,
        txn: Option<Txn<'_>>,
    ) -> Result<OwnedEventId> {
        let lock = self.lock(room);
        let guard = lock.lock().await;
        if let Some(txn) = &txn {
            if let Some(id) = tables::EVENT_TXNS.get(&self.store.db, &txn_key(sender, room, txn))? {
                return OwnedEventId::try_from(id)
                    .map_err(|_| Error::internal("corrupt transaction record"));
            }
        }
        let short_room = self
            .short_room(room)?
            .ok_or_else(|| Error::forbidden("Unknown room"))?;
        let head = self
            .head(short_room)?
            .ok_or_else(|| Error::forbidden("Unknown room"))?;
        let (event_id, durable) = self.append_local(short_room, head, sender, draft, txn, true)?;
        drop(guard);
        if let Err(e) = durable.await {
            self.forget_head(short_room);
            return Err(e);
        }
        Ok(event_id)
    }

    /// Builds, authorises and signs an event as a local user without
    /// storing it (an invite the invitee's server signs first); returns
    /// the room's version and the signed event.
    pub async fn build_unstored(
        &self,
        sender: &UserId,
        room: &RoomId,
        draft: EventDraft,
    ) -> Result<(ruma::RoomVersionId, ruma::CanonicalJsonObject)> {
        let lock = self.lock(room);
        let _guard = lock.lock().await;
        let (_, head) = self.record_of(room)?;
        let built = self.build(&head, sender, draft, true)?;
        let signed = super::stored_event::signed_pdu(&built.stored)?;
        let object = serde_json::from_slice(&signed)
            .map_err(|e| Error::internal(format!("built event: {e}")))?;
        Ok((head.version, object))
    }

    /// Builds and queues one event on `head` (caller holds the room lock).
    /// Returns the event id and a future that resolves once it is durable.
    pub(crate) fn append_local(
        &self,
        short_room: u64,
        head: RoomRecord,
        sender: &UserId,
        draft: EventDraft,
        txn: Option<Txn<'_>>,
        room_id_in_pdu: bool,
    ) -> Result<(
        OwnedEventId,
        impl Future<Output = Result<()>> + Send + 'static,
    )> {
        let built = self.build(&head, sender, draft, room_id_in_pdu)?;
        self.append_built(short_room, head, built, txn, Batch::new())
    }

    /// Stores a built event on `head` in one batch (after `prelude`'s
    /// operations) and moves the head on.
    pub(crate) fn append_built(
        &self,
        short_room: u64,
        head: RoomRecord,
        built: BuiltEvent,
        txn: Option<Txn<'_>>,
        prelude: Batch,
    ) -> Result<(
        OwnedEventId,
        impl Future<Output = Result<()>> + Send + 'static,
    )> {
        let mut batch = prelude;
        let event_id = built.pdu.event_id.clone();
        let (_, position, wake) = self.stage_built(short_room, head, built, txn, &mut batch)?;
        Ok((event_id, self.store.commit(batch, vec![position], wake)))
    }

    /// Adds a built event on `head` to `batch` and moves the in-memory head
    /// on; returns the new head and the event's stream position, which the
    /// caller commits with the batch.
    pub(crate) fn stage_built(
        &self,
        short_room: u64,
        head: RoomRecord,
        built: BuiltEvent,
        txn: Option<Txn<'_>>,
        batch: &mut Batch,
    ) -> Result<(RoomRecord, CountGuard, Wake)> {
        let BuiltEvent { pdu, stored } = built;
        let txn = txn.map(|t| {
            (
                (t.device.to_string(), t.id.to_owned()),
                txn_key(&pdu.sender, &head.room_id, &t),
            )
        });
        let staged = self.stage(
            short_room,
            head,
            Incoming {
                pdu,
                stored,
                local: true,
                state_before: None,
                txn,
            },
            batch,
        )?;
        let position = staged
            .position
            .ok_or_else(|| Error::internal("a local event was not appended"))?;
        Ok((staged.head, position, staged.wake))
    }
}
