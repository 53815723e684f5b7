//! The servers with a joined member in a room at a state, with how many
//! of their users are joined there. Read from the state itself once (the
//! membership index follows the current state only once the batches
//! before it are written), then moved on by each appended event, so a
//! large room's members are not read again for every join or leave.

use std::collections::BTreeMap;

use ruma::events::TimelineEventType;
use ruma::{OwnedServerName, ServerName, UserId};

use super::hooks::Appended;
use super::visibility::Membership;
use super::{Pdu, Rooms};
use crate::error::Result;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinedServers {
    /// The state these are the servers at.
    pub at: u64,
    /// Server → its users joined at that state (never 0).
    joined: BTreeMap<OwnedServerName, usize>,
}

impl JoinedServers {
    /// Reads the joined members of the state `state_id`.
    pub fn at(rooms: &Rooms, state_id: u64) -> Result<Self> {
        let mut joined: BTreeMap<OwnedServerName, usize> = BTreeMap::new();
        for (key, event) in rooms.state.load(state_id)?.iter() {
            let (kind, state_key) = rooms.state.key_of(*key)?;
            if kind != "m.room.member" {
                continue;
            }
            let Ok(user) = UserId::parse(state_key) else {
                continue;
            };
            if is_join(&*rooms.pdu_by_short(*event)?) {
                *joined.entry(user.server_name().to_owned()).or_default() += 1;
            }
        }
        Ok(Self {
            at: state_id,
            joined,
        })
    }

    /// The servers, in name order.
    pub fn servers(&self) -> impl Iterator<Item = &ServerName> {
        self.joined.keys().map(|s| s.as_ref())
    }

    /// The servers after `event`, which was appended on the state these
    /// are at; `None` when they cannot be told from the event alone (a
    /// fork was resolved, or the state was reset): read them again.
    pub fn after(&self, rooms: &Rooms, event: &Appended<'_>) -> Result<Option<Self>> {
        let linear = self.at == event.head.state
            && event.state_before == event.head.state
            && event.state_after == event.after.state;
        if !linear {
            return Ok(None);
        }
        let mut next = Self {
            at: event.after.state,
            joined: self.joined.clone(),
        };
        let pdu = event.pdu;
        if pdu.kind != TimelineEventType::RoomMember {
            return Ok(Some(next));
        }
        let Some(user) = pdu.state_key.as_deref().and_then(|k| UserId::parse(k).ok()) else {
            return Ok(Some(next));
        };
        let was_joined = match event.replaces {
            Some(old) => is_join(&*rooms.pdu_by_short(old)?),
            None => false,
        };
        let is_joined = is_join(pdu);
        let server = user.server_name();
        match (was_joined, is_joined) {
            (false, true) => *next.joined.entry(server.to_owned()).or_default() += 1,
            (true, false) => {
                if let Some(count) = next.joined.get_mut(server) {
                    *count -= 1;
                    if *count == 0 {
                        next.joined.remove(server);
                    }
                }
            }
            _ => {}
        }
        Ok(Some(next))
    }
}

fn is_join(member_event: &Pdu) -> bool {
    Membership::of_event(member_event) == Membership::Join
}
