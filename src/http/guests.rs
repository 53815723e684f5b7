//! What a guest account may call: the endpoints the spec opens to guests
//! (reading rooms, joining and leaving, sending messages, their devices,
//! profile and keys) and those Synapse opens to them too (filters, push
//! rules, account data, typing, presence, media downloads). Any other
//! endpoint needing an access token answers a guest's token with 403
//! `M_GUEST_ACCESS_FORBIDDEN`.

use http::Method;

use super::auth::Caller;
use crate::error::{Error, Result};

/// Method and path (after `/_matrix/client/<version>/`); `*` is one
/// segment of any value.
#[rustfmt::skip]
const OPEN_TO_GUESTS: &[(Method, &str)] = &[
    (Method::GET, "sync"),
    (Method::GET, "events"),
    (Method::GET, "initialSync"),
    (Method::GET, "account/whoami"),
    (Method::GET, "joined_rooms"),
    (Method::GET, "capabilities"),
    (Method::GET, "voip/turnServer"),
    (Method::POST, "logout"),
    (Method::GET, "rooms/*/state"),
    (Method::GET, "rooms/*/state/*"),
    (Method::GET, "rooms/*/state/*/*"),
    (Method::GET, "rooms/*/context/*"),
    (Method::GET, "rooms/*/event/*"),
    (Method::GET, "rooms/*/messages"),
    (Method::GET, "rooms/*/members"),
    (Method::GET, "rooms/*/joined_members"),
    (Method::GET, "rooms/*/initialSync"),
    (Method::POST, "org.matrix.msc2753/peek_room"),
    (Method::POST, "org.matrix.msc2753/rooms/*/unpeek"),
    (Method::POST, "rooms/*/join"),
    (Method::POST, "join/*"),
    (Method::POST, "rooms/*/leave"),
    (Method::PUT, "rooms/*/send/*/*"),
    (Method::PUT, "rooms/*/typing/*"),
    (Method::PUT, "sendToDevice/*/*"),
    (Method::GET, "profile/*"),
    (Method::GET, "profile/*/*"),
    (Method::PUT, "profile/*/displayname"),
    (Method::PUT, "profile/*/avatar_url"),
    (Method::GET, "presence/*/status"),
    (Method::PUT, "presence/*/status"),
    (Method::GET, "devices"),
    (Method::GET, "devices/*"),
    (Method::PUT, "devices/*"),
    (Method::POST, "keys/upload"),
    (Method::POST, "keys/query"),
    (Method::POST, "keys/claim"),
    (Method::GET, "keys/changes"),
    (Method::GET, "pushrules/*"),
    (Method::GET, "pushrules/*/*"),
    (Method::POST, "user/*/filter"),
    (Method::GET, "user/*/filter/*"),
    (Method::GET, "user/*/account_data/*"),
    (Method::PUT, "user/*/account_data/*"),
    (Method::GET, "user/*/rooms/*/account_data/*"),
    (Method::PUT, "user/*/rooms/*/account_data/*"),
    (Method::GET, "media/config"),
    (Method::GET, "media/download/*/*"),
    (Method::GET, "media/download/*/*/*"),
    (Method::GET, "media/thumbnail/*/*"),
];

/// Refuses a guest's call to an endpoint not open to guests.
pub fn admit(caller: &Caller, method: &Method, path: &str) -> Result<()> {
    if !caller.guest || open_to_guests(method, path) {
        return Ok(());
    }
    tracing::info!(user = %caller.user_id, %method, path, "guest refused");
    Err(Error::guest_access_forbidden())
}

fn open_to_guests(method: &Method, path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/_matrix/client/") else {
        return false;
    };
    // The version segment: r0, v1, v3, unstable.
    let Some((_, rest)) = rest.split_once('/') else {
        return false;
    };
    let asked: Vec<&str> = rest.split('/').collect();
    OPEN_TO_GUESTS.iter().any(|(m, pattern)| {
        let pattern: Vec<&str> = pattern.split('/').collect();
        m == method
            && pattern.len() == asked.len()
            && pattern.iter().zip(&asked).all(|(p, a)| *p == "*" || p == a)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guests_reach_only_what_is_open_to_them() {
        let open = [
            (Method::GET, "/_matrix/client/v3/sync"),
            (Method::GET, "/_matrix/client/r0/rooms/!r:x/messages"),
            (
                Method::PUT,
                "/_matrix/client/v3/rooms/!r:x/send/m.room.message/t1",
            ),
            (Method::POST, "/_matrix/client/v3/join/%23a:x"),
            (Method::GET, "/_matrix/client/v3/pushrules/"),
            (Method::GET, "/_matrix/client/v1/media/download/x/abc"),
            (
                Method::GET,
                "/_matrix/client/v3/rooms/!r:x/state/m.room.name/",
            ),
        ];
        for (method, path) in open {
            assert!(open_to_guests(&method, path), "{method} {path}");
        }
        let closed = [
            (Method::POST, "/_matrix/client/v3/createRoom"),
            (Method::POST, "/_matrix/client/v3/rooms/!r:x/invite"),
            (Method::POST, "/_matrix/client/v1/media/upload"),
            (Method::POST, "/_matrix/media/v3/upload"),
            (Method::GET, "/_matrix/client/v3/sync/extra"),
            (Method::DELETE, "/_matrix/client/v3/devices/D"),
            (
                Method::POST,
                "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync",
            ),
            (Method::GET, "/_matrix/client"),
        ];
        for (method, path) in closed {
            assert!(!open_to_guests(&method, path), "{method} {path}");
        }
    }
}
