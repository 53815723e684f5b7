//! What this server owes other servers: a queue per destination, kept in
//! RocksDB. Events of this server's users enter it in the same batch that
//! appends them (an append hook), so an acknowledged event is never lost
//! to a crash before it went out; events relayed for others (a remote
//! user's join through this server) and EDUs enter it on their own. A
//! destination's sender (`sender.rs`) is woken once what was queued for it
//! is durable.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock, Weak};

use matrixos_storage::typed::TextAndTwoU64;
use matrixos_storage::{tables, Batch};
use parking_lot::Mutex;
use ruma::events::TimelineEventType;
use ruma::{EventId, OwnedServerName, RoomId, ServerName, UserId};
use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::rooms::joined_servers::JoinedServers;
use crate::rooms::{AppendHook, Appended, Rooms};
use crate::services::Services;
use crate::store::Wake;
use crate::two_gen::TwoGen;

/// Rooms whose remote servers are remembered.
const CACHED_ROOMS: usize = 10_000;

/// A destination's sender: woken for new rows, and told when the
/// destination is back after failures.
#[derive(Default)]
pub(super) struct SenderSignals {
    pub queued: Notify,
    pub back: Notify,
}

pub struct Outbox {
    server_name: OwnedServerName,
    /// Destinations to wake once the stream is visible up to a position.
    pending: Mutex<Vec<(u64, Vec<OwnedServerName>)>>,
    pending_added: Notify,
    senders: Mutex<HashMap<OwnedServerName, Arc<SenderSignals>>>,
    /// short room → its servers at a state (the room's latest, usually).
    servers: Mutex<TwoGen<u64, Arc<JoinedServers>>>,
    pub(super) services: OnceLock<Weak<Services>>,
}

impl Outbox {
    pub fn new(server_name: OwnedServerName) -> Self {
        Self {
            server_name,
            pending: Mutex::new(Vec::new()),
            pending_added: Notify::new(),
            senders: Mutex::new(HashMap::new()),
            servers: Mutex::new(TwoGen::new(CACHED_ROOMS)),
            services: OnceLock::new(),
        }
    }

    /// The servers with a joined member in the room at the room's state
    /// `state` (remembered per room, and moved on by each event).
    fn joined_servers(
        &self,
        rooms: &Rooms,
        short_room: u64,
        state: u64,
    ) -> Result<Arc<JoinedServers>> {
        if let Some(known) = self.servers.lock().get(&short_room) {
            if known.at == state {
                return Ok(known.clone());
            }
        }
        let servers = Arc::new(JoinedServers::at(rooms, state)?);
        self.servers.lock().insert(short_room, servers.clone());
        Ok(servers)
    }

    /// Moves a room's remembered servers on past `event`, when they were
    /// at the state it was appended on.
    fn move_servers_on(&self, rooms: &Rooms, event: &Appended<'_>) -> Result<()> {
        if event.after.state == event.head.state {
            return Ok(());
        }
        let Some(servers) = self.servers.lock().get(&event.short_room).cloned() else {
            return Ok(());
        };
        let next = servers.after(rooms, event)?;
        let mut cache = self.servers.lock();
        match next {
            Some(next) => cache.insert(event.short_room, Arc::new(next)),
            None => {
                cache.remove(&event.short_room);
            }
        }
        Ok(())
    }

    /// Adds a PDU row for each destination to `batch`.
    fn queue_pdu(
        &self,
        rooms: &Rooms,
        batch: &mut Batch,
        destinations: &[OwnedServerName],
        short_event: u64,
    ) {
        for destination in destinations {
            let seq = rooms.store.db.allocate_short(batch);
            tables::FEDERATION_OUTBOX.put(
                batch,
                &(destination.to_string(), seq, tables::OUTBOX_PDU),
                &short_event.to_be_bytes().to_vec(),
            );
        }
    }

    /// Queues an event of `room` for its other servers but `except` (the
    /// one it came from) and wakes their senders once it is durable.
    pub async fn relay(
        &self,
        s: &Services,
        room: &RoomId,
        event: &EventId,
        except: &ServerName,
    ) -> Result<()> {
        let short = s
            .rooms
            .short_event(event)?
            .ok_or_else(|| Error::internal("relayed event missing"))?;
        let destinations: Vec<OwnedServerName> = s
            .rooms
            .servers_in_room(room)?
            .into_iter()
            .filter(|d| *d != self.server_name && d != except)
            .collect();
        if destinations.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::new();
        self.queue_pdu(&s.rooms, &mut batch, &destinations, short);
        s.store.commit(batch, Vec::new(), Wake::none()).await?;
        for destination in &destinations {
            self.wake(destination);
        }
        Ok(())
    }

    /// Queues an EDU for `destination` and wakes its sender once durable.
    pub async fn queue_edu(
        &self,
        s: &Services,
        destination: &ServerName,
        edu: &serde_json::Value,
    ) -> Result<()> {
        if destination == self.server_name {
            return Ok(());
        }
        let mut batch = Batch::new();
        self.queue_edu_into(s, &mut batch, destination, edu)?;
        s.store.commit(batch, Vec::new(), Wake::none()).await?;
        self.wake(destination);
        Ok(())
    }

    /// Adds an EDU for `destination` to `batch`; the caller commits it and
    /// then wakes the destination.
    pub fn queue_edu_into(
        &self,
        s: &Services,
        batch: &mut Batch,
        destination: &ServerName,
        edu: &serde_json::Value,
    ) -> Result<()> {
        let seq = s.store.db.allocate_short(batch);
        tables::FEDERATION_OUTBOX.put(
            batch,
            &(destination.to_string(), seq, tables::OUTBOX_EDU),
            &serde_json::to_vec(edu)?,
        );
        Ok(())
    }

    /// The signals of a destination's sender, starting it if needed.
    fn signals(&self, destination: &ServerName) -> Arc<SenderSignals> {
        let mut senders = self.senders.lock();
        if let Some(signals) = senders.get(destination) {
            return signals.clone();
        }
        let signals = Arc::new(SenderSignals::default());
        senders.insert(destination.to_owned(), signals.clone());
        if let Some(services) = self.services.get() {
            tokio::spawn(super::sender::run(
                services.clone(),
                destination.to_owned(),
                signals.clone(),
            ));
        }
        signals
    }

    /// Tells a destination's sender that rows wait for it.
    pub fn wake(&self, destination: &ServerName) {
        self.signals(destination).queued.notify_one();
    }

    /// A destination showed it is up (it sent us a transaction): its
    /// sender stops waiting out a backoff.
    pub fn peer_is_back(&self, destination: &ServerName) {
        if let Some(signals) = self.senders.lock().get(destination) {
            signals.back.notify_one();
        }
    }

    /// Destinations whose rows became durable up to `visible`.
    pub(super) fn take_pending(&self, visible: u64) -> BTreeSet<OwnedServerName> {
        let mut pending = self.pending.lock();
        let mut due = BTreeSet::new();
        pending.retain(|(count, destinations)| {
            if *count <= visible {
                due.extend(destinations.iter().cloned());
                false
            } else {
                true
            }
        });
        due
    }

    pub(super) async fn pending_added(&self) {
        self.pending_added.notified().await;
    }

    /// Every destination with rows waiting (at startup).
    pub(super) fn queued_destinations(s: &Services) -> Result<BTreeSet<OwnedServerName>> {
        let mut out = BTreeSet::new();
        for row in tables::FEDERATION_OUTBOX.scan_prefix(&s.store.db, &[]) {
            let ((destination, _, _), _) = row?;
            if let Ok(name) = ServerName::parse(&destination) {
                out.insert(name);
            }
        }
        Ok(out)
    }

    /// The prefix of a destination's rows.
    pub(super) fn prefix(destination: &ServerName) -> Vec<u8> {
        TextAndTwoU64::prefix(destination.as_str(), None)
    }
}

impl AppendHook for Outbox {
    /// Events of this server's users go to every other server in the room
    /// (as it was before the event), and a member event also to its
    /// target's server.
    fn appended(&self, rooms: &Rooms, batch: &mut Batch, event: &Appended<'_>) -> Result<()> {
        let pdu = event.pdu;
        if pdu.sender.server_name() != self.server_name {
            // Only followed, when remembered: a peer's join or leave.
            return self.move_servers_on(rooms, event);
        }
        let servers = self.joined_servers(rooms, event.short_room, event.head.state)?;
        self.move_servers_on(rooms, event)?;
        let mut destinations: Vec<OwnedServerName> = servers
            .servers()
            .filter(|s| *s != self.server_name)
            .map(ToOwned::to_owned)
            .collect();
        if pdu.kind == TimelineEventType::RoomMember {
            if let Some(target) = pdu.state_key.as_deref().and_then(|k| UserId::parse(k).ok()) {
                let server = target.server_name();
                if server != self.server_name && !destinations.iter().any(|d| d == server) {
                    destinations.push(server.to_owned());
                }
            }
        }
        if destinations.is_empty() {
            return Ok(());
        }
        if let Some(acl) = super::acl::Acl::at(rooms, event.head.state)? {
            destinations.retain(|d| acl.allows(d));
        }
        self.queue_pdu(rooms, batch, &destinations, event.short_event);
        self.pending.lock().push((event.count, destinations));
        self.pending_added.notify_one();
        Ok(())
    }
}
