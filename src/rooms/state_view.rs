//! The room state an event is built and authorised against.
//!
//! An ordinary send builds on the room's stored state. Room creation builds
//! every initial event before it stores any of them, so that a refused event
//! (too large, forbidden, malformed) leaves no half-created room behind:
//! those events are built against the ones built before them, held here in
//! memory.

use std::collections::HashMap;
use std::sync::Arc;

use ruma::{EventId, OwnedEventId};

use super::state::StateMap;
use super::{Pdu, Rooms};
use crate::error::Result;

/// What building and authorising an event needs to know about the room.
pub(crate) trait StateView {
    /// The state event for (type, state key), if the state has one.
    fn state_event(&self, kind: &str, state_key: &str) -> Result<Option<Arc<Pdu>>>;
    /// An event by id (the auth rules look up auth events this way).
    fn event(&self, id: &EventId) -> Result<Option<Arc<Pdu>>>;
}

/// A state the server has stored (or queued for the disk).
pub(crate) struct StoredState<'a> {
    pub rooms: &'a Rooms,
    pub state: Arc<StateMap>,
}

impl StateView for StoredState<'_> {
    fn state_event(&self, kind: &str, state_key: &str) -> Result<Option<Arc<Pdu>>> {
        let Some(short_key) = self.rooms.state.short_key(kind, state_key)? else {
            return Ok(None);
        };
        match self.state.get(&short_key) {
            Some(short_event) => Ok(Some(self.rooms.pdu_by_short(*short_event)?)),
            None => Ok(None),
        }
    }

    fn event(&self, id: &EventId) -> Result<Option<Arc<Pdu>>> {
        Ok(self.rooms.pdu(id)?.map(|(_, pdu)| pdu))
    }
}

/// Events built but not stored: the state of a room being created.
#[derive(Default)]
pub(crate) struct DraftState {
    state: HashMap<(String, String), Arc<Pdu>>,
    by_id: HashMap<OwnedEventId, Arc<Pdu>>,
}

impl DraftState {
    /// Adds an event built on this state; a state event replaces the one
    /// with its type and state key.
    pub fn add(&mut self, pdu: &Pdu) {
        let pdu = Arc::new(pdu.clone());
        if let Some(key) = &pdu.state_key {
            self.state
                .insert((pdu.kind.to_string(), key.clone()), pdu.clone());
        }
        self.by_id.insert(pdu.event_id.clone(), pdu);
    }
}

impl StateView for DraftState {
    fn state_event(&self, kind: &str, state_key: &str) -> Result<Option<Arc<Pdu>>> {
        Ok(self
            .state
            .get(&(kind.to_owned(), state_key.to_owned()))
            .cloned())
    }

    fn event(&self, id: &EventId) -> Result<Option<Arc<Pdu>>> {
        Ok(self.by_id.get(id).cloned())
    }
}

/// An event's own auth events, taken as a state: the first of the spec's
/// checks on an event from elsewhere. Built only from events the server
/// has; the auth rules reject an event whose auth events are missing.
pub(crate) struct AuthEventsState<'a> {
    rooms: &'a Rooms,
    state: HashMap<(String, String), Arc<Pdu>>,
}

impl<'a> AuthEventsState<'a> {
    /// `create_implied`: the room version names the create event by the
    /// room id, not in `auth_events` (room version 12).
    pub fn of(rooms: &'a Rooms, pdu: &Pdu, create_implied: bool) -> Result<Self> {
        let mut state = HashMap::new();
        for (_, event) in Self::events_of(rooms, pdu, create_implied)? {
            if let Some(key) = &event.state_key {
                state.insert((event.kind.to_string(), key.clone()), event.clone());
            }
        }
        Ok(Self { rooms, state })
    }

    /// The auth events of `pdu` the server has, with their short ids.
    pub fn events_of(
        rooms: &Rooms,
        pdu: &Pdu,
        create_implied: bool,
    ) -> Result<Vec<(u64, Arc<Pdu>)>> {
        let implied = match (&pdu.room_id, create_implied) {
            (Some(room), true) => OwnedEventId::try_from(format!("${}", &room.as_str()[1..])).ok(),
            _ => None,
        };
        let mut events = Vec::with_capacity(pdu.auth_events.len() + 1);
        for id in pdu.auth_events.iter().chain(implied.iter()) {
            if let Some(found) = rooms.pdu(id)? {
                events.push(found);
            }
        }
        Ok(events)
    }
}

impl StateView for AuthEventsState<'_> {
    fn state_event(&self, kind: &str, state_key: &str) -> Result<Option<Arc<Pdu>>> {
        Ok(self
            .state
            .get(&(kind.to_owned(), state_key.to_owned()))
            .cloned())
    }

    fn event(&self, id: &EventId) -> Result<Option<Arc<Pdu>>> {
        Ok(self.rooms.pdu(id)?.map(|(_, pdu)| pdu))
    }
}
