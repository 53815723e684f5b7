//! State resolution: the state of a room where its DAG has forked, as the
//! spec's algorithm v2 (and v2.1 for room version 12) gives it, through
//! ruma's implementation (version 1 rooms: `resolve_v1`). This side supplies the events, the auth
//! difference and the conflicted state subgraph from the auth-chain index.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use matrixos_storage::Batch;
use ruma::events::StateEventType;
use ruma::room_version_rules::{RoomVersionRules, StateResolutionV2Rules, StateResolutionVersion};
use ruma::state_res::utils::event_id_set::EventIdSet;
use ruma::{EventId, OwnedEventId};

use super::state::StateMap;
use super::{Pdu, Rooms};
use crate::error::{Error, Result};

type RumaStateMap<T = OwnedEventId> = ruma::state_res::StateMap<T>;

impl Rooms {
    /// The resolution of several states of one room. State keys the result
    /// names for the first time are allocated in `batch`.
    pub(crate) fn resolve_states(
        &self,
        rules: &RoomVersionRules,
        states: &[Arc<StateMap>],
        batch: &mut Batch,
    ) -> Result<StateMap> {
        let mut distinct: Vec<&Arc<StateMap>> = Vec::new();
        for state in states {
            if !distinct.iter().any(|d| d == &state) {
                distinct.push(state);
            }
        }
        match distinct.as_slice() {
            [] => return Ok(StateMap::new()),
            [only] => return Ok((***only).clone()),
            _ => {}
        }
        let maps = distinct
            .iter()
            .map(|s| self.to_ruma_state(s))
            .collect::<Result<Vec<_>>>()?;
        let resolved = match &rules.state_res {
            StateResolutionVersion::V1 => self.resolve_v1(&rules.authorization, &maps)?,
            StateResolutionVersion::V2(res_rules) => {
                self.resolve_v2(rules, res_rules, &distinct, &maps)?
            }
            _ => {
                return Err(Error::unsupported_room_version(
                    "Unknown state resolution algorithm",
                ))
            }
        };
        self.state_map_of(&resolved, batch)
    }

    /// Algorithm v2 (v2.1 from room version 12), through ruma.
    fn resolve_v2(
        &self,
        rules: &RoomVersionRules,
        res_rules: &StateResolutionV2Rules,
        distinct: &[&Arc<StateMap>],
        maps: &[RumaStateMap],
    ) -> Result<RumaStateMap> {
        let auth_difference = self.auth_difference(distinct)?;
        let failure: RefCell<Option<Error>> = RefCell::new(None);
        let fetch_event = |id: &EventId| -> Option<Arc<Pdu>> {
            match self.pdu(id) {
                Ok(found) => found.map(|(_, pdu)| pdu),
                Err(e) => {
                    failure.borrow_mut().get_or_insert(e);
                    None
                }
            }
        };
        let fetch_subgraph = |conflicted: &RumaStateMap<Vec<OwnedEventId>>| {
            let shorts = conflicted
                .values()
                .flatten()
                .filter_map(|id| self.short_event(id).transpose())
                .collect::<Result<HashSet<u64>>>();
            let result = shorts
                .and_then(|shorts| self.conflicted_subgraph(&shorts))
                .and_then(|subgraph| self.event_ids(subgraph));
            match result {
                Ok(ids) => Some(ids.into_iter().collect::<EventIdSet<_>>()),
                Err(e) => {
                    failure.borrow_mut().get_or_insert(e);
                    None
                }
            }
        };
        let resolved = ruma::state_res::resolve(
            &rules.authorization,
            res_rules,
            maps,
            auth_difference,
            fetch_event,
            fetch_subgraph,
        );
        if let Some(e) = failure.into_inner() {
            return Err(e);
        }
        resolved.map_err(|e| Error::internal(format!("state resolution failed: {e}")))
    }

    /// One state in ruma's form: (type, state key) → event id.
    fn to_ruma_state(&self, state: &StateMap) -> Result<RumaStateMap> {
        let mut out = HashMap::with_capacity(state.len());
        for (key, event) in state {
            let (kind, state_key) = self.state.key_of(*key)?;
            let pdu = self.pdu_by_short(*event)?;
            out.insert(
                (StateEventType::from(kind), state_key),
                pdu.event_id.clone(),
            );
        }
        Ok(out)
    }

    fn state_map_of(&self, state: &RumaStateMap, batch: &mut Batch) -> Result<StateMap> {
        let mut out = StateMap::new();
        for ((kind, state_key), id) in state {
            let key = self
                .state
                .short_key_or_create(batch, &kind.to_string(), state_key)?;
            let event = self
                .short_event(id)?
                .ok_or_else(|| Error::internal(format!("resolved to unknown event {id}")))?;
            out.insert(key, event);
        }
        Ok(out)
    }

    fn event_ids(&self, shorts: impl IntoIterator<Item = u64>) -> Result<Vec<OwnedEventId>> {
        shorts
            .into_iter()
            .map(|s| Ok(self.pdu_by_short(s)?.event_id.clone()))
            .collect()
    }

    /// The auth chains ruma asks for, cut to the auth difference: events
    /// in every state's full chain cancel out, so only the difference is
    /// turned into event ids (each set is its state's chain ∩ difference,
    /// whose union minus intersection is the difference itself).
    fn auth_difference(&self, states: &[&Arc<StateMap>]) -> Result<Vec<EventIdSet<OwnedEventId>>> {
        let mut chains: Vec<HashSet<u64>> = Vec::with_capacity(states.len());
        for state in states {
            let mut chain = HashSet::new();
            for event in state.values() {
                chain.extend(self.auth_chain(*event, None)?.iter().copied());
            }
            chains.push(chain);
        }
        let union: HashSet<u64> = chains.iter().flatten().copied().collect();
        let difference: HashSet<u64> = union
            .into_iter()
            .filter(|e| !chains.iter().all(|c| c.contains(e)))
            .collect();
        let ids: HashMap<u64, OwnedEventId> = difference
            .iter()
            .map(|s| Ok((*s, self.pdu_by_short(*s)?.event_id.clone())))
            .collect::<Result<_>>()?;
        Ok(chains
            .iter()
            .map(|chain| {
                chain
                    .iter()
                    .filter_map(|s| ids.get(s).cloned())
                    .collect::<EventIdSet<_>>()
            })
            .collect())
    }
}
