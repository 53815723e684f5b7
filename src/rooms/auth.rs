//! The authorization rules, applied through ruma's implementation of them
//! for every room version.

use ruma::events::{StateEventType, TimelineEventType};
use ruma::room_version_rules::AuthorizationRules;
use ruma::EventId;

use super::state::StateMap;
use super::{Pdu, Rooms};
use crate::error::{Error, Result};

/// Checks `pdu` against the rules, with `state` as the state before it.
pub fn check(rooms: &Rooms, rules: &AuthorizationRules, pdu: &Pdu, state: &StateMap) -> Result<()> {
    let fetch_event = |id: &EventId| rooms.pdu(id).ok().flatten().map(|(_, p)| p);
    ruma::state_res::check_state_independent_auth_rules(rules, pdu, fetch_event).map_err(|e| {
        tracing::info!(reason = %e, "event refused by auth rules");
        Error::forbidden(e)
    })?;
    if pdu.kind == TimelineEventType::RoomCreate {
        return Ok(());
    }
    let fetch_state = |kind: &StateEventType, key: &str| {
        let short_key = rooms
            .state
            .short_key(&kind.to_string(), key)
            .ok()
            .flatten()?;
        let short_event = state.get(&short_key)?;
        rooms.pdu_by_short(*short_event).ok()
    };
    ruma::state_res::check_state_dependent_auth_rules(rules, pdu, fetch_state).map_err(|e| {
        tracing::info!(reason = %e, "event refused by auth rules");
        Error::forbidden(e)
    })
}
