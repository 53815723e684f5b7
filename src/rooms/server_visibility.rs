//! What another server may read of a room's events, event by event, as
//! Synapse decides it for `/event`, `/backfill` and `/get_missing_events`:
//! an event is visible to a server when the room's history was `shared`
//! or `world_readable` at that event, or when one of the server's users
//! was joined then (or invited, with `invited` visibility). The state
//! before the event decides, with the boundary rules users get (a
//! visibility change or the server's own member event counts by the more
//! permissive of before and after). An event the server may not see is
//! served redacted, so that its DAG stays whole but its content hidden.

use std::collections::HashMap;

use parking_lot::Mutex;
use ruma::canonical_json::{redact, CanonicalJsonObject};
use ruma::events::TimelineEventType;
use ruma::room_version_rules::RedactionRules;
use ruma::{OwnedUserId, RoomId, ServerName};

use super::build::rules_of;
use super::visibility::{Membership, Visibility};
use super::Rooms;
use crate::error::{Error, Result};

pub struct ServerReader<'a> {
    rooms: &'a Rooms,
    short_room: u64,
    /// The server's users with a membership (now or once) in the room.
    users: Vec<OwnedUserId>,
    redaction: RedactionRules,
    /// Per state: the visibility and the best membership of the users.
    at_state: Mutex<HashMap<u64, (Visibility, Membership)>>,
}

impl Rooms {
    /// How `server` may read the events of `room`.
    pub fn server_reader<'a>(
        &'a self,
        room: &RoomId,
        server: &ServerName,
    ) -> Result<ServerReader<'a>> {
        let (short_room, record) = self.record_of(room)?;
        let users = self
            .members(short_room)?
            .into_iter()
            .map(|(user, _)| user)
            .filter(|user| user.server_name() == server)
            .collect();
        Ok(ServerReader {
            rooms: self,
            short_room,
            users,
            redaction: rules_of(&record)?.redaction,
            at_state: Mutex::new(HashMap::new()),
        })
    }
}

impl ServerReader<'_> {
    fn at(&self, state_hash: u64) -> Result<(Visibility, Membership)> {
        if let Some(known) = self.at_state.lock().get(&state_hash) {
            return Ok(*known);
        }
        let visibility = self.rooms.visibility_in(state_hash)?;
        let mut best = Membership::Leave;
        for user in &self.users {
            if let Some(event) =
                self.rooms
                    .state_event(state_hash, "m.room.member", user.as_str())?
            {
                best = best.min(Membership::of_event(&event));
            }
        }
        self.at_state.lock().insert(state_hash, (visibility, best));
        Ok((visibility, best))
    }

    /// Whether the server may see this event of the room. Events outside
    /// the timeline (state and auth events received with a join) are
    /// state, which the server gets from `/state` anyway.
    pub fn can_see(&self, short: u64) -> Result<bool> {
        let Some(meta) = self.rooms.timeline_meta(short)? else {
            return Ok(true);
        };
        if meta.room != self.short_room {
            return Ok(false);
        }
        let (mut visibility, mut membership) = self.at(meta.state_before)?;
        let pdu = self.rooms.pdu_by_short(short)?;
        if let Some(after) = Visibility::set_by(&pdu) {
            visibility = visibility.min(after);
        }
        let own_member = pdu.kind == TimelineEventType::RoomMember
            && pdu
                .state_key
                .as_deref()
                .is_some_and(|key| self.users.iter().any(|u| u.as_str() == key));
        if own_member {
            membership = membership.min(Membership::of_event(&pdu));
        }
        Ok(matches!(
            (visibility, membership),
            (Visibility::WorldReadable | Visibility::Shared, _)
                | (_, Membership::Join)
                | (Visibility::Invited, Membership::Invite)
        ))
    }

    /// The event as signed, or its redacted form when the server may not
    /// see it.
    pub fn served(&self, short: u64) -> Result<Vec<u8>> {
        let signed = self.rooms.signed_pdu(short)?;
        if self.can_see(short)? {
            return Ok(signed);
        }
        let object: CanonicalJsonObject = serde_json::from_slice(&signed)?;
        let redacted = redact(object, &self.redaction, None)
            .map_err(|e| Error::internal(format!("redacting a stored PDU: {e}")))?;
        Ok(serde_json::to_vec(&redacted)?)
    }
}
