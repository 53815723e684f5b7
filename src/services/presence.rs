//! Presence as set by clients (`/presence/{userId}/status`), kept in memory:
//! it is advisory and resets to offline on restart, like Synapse's after a
//! timeout.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;
use ruma::{OwnedUserId, UserId};

/// presence, status message, when it was set.
type Entry = (String, Option<String>, Instant);

#[derive(Default)]
pub struct Presence {
    states: Mutex<HashMap<OwnedUserId, Entry>>,
}

/// What `GET /presence/{userId}/status` answers.
pub struct PresenceState {
    pub presence: String,
    pub status_msg: Option<String>,
    pub last_active_ago_ms: Option<u64>,
}

impl Presence {
    pub fn set(&self, user: &UserId, presence: &str, status_msg: Option<String>) {
        self.states.lock().insert(
            user.to_owned(),
            (presence.to_owned(), status_msg, Instant::now()),
        );
    }

    pub fn get(&self, user: &UserId) -> PresenceState {
        match self.states.lock().get(user) {
            Some((presence, msg, at)) => PresenceState {
                presence: presence.clone(),
                status_msg: msg.clone(),
                last_active_ago_ms: Some(at.elapsed().as_millis() as u64),
            },
            None => PresenceState {
                presence: "offline".into(),
                status_msg: None,
                last_active_ago_ms: None,
            },
        }
    }
}
