//! State resolution for room version 1, the spec's original algorithm as
//! Synapse applies it. A key set to one event wherever it is set is kept.
//! Conflicted keys are resolved in order: power levels, then join rules,
//! then memberships, each by walking its candidates from the shallowest and
//! keeping the last one the state so far authorises the next from; then
//! every other key takes its deepest candidate that passes auth against the
//! state resolved so far. Ties in depth go to the smaller SHA-1 of the id.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use ruma::events::{StateEventType, TimelineEventType};
use ruma::room_version_rules::AuthorizationRules;
use ruma::OwnedEventId;
use sha1::{Digest, Sha1};

use super::{Pdu, Rooms};
use crate::error::{Error, Result};

type Key = (StateEventType, String);
type RumaStateMap = ruma::state_res::StateMap<OwnedEventId>;

/// The state keys that stand for the auth events of a conflicted event,
/// resolved so far: (type, state key) → event.
type AuthState = HashMap<Key, Arc<Pdu>>;

impl Rooms {
    /// Resolves several states of a room version 1 room.
    pub(crate) fn resolve_v1(
        &self,
        rules: &AuthorizationRules,
        states: &[RumaStateMap],
    ) -> Result<RumaStateMap> {
        let (mut resolved, conflicted) = separate(states);
        let mut candidates: HashMap<Key, Vec<Arc<Pdu>>> = HashMap::new();
        for (key, ids) in conflicted {
            let events = ids
                .iter()
                .map(|id| self.known_pdu(id))
                .collect::<Result<Vec<_>>>()?;
            candidates.insert(key, order(events));
        }
        let mut auth = self.unconflicted_auth(rules, &resolved, candidates.values().flatten())?;
        let rounds: [fn(&Key) -> bool; 3] = [
            |k| k.0 == StateEventType::RoomPowerLevels,
            |k| k.0 == StateEventType::RoomJoinRules,
            |k| k.0 == StateEventType::RoomMember,
        ];
        for round in rounds {
            let keys: Vec<Key> = candidates.keys().filter(|k| round(k)).cloned().collect();
            let mut chosen = Vec::with_capacity(keys.len());
            for key in keys {
                let events = candidates.remove(&key).unwrap_or_default();
                if let Some(event) = resolve_auth_events(rules, &events, &auth) {
                    chosen.push((key, event));
                }
            }
            for (key, event) in chosen {
                resolved.insert(key.clone(), event.event_id.clone());
                auth.insert(key, event);
            }
        }
        for (key, events) in candidates {
            if let Some(event) = resolve_normal_events(rules, &events, &auth) {
                resolved.insert(key, event.event_id.clone());
            }
        }
        Ok(resolved)
    }

    fn known_pdu(&self, id: &OwnedEventId) -> Result<Arc<Pdu>> {
        self.pdu(id)?
            .map(|(_, pdu)| pdu)
            .ok_or_else(|| Error::internal(format!("state names unknown event {id}")))
    }

    /// The unconflicted state's events at the keys that authorise any of
    /// the conflicted events.
    fn unconflicted_auth<'a>(
        &self,
        rules: &AuthorizationRules,
        unconflicted: &RumaStateMap,
        conflicted: impl Iterator<Item = &'a Arc<Pdu>>,
    ) -> Result<AuthState> {
        let mut auth = AuthState::new();
        for event in conflicted {
            for key in auth_keys(rules, event) {
                if auth.contains_key(&key) {
                    continue;
                }
                if let Some(id) = unconflicted.get(&key) {
                    auth.insert(key, self.known_pdu(id)?);
                }
            }
        }
        Ok(auth)
    }
}

/// Splits states into the keys every state that has them agrees on, and
/// the others with each event any state names for them.
fn separate(states: &[RumaStateMap]) -> (RumaStateMap, HashMap<Key, BTreeSet<OwnedEventId>>) {
    let mut unconflicted = RumaStateMap::new();
    let mut conflicted: HashMap<Key, BTreeSet<OwnedEventId>> = HashMap::new();
    for state in states {
        for (key, id) in state {
            if let Some(ids) = conflicted.get_mut(key) {
                ids.insert(id.clone());
                continue;
            }
            match unconflicted.remove(key) {
                Some(current) if current != *id => {
                    conflicted.insert(key.clone(), BTreeSet::from([current, id.clone()]));
                }
                _ => {
                    unconflicted.insert(key.clone(), id.clone());
                }
            }
        }
    }
    (unconflicted, conflicted)
}

/// Deepest first; equal depths by the SHA-1 of the event id, in hex.
fn order(mut events: Vec<Arc<Pdu>>) -> Vec<Arc<Pdu>> {
    events.sort_by_cached_key(|e| {
        let digest = Sha1::digest(e.event_id.as_str().as_bytes());
        (std::cmp::Reverse(e.depth), hex::encode(digest))
    });
    events
}

fn auth_keys(rules: &AuthorizationRules, event: &Pdu) -> Vec<Key> {
    ruma::state_res::auth_types_for_event(
        &event.kind,
        &event.sender,
        event.state_key.as_deref(),
        &event.content,
        rules,
    )
    // Content that does not parse needs no other auth events than the
    // power levels, the sender's membership and the create event.
    .unwrap_or_default()
}

fn allowed(rules: &AuthorizationRules, event: &Pdu, auth: &AuthState) -> bool {
    if event.kind == TimelineEventType::RoomCreate {
        return true;
    }
    let fetch =
        |kind: &StateEventType, key: &str| auth.get(&(kind.clone(), key.to_owned())).cloned();
    ruma::state_res::check_state_dependent_auth_rules(rules, event, fetch).is_ok()
}

/// From the shallowest candidate on, each in turn stands in the state while
/// the next is checked; the walk stops at the first one refused, and the
/// last one standing wins.
fn resolve_auth_events(
    rules: &AuthorizationRules,
    ordered: &[Arc<Pdu>],
    auth: &AuthState,
) -> Option<Arc<Pdu>> {
    let mut walk = ordered.iter().rev();
    let mut standing = walk.next()?;
    let mut state: AuthState = ordered
        .iter()
        .flat_map(|e| auth_keys(rules, e))
        .filter_map(|key| auth.get(&key).map(|e| (key, e.clone())))
        .collect();
    for next in walk {
        let key = (
            StateEventType::from(standing.kind.to_string()),
            standing.state_key.clone().unwrap_or_default(),
        );
        state.insert(key, standing.clone());
        if !allowed(rules, next, &state) {
            break;
        }
        standing = next;
    }
    Some(standing.clone())
}

/// The deepest candidate the state so far allows, else the shallowest.
fn resolve_normal_events(
    rules: &AuthorizationRules,
    ordered: &[Arc<Pdu>],
    auth: &AuthState,
) -> Option<Arc<Pdu>> {
    ordered
        .iter()
        .find(|e| allowed(rules, e, auth))
        .or(ordered.last())
        .cloned()
}
