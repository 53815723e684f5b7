//! OpenID tokens: a user asks for one (`/user/{userId}/openid/request_token`)
//! and hands it to a third party (an integration manager, a widget host),
//! which asks this server whose it is (`/_matrix/federation/v1/openid/userinfo`).
//! A token proves only who the user is, and lives an hour; they are kept in
//! memory, bounded, and a restart ends them (the third party asks the user's
//! client for a new one, as after expiry).

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ruma::{OwnedUserId, UserId};

use crate::bounded_map::BoundedMap;

/// How long a token is good for.
pub const LIFETIME: Duration = Duration::from_secs(3600);
/// Most tokens alive at once; the oldest go first.
const MAX_TOKENS: usize = 100_000;

pub struct OpenIdTokens(Mutex<BoundedMap<String, OwnedUserId>>);

impl Default for OpenIdTokens {
    fn default() -> Self {
        Self(Mutex::new(BoundedMap::new(MAX_TOKENS)))
    }
}

impl OpenIdTokens {
    /// A new token for `user`.
    pub fn issue(&self, user: &UserId) -> String {
        let token = crate::random::random_string(32);
        self.0
            .lock()
            .insert(token.clone(), user.to_owned(), Instant::now());
        token
    }

    /// Whose token this is, if it is alive.
    pub fn user_of(&self, token: &str) -> Option<OwnedUserId> {
        let mut tokens = self.0.lock();
        tokens.expire(Instant::now(), LIFETIME);
        tokens.get(token).cloned()
    }
}
