//! Sending and appending a local event: the one path every local sender
//! (people, the AI user, room creation) goes through. Building the event
//! itself is `build.rs`.

use std::future::Future;
use std::sync::Arc;

use matrixos_storage::{keys, Batch, CountGuard, Table};
use ruma::events::{StateEventType, TimelineEventType};
use ruma::{DeviceId, OwnedEventId, RoomId, UserId};
use serde_json::Value;

pub use super::build::BuiltEvent;
use super::{EventMeta, RoomRecord, Rooms};
use crate::error::{Error, Result};

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

fn txn_key(sender: &UserId, room: &RoomId, txn: &Txn<'_>) -> Vec<u8> {
    keys::join(&[
        sender.as_bytes(),
        txn.device.as_bytes(),
        txn.endpoint.as_bytes(),
        room.as_bytes(),
        txn.id.as_bytes(),
    ])
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
            if let Some(existing) = self
                .store
                .db
                .get(Table::Transactions, &txn_key(sender, room, txn))?
            {
                let id = String::from_utf8_lossy(&existing).into_owned();
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
        let (_, position) = self.stage_built(short_room, head, built, txn, &mut batch)?;
        Ok((event_id, self.store.commit(batch, vec![position])))
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
    ) -> Result<(RoomRecord, CountGuard)> {
        let BuiltEvent { pdu, stored } = built;
        let event_id = pdu.event_id.clone();
        let state = self.state.load(head.state)?;
        let short_event = self.store.db.allocate_short(batch);
        let position = self.store.db.reserve_count(batch);
        let count = position.get();
        let mut replaces = None;
        let mut new_head = head.clone();
        if let Some(key) = &pdu.state_key {
            let short_key = self
                .state
                .short_key_or_create(batch, &pdu.kind.to_string(), key)?;
            replaces = state.get(&short_key).copied();
            let mut next = (*state).clone();
            next.insert(short_key, short_event);
            new_head.state = self.state.store(batch, head.state, next)?;
        }
        new_head.extremities = vec![event_id.clone()];
        new_head.depth = head.depth + 1;
        let meta = EventMeta {
            room: short_room,
            count,
            state_before: head.state,
            state_after: new_head.state,
            replaces,
            txn: txn
                .as_ref()
                .map(|t| (t.device.to_string(), t.id.to_owned())),
        };
        batch.put(Table::Events, short_event.to_be_bytes().to_vec(), stored);
        batch.put(
            Table::EventIds,
            event_id.as_bytes().to_vec(),
            short_event.to_be_bytes().to_vec(),
        );
        batch.put(
            Table::EventMeta,
            short_event.to_be_bytes().to_vec(),
            serde_json::to_vec(&meta)?,
        );
        self.cache_meta(short_event, Arc::new(meta));
        batch.put(
            Table::Timeline,
            keys::short_and_u64(short_room, count).to_vec(),
            short_event.to_be_bytes().to_vec(),
        );
        batch.put(
            Table::Rooms,
            short_room.to_be_bytes().to_vec(),
            serde_json::to_vec(&new_head)?,
        );
        if let Some(txn) = &txn {
            batch.put(
                Table::Transactions,
                txn_key(&pdu.sender, &head.room_id, txn),
                event_id.as_bytes().to_vec(),
            );
        }
        if pdu.kind == TimelineEventType::RoomRedaction {
            let rules = head
                .version
                .rules()
                .ok_or_else(|| Error::unsupported_room_version("Unsupported room version"))?;
            self.apply_redaction(batch, short_room, &state, &rules, &pdu, short_event)?;
        }
        self.push.record_event(
            self,
            batch,
            crate::push::Appended {
                short_room,
                count,
                head: &head,
                after: &new_head,
                pdu: &pdu,
            },
        )?;
        let pdu = Arc::new(pdu);
        if pdu.kind == TimelineEventType::RoomMember {
            self.index_membership(batch, short_room, &new_head, &pdu, short_event, count)?;
        }
        self.notify_observer(short_room, &new_head.room_id, count, &pdu);
        self.cache_pdu(short_event, pdu);
        self.set_head(short_room, new_head.clone());
        Ok((new_head, position))
    }
}
