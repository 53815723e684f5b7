//! User-interactive authentication: sessions that collect completed stages
//! until one of the endpoint's flows is satisfied.

use std::time::{Duration, Instant};

use http::StatusCode;
use parking_lot::Mutex;
use ruma::UserId;
use serde_json::{json, Value};

use super::Services;
use crate::bounded_map::BoundedMap;
use crate::error::{Error, Result};
use crate::random::random_string;

/// Sessions and nonces older than this are forgotten.
const SESSION_TTL: Duration = Duration::from_secs(15 * 60);
/// Most sessions (and, apart, most nonces) remembered at once. Anyone can
/// start a session (`POST /register` without `auth`) or ask for a nonce, so
/// past this the oldest is forgotten: a flood costs a bounded amount of
/// memory, and at worst makes someone start their registration again.
const MAX_SESSIONS: usize = 10_000;

pub struct Uia {
    sessions: Mutex<BoundedMap<String, Session>>,
    nonces: Mutex<BoundedMap<String, ()>>,
}

impl Default for Uia {
    fn default() -> Self {
        Self {
            sessions: Mutex::new(BoundedMap::new(MAX_SESSIONS)),
            nonces: Mutex::new(BoundedMap::new(MAX_SESSIONS)),
        }
    }
}

struct Session {
    completed: Vec<String>,
}

fn challenge(
    flows: &[Vec<&str>],
    session: &str,
    completed: &[String],
    failure: Option<Error>,
) -> Error {
    let flows: Vec<Value> = flows.iter().map(|f| json!({ "stages": f })).collect();
    let body = json!({
        "flows": flows,
        "params": {},
        "session": session,
        "completed": completed,
    });
    match failure {
        Some(f) => Error::new(StatusCode::UNAUTHORIZED, f.errcode, f.message).with_extra(body),
        None => Error::new(StatusCode::UNAUTHORIZED, "", "").with_extra(body),
    }
}

impl Uia {
    fn new_session(&self) -> String {
        let id = random_string(24);
        let now = Instant::now();
        let mut sessions = self.sessions.lock();
        sessions.expire(now, SESSION_TTL);
        sessions.insert(
            id.clone(),
            Session {
                completed: Vec::new(),
            },
            now,
        );
        id
    }

    /// Whether `id` names a live session.
    fn has_session(&self, id: &str) -> bool {
        let mut sessions = self.sessions.lock();
        sessions.expire(Instant::now(), SESSION_TTL);
        sessions.get(id).is_some()
    }
}

/// A stage's credentials lack `field` (answered inside the challenge, as
/// Synapse does, so the client can try the stage again).
fn missing(field: &str) -> Error {
    Error::new(
        StatusCode::UNAUTHORIZED,
        "M_MISSING_PARAM",
        format!("Missing '{field}'"),
    )
}

/// Checks one stage's credentials.
async fn verify_stage(
    services: &Services,
    stage: &str,
    auth: &Value,
    user: Option<&UserId>,
) -> Result<()> {
    match stage {
        "m.login.dummy" => Ok(()),
        "m.login.registration_token" => {
            let Some(given) = auth.get("token").and_then(Value::as_str) else {
                return Err(missing("token"));
            };
            match &services.config.registration_token {
                Some(expected) if expected == given => Ok(()),
                _ => Err(Error::new(
                    StatusCode::UNAUTHORIZED,
                    "M_FORBIDDEN",
                    "Invalid registration token",
                )),
            }
        }
        "m.login.password" => {
            let Some(user) = user else {
                return Err(Error::forbidden("Password authentication needs a user"));
            };
            let named = auth
                .get("identifier")
                .and_then(|i| i.get("user"))
                .or_else(|| auth.get("user"))
                .and_then(Value::as_str);
            if let Some(named) = named {
                let matches = named == user.as_str() || named == user.localpart();
                if !matches {
                    return Err(Error::forbidden("Authenticated user does not match"));
                }
            }
            let Some(password) = auth.get("password").and_then(Value::as_str) else {
                return Err(missing("password"));
            };
            if services.accounts.check_password(user, password).await? {
                Ok(())
            } else {
                Err(Error::new(
                    StatusCode::UNAUTHORIZED,
                    "M_FORBIDDEN",
                    "Invalid password",
                ))
            }
        }
        other => Err(Error::new(
            StatusCode::BAD_REQUEST,
            "M_UNRECOGNIZED",
            format!("Unknown auth stage {other}"),
        )),
    }
}

/// Requires the user's password (the one flow sensitive account actions use).
pub async fn require_password(
    services: &Services,
    auth: Option<&Value>,
    user: &UserId,
) -> Result<()> {
    require(services, auth, &[vec!["m.login.password"]], Some(user)).await
}

/// Requires one of `flows` to be complete for this request's `auth` dict,
/// as the client sent it; otherwise answers the 401 challenge (with the
/// failure, if a stage failed).
pub async fn require(
    services: &Services,
    auth: Option<&Value>,
    flows: &[Vec<&str>],
    user: Option<&UserId>,
) -> Result<()> {
    let auth = auth.filter(|a| a.is_object());
    let Some(auth) = auth else {
        let session = services.uia.new_session();
        return Err(challenge(flows, &session, &[], None));
    };
    let session = match auth.get("session").and_then(Value::as_str) {
        Some(s) if services.uia.has_session(s) => s.to_owned(),
        Some(_) => {
            return Err(Error::new(
                StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                "Unknown UIA session",
            ))
        }
        None => services.uia.new_session(),
    };
    let completed = |services: &Services| {
        services
            .uia
            .sessions
            .lock()
            .get(&session)
            .map(|s| s.completed.clone())
            .unwrap_or_default()
    };
    if let Some(stage) = auth.get("type").and_then(Value::as_str) {
        let allowed = flows.iter().any(|f| f.contains(&stage));
        let result = if allowed {
            verify_stage(services, stage, auth, user).await
        } else {
            Err(Error::new(
                StatusCode::BAD_REQUEST,
                "M_UNRECOGNIZED",
                "Stage not offered",
            ))
        };
        if let Err(failure) = result {
            return Err(challenge(
                flows,
                &session,
                &completed(services),
                Some(failure),
            ));
        }
        if let Some(s) = services.uia.sessions.lock().get_mut(&session) {
            if !s.completed.iter().any(|c| c == stage) {
                s.completed.push(stage.to_owned());
            }
        }
    }
    let done = completed(services);
    if flows
        .iter()
        .any(|f| f.iter().all(|stage| done.iter().any(|d| d == stage)))
    {
        services.uia.sessions.lock().remove(&session);
        return Ok(());
    }
    Err(challenge(flows, &session, &done, None))
}

impl Uia {
    /// Remembers a nonce for shared-secret registration (single use).
    pub fn remember_nonce(&self, nonce: &str) {
        let now = Instant::now();
        let mut nonces = self.nonces.lock();
        nonces.expire(now, SESSION_TTL);
        nonces.insert(nonce.to_owned(), (), now);
    }

    /// Consumes a nonce; false if it was never issued, expired or already used.
    pub fn take_nonce(&self, nonce: &str) -> bool {
        let mut nonces = self.nonces.lock();
        nonces.expire(Instant::now(), SESSION_TTL);
        nonces.remove(nonce).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_and_nonces_are_capped() {
        let uia = Uia::default();
        let first = uia.new_session();
        for i in 0..MAX_SESSIONS + 100 {
            uia.new_session();
            uia.remember_nonce(&format!("nonce{i}"));
        }
        assert_eq!(uia.sessions.lock().len(), MAX_SESSIONS);
        assert_eq!(uia.nonces.lock().len(), MAX_SESSIONS);
        assert!(!uia.has_session(&first), "the oldest session was evicted");
        assert!(!uia.take_nonce("nonce0"), "the oldest nonce was evicted");
        let last = format!("nonce{}", MAX_SESSIONS + 99);
        assert!(uia.take_nonce(&last));
        assert!(!uia.take_nonce(&last), "a nonce is single use");
    }
}
