//! Auth chains: every event reachable from an event through `auth_events`,
//! by short id. An event's auth events never change, so its chain is
//! computed once, kept in memory and stored; state resolution takes the
//! auth difference and room version 12's conflicted state subgraph from
//! them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use matrixos_storage::{tables, Batch};
use parking_lot::Mutex;

use super::Rooms;
use crate::error::{Error, Result};
use crate::two_gen::TwoGen;

/// Sorted short ids of every event in an auth chain.
pub type AuthChain = Arc<Vec<u64>>;

/// Cached chains; emptied when it grows past this.
const MAX_CACHED_CHAINS: usize = 50_000;

pub struct AuthChains {
    cache: Mutex<TwoGen<u64, AuthChain>>,
}

impl Default for AuthChains {
    fn default() -> Self {
        Self {
            cache: Mutex::new(TwoGen::new(MAX_CACHED_CHAINS)),
        }
    }
}

impl AuthChains {
    fn get(&self, short: u64) -> Option<AuthChain> {
        self.cache.lock().get(&short).cloned()
    }

    fn put(&self, short: u64, chain: AuthChain) {
        self.cache.lock().insert(short, chain);
    }
}

impl Rooms {
    /// The short ids of an event's auth events that this server has.
    fn auth_event_shorts(&self, short: u64) -> Result<Vec<u64>> {
        let pdu = self.pdu_by_short(short)?;
        let mut out = Vec::with_capacity(pdu.auth_events.len());
        for id in &pdu.auth_events {
            if let Some(s) = self.short_event(id)? {
                out.push(s);
            }
        }
        Ok(out)
    }

    fn known_chain(&self, short: u64) -> Result<Option<AuthChain>> {
        if let Some(chain) = self.auth_chains.get(short) {
            return Ok(Some(chain));
        }
        match tables::AUTH_CHAINS.get(&self.store.db, &short)? {
            Some(chain) => {
                let chain = Arc::new(chain);
                self.auth_chains.put(short, chain.clone());
                Ok(Some(chain))
            }
            None => Ok(None),
        }
    }

    /// The auth chain of an event (not including the event). Chains
    /// computed here are added to `batch`, when one is given, to be stored.
    pub fn auth_chain(&self, short: u64, mut batch: Option<&mut Batch>) -> Result<AuthChain> {
        if let Some(chain) = self.known_chain(short)? {
            return Ok(chain);
        }
        // Depth-first, children before parents, without recursion: a chain
        // can be thousands of events deep.
        let mut stack = vec![(short, false)];
        let mut done: HashMap<u64, AuthChain> = HashMap::new();
        while let Some((event, expanded)) = stack.pop() {
            if done.contains_key(&event) {
                continue;
            }
            if !expanded {
                if let Some(chain) = self.known_chain(event)? {
                    done.insert(event, chain);
                    continue;
                }
                stack.push((event, true));
                for parent in self.auth_event_shorts(event)? {
                    if !done.contains_key(&parent) {
                        stack.push((parent, false));
                    }
                }
                continue;
            }
            let mut chain = HashSet::new();
            for parent in self.auth_event_shorts(event)? {
                chain.insert(parent);
                if let Some(parent_chain) = done.get(&parent) {
                    chain.extend(parent_chain.iter().copied());
                }
            }
            let mut chain: Vec<u64> = chain.into_iter().collect();
            chain.sort_unstable();
            let chain = Arc::new(chain);
            if let Some(batch) = batch.as_deref_mut() {
                tables::AUTH_CHAINS.put(batch, &event, &chain);
            }
            self.auth_chains.put(event, chain.clone());
            done.insert(event, chain);
        }
        done.remove(&short)
            .ok_or_else(|| Error::internal("auth chain not computed"))
    }

    /// Room version 12's conflicted state subgraph: every event on an
    /// `auth_events` path from one conflicted event to another (a path of
    /// at least one step), the conflicted events at its ends included.
    pub fn conflicted_subgraph(&self, conflicted: &HashSet<u64>) -> Result<HashSet<u64>> {
        let mut ancestors = HashSet::new();
        for event in conflicted {
            ancestors.extend(self.auth_chain(*event, None)?.iter().copied());
        }
        let mut subgraph = HashSet::new();
        for event in ancestors.iter().chain(conflicted.iter()) {
            let reaches_conflicted = self
                .auth_chain(*event, None)?
                .iter()
                .any(|a| conflicted.contains(a));
            let is_conflicted = conflicted.contains(event);
            let below_conflicted = ancestors.contains(event);
            if (below_conflicted && (is_conflicted || reaches_conflicted))
                || (is_conflicted && reaches_conflicted)
            {
                subgraph.insert(*event);
            }
        }
        Ok(subgraph)
    }
}
