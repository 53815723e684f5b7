//! The authorization rules, applied through ruma's implementation of them
//! for every room version.

use ruma::events::{StateEventType, TimelineEventType};
use ruma::room_version_rules::AuthorizationRules;
use ruma::EventId;

use super::state_view::StateView;
use super::Pdu;
use crate::error::{Error, Result};

/// Checks `pdu` against the rules, with `state` as the state before it.
pub(crate) fn check(rules: &AuthorizationRules, pdu: &Pdu, state: &dyn StateView) -> Result<()> {
    let fetch_event = |id: &EventId| state.event(id);
    ruma::state_res::check_state_independent_auth_rules(rules, pdu, fetch_event).map_err(|e| {
        tracing::info!(reason = %e, "event refused by auth rules");
        Error::forbidden(e)
    })?;
    if pdu.kind == TimelineEventType::RoomCreate {
        return Ok(());
    }
    let fetch_state =
        |kind: &StateEventType, key: &str| state.state_event(&kind.to_string(), key).ok().flatten();
    ruma::state_res::check_state_dependent_auth_rules(rules, pdu, fetch_state).map_err(|e| {
        tracing::info!(reason = %e, "event refused by auth rules");
        Error::forbidden(e)
    })
}
