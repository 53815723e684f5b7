//! Presence (`/presence/{userId}/status`, `/sync?set_presence=`), kept in
//! memory: it is advisory and starts as offline after a restart. Each change
//! takes a position in the sync stream so that `/sync` can tell who changed
//! since a token, and wakes the long-polls of the people who see it.
//!
//! A user whose clients stop syncing goes offline after [`SYNC_TIMEOUT`],
//! and an online user who does nothing for [`IDLE_TIMEOUT`] becomes
//! unavailable, as in Synapse.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use matrixos_storage::Batch;
use parking_lot::Mutex;
use ruma::{OwnedUserId, UserId};
use serde_json::{json, Value};

use super::Store;
use crate::error::Result;
use crate::services::Wake;

/// Without a sync or presence update for this long, a user is offline.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Online but inactive for this long: unavailable.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

struct Entry {
    presence: String,
    status_msg: Option<String>,
    /// Last activity (a message sent, presence set explicitly).
    active: Instant,
    /// Last sign of a client (any sync or presence call).
    seen: Instant,
    /// Stream position of the last change.
    position: u64,
    /// A user of another server: their server tells of every change, so
    /// no timeout applies here.
    remote: bool,
}

pub struct Presence {
    store: Store,
    states: Mutex<HashMap<OwnedUserId, Entry>>,
}

/// What `GET /presence/{userId}/status` answers, and `m.presence` carries.
pub struct PresenceState {
    pub presence: String,
    pub status_msg: Option<String>,
    pub last_active_ago_ms: Option<u64>,
}

impl PresenceState {
    pub fn content(&self) -> Value {
        let mut out = json!({
            "presence": self.presence,
            "currently_active": self.presence == "online"
                && self.last_active_ago_ms.is_some_and(|ago| ago < 60_000),
        });
        if let Some(ago) = self.last_active_ago_ms {
            out["last_active_ago"] = json!(ago);
        }
        if let Some(msg) = &self.status_msg {
            out["status_msg"] = json!(msg);
        }
        out
    }
}

/// What a presence call changes.
pub enum Update<'a> {
    /// `PUT /presence/…/status`: presence and status message, and activity.
    Explicit(&'a str, Option<String>),
    /// `/sync?set_presence=`: presence only; the status message stays.
    FromSync(&'a str),
}

impl Presence {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            states: Mutex::default(),
        }
    }

    /// Applies an update; a real change takes a stream position (and wakes
    /// waiting syncs) before this returns. True if it changed anything.
    pub async fn update(&self, user: &UserId, update: Update<'_>) -> Result<bool> {
        let now = Instant::now();
        let (presence, status_msg, explicit) = match update {
            Update::Explicit(p, msg) => (p, Some(msg), true),
            Update::FromSync(p) => (p, None, false),
        };
        let mut batch = Batch::new();
        let position = {
            let mut states = self.states.lock();
            let entry = states.entry(user.to_owned()).or_insert_with(|| Entry {
                presence: "offline".into(),
                status_msg: None,
                active: now,
                seen: now,
                position: 0,
                remote: false,
            });
            entry.seen = now;
            let new_msg = status_msg.unwrap_or_else(|| entry.status_msg.clone());
            let woke = entry.presence != "online" && presence == "online";
            if explicit || woke {
                entry.active = now;
            }
            if entry.presence == presence && entry.status_msg == new_msg && entry.position > 0 {
                return Ok(false);
            }
            let position = self.store.db.reserve_count(&mut batch);
            entry.presence = presence.to_owned();
            entry.status_msg = new_msg;
            entry.position = position.get();
            position
        };
        let wake = Wake::sharers(&self.store.db, user)?;
        self.store.commit(batch, vec![position], wake).await?;
        Ok(true)
    }

    /// Takes the presence another server gives for one of its users.
    pub async fn set_remote(&self, user: &UserId, state: PresenceState) -> Result<()> {
        let now = Instant::now();
        let ago = Duration::from_millis(state.last_active_ago_ms.unwrap_or(0));
        let active = now.checked_sub(ago).unwrap_or(now);
        let mut batch = Batch::new();
        let position = self.store.db.reserve_count(&mut batch);
        self.states.lock().insert(
            user.to_owned(),
            Entry {
                presence: state.presence,
                status_msg: state.status_msg,
                active,
                seen: now,
                position: position.get(),
                remote: true,
            },
        );
        let wake = Wake::sharers(&self.store.db, user)?;
        self.store.commit(batch, vec![position], wake).await
    }

    /// Notes a sign of life from one of the user's clients.
    pub fn note_seen(&self, user: &UserId) {
        if let Some(entry) = self.states.lock().get_mut(user) {
            entry.seen = Instant::now();
        }
    }

    /// Counts a message sent as activity.
    pub fn note_active(&self, user: &UserId) {
        if let Some(entry) = self.states.lock().get_mut(user) {
            entry.active = Instant::now();
        }
    }

    pub fn get(&self, user: &UserId) -> PresenceState {
        match self.states.lock().get(user) {
            Some(e) => Self::state_of(e),
            None => PresenceState {
                presence: "offline".into(),
                status_msg: None,
                last_active_ago_ms: None,
            },
        }
    }

    fn state_of(e: &Entry) -> PresenceState {
        PresenceState {
            presence: e.presence.clone(),
            status_msg: e.status_msg.clone(),
            last_active_ago_ms: Some(e.active.elapsed().as_millis() as u64),
        }
    }

    /// The `m.presence` content of a user whose presence is known.
    pub fn known(&self, user: &UserId) -> Option<Value> {
        self.states
            .lock()
            .get(user)
            .map(|e| Self::state_of(e).content())
    }

    /// Users whose presence changed after `since` up to `next` (every user
    /// with a known presence for 0), with their `m.presence` content.
    pub fn changed(&self, since: u64, next: u64) -> Vec<(OwnedUserId, Value)> {
        self.states
            .lock()
            .iter()
            .filter(|(_, e)| e.position > since && e.position <= next)
            .map(|(u, e)| (u.clone(), Self::state_of(e).content()))
            .collect()
    }

    /// Applies the timeouts: silent clients go offline, idle users
    /// unavailable. Each change takes a stream position. Answers the local
    /// users whose presence changed.
    pub async fn expire(&self) -> Result<Vec<OwnedUserId>> {
        let now = Instant::now();
        let mut batch = Batch::new();
        let mut positions = Vec::new();
        let mut changed = Vec::new();
        {
            let mut states = self.states.lock();
            for (user, entry) in states.iter_mut().filter(|(_, e)| !e.remote) {
                let next = if entry.presence != "offline"
                    && now.duration_since(entry.seen) >= SYNC_TIMEOUT
                {
                    "offline"
                } else if entry.presence == "online"
                    && now.duration_since(entry.active) >= IDLE_TIMEOUT
                {
                    "unavailable"
                } else {
                    continue;
                };
                let position = self.store.db.reserve_count(&mut batch);
                entry.presence = next.to_owned();
                entry.position = position.get();
                positions.push(position);
                changed.push(user.clone());
            }
        }
        if positions.is_empty() {
            return Ok(changed);
        }
        let mut wake = Wake::none();
        for user in &changed {
            wake.merge(Wake::sharers(&self.store.db, user)?);
        }
        self.store.commit(batch, positions, wake).await?;
        Ok(changed)
    }
}
