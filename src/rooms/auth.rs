//! The authorization rules, applied through ruma's implementation of them
//! for every room version, and the verdict they give an event from
//! elsewhere: the spec's three checks, in its order.

use std::cell::RefCell;
use std::sync::Arc;

use ruma::events::{StateEventType, TimelineEventType};
use ruma::room_version_rules::AuthorizationRules;
use ruma::EventId;

use super::state_view::StateView;
use super::Pdu;
use crate::error::{Error, Result};

pub use matrixos_storage::records::Verdict;

/// The outcome of applying the rules: `Ok(Err(reason))` is a refusal; the
/// outer error is a storage failure, which is never a refusal.
pub(crate) type Decision = Result<std::result::Result<(), String>>;

/// Applies the rules to `pdu` with `state` as the state before it.
pub(crate) fn decide(rules: &AuthorizationRules, pdu: &Pdu, state: &dyn StateView) -> Decision {
    let failure: RefCell<Option<Error>> = RefCell::new(None);
    let fetch_event = |id: &EventId| match state.event(id) {
        Ok(found) => found,
        Err(e) => {
            failure.borrow_mut().get_or_insert(e);
            None
        }
    };
    let independent = ruma::state_res::check_state_independent_auth_rules(rules, pdu, fetch_event);
    if let Some(e) = failure.borrow_mut().take() {
        return Err(e);
    }
    if let Err(reason) = independent {
        return Ok(Err(reason));
    }
    if pdu.kind == TimelineEventType::RoomCreate || super::auth_shortcut::allows(rules, pdu, state)?
    {
        return Ok(Ok(()));
    }
    let fetch_state = |kind: &StateEventType, key: &str| -> Option<Arc<Pdu>> {
        match state.state_event(&kind.to_string(), key) {
            Ok(found) => found,
            Err(e) => {
                failure.borrow_mut().get_or_insert(e);
                None
            }
        }
    };
    let dependent = ruma::state_res::check_state_dependent_auth_rules(rules, pdu, fetch_state);
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    Ok(dependent)
}

/// Checks a local event: a refusal is `M_FORBIDDEN`.
pub(crate) fn check(rules: &AuthorizationRules, pdu: &Pdu, state: &dyn StateView) -> Result<()> {
    decide(rules, pdu, state)?.map_err(|reason| {
        tracing::info!(%reason, "event refused by auth rules");
        Error::forbidden(reason)
    })
}

/// The states an event from elsewhere is checked against.
pub(crate) struct Judged<'a> {
    /// The event's own auth events, as a state.
    pub auth_events: &'a dyn StateView,
    /// The room's state before the event (from its prev events).
    pub before: &'a dyn StateView,
    /// The room's current state.
    pub current: &'a dyn StateView,
}

/// The spec's checks on receipt of a PDU: against its auth events, then
/// the state before it (either failing rejects it), then the current state
/// (failing soft-fails it). Returns the verdict and the reason for it.
pub(crate) fn judge(
    rules: &AuthorizationRules,
    pdu: &Pdu,
    states: Judged<'_>,
) -> Result<(Verdict, Option<String>)> {
    if let Err(reason) = decide(rules, pdu, states.auth_events)? {
        return Ok((Verdict::Rejected, Some(reason)));
    }
    if let Err(reason) = decide(rules, pdu, states.before)? {
        return Ok((Verdict::Rejected, Some(reason)));
    }
    if pdu.kind != TimelineEventType::RoomCreate {
        if let Err(reason) = decide(rules, pdu, states.current)? {
            return Ok((Verdict::SoftFailed, Some(reason)));
        }
    }
    Ok((Verdict::Accepted, None))
}
