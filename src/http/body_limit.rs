//! How large a request body each endpoint accepts.
//!
//! A body is buffered whole and parsed into a JSON tree before the handler
//! sees it, and a JSON tree takes many times the memory of its text, so no
//! endpoint may accept more than its requests can legitimately need: a few
//! KiB for logging in, one event's worth for sending one, megabytes only for
//! the bulk key endpoints, and `max_request_size` only for media uploads.
//! Every endpoint is in one class, found here from its route template.

/// The size classes, smallest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyClass {
    /// Logging in, registering, memberships, receipts, profiles, most
    /// requests: a handful of short fields.
    Small,
    /// One event or one document of similar size: events and state (an
    /// event may be 65,536 bytes, and escapes make its JSON text longer),
    /// push rules, filters, app data.
    Document,
    /// Key uploads and queries, to-device messages, key backup, account
    /// data, room creation with its initial state: bounded lists of many
    /// entries.
    Bulk,
    /// Media uploads: `max_request_size`.
    Media,
}

const SMALL: usize = 16 << 10;
const DOCUMENT: usize = 256 << 10;
const BULK: usize = 10 << 20;

const CLIENT_V3: &str = "/_matrix/client/v3";

impl BodyClass {
    /// The class of the endpoint whose route template is `route` (as
    /// axum's `MatchedPath` gives it); anything not listed is `Small`.
    pub fn of(route: &str) -> Self {
        if route == "/_matrix/media/v3/upload" {
            return Self::Media;
        }
        if route.starts_with("/_matrixos/app-data/") {
            return Self::Document;
        }
        let Some(endpoint) = route.strip_prefix(CLIENT_V3) else {
            return Self::Small;
        };
        match endpoint {
            "/rooms/{room}/send/{kind}/{txn}"
            | "/rooms/{room}/state/{kind}"
            | "/rooms/{room}/state/{kind}/"
            | "/rooms/{room}/state/{kind}/{key}"
            | "/rooms/{room}/redact/{event}/{txn}"
            | "/pushrules/{scope}/{kind}/{id}"
            | "/pushrules/{scope}/{kind}/{id}/{attr}"
            | "/user/{user}/filter"
            | "/delete_devices" => Self::Document,
            "/keys/upload"
            | "/keys/query"
            | "/keys/claim"
            | "/keys/device_signing/upload"
            | "/keys/signatures/upload"
            | "/sendToDevice/{kind}/{txn}"
            | "/room_keys/version"
            | "/room_keys/version/{version}"
            | "/room_keys/keys"
            | "/room_keys/keys/{room}"
            | "/room_keys/keys/{room}/{session}"
            | "/user/{user}/account_data/{kind}"
            | "/user/{user}/rooms/{room}/account_data/{kind}"
            | "/createRoom" => Self::Bulk,
            _ => Self::Small,
        }
    }

    /// The largest body the class accepts; never more than
    /// `max_request_size`, the server's overall limit.
    pub fn limit(self, max_request_size: usize) -> usize {
        let own = match self {
            Self::Small => SMALL,
            Self::Document => DOCUMENT,
            Self::Bulk => BULK,
            Self::Media => max_request_size,
        };
        own.min(max_request_size)
    }

    /// Whether the body may take as long as it needs while it keeps
    /// arriving (uploads of large files over slow links), rather than
    /// having one deadline for all of it.
    pub fn streams(self) -> bool {
        self == Self::Media
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_the_class_their_bodies_need() {
        let v3 = |p: &str| BodyClass::of(&format!("{CLIENT_V3}{p}"));
        assert_eq!(v3("/login"), BodyClass::Small);
        assert_eq!(v3("/register"), BodyClass::Small);
        assert_eq!(v3("/rooms/{room}/join"), BodyClass::Small);
        assert_eq!(v3("/rooms/{room}/send/{kind}/{txn}"), BodyClass::Document);
        assert_eq!(v3("/rooms/{room}/state/{kind}/{key}"), BodyClass::Document);
        assert_eq!(v3("/keys/upload"), BodyClass::Bulk);
        assert_eq!(v3("/sendToDevice/{kind}/{txn}"), BodyClass::Bulk);
        assert_eq!(v3("/createRoom"), BodyClass::Bulk);
        assert_eq!(BodyClass::of("/_matrix/media/v3/upload"), BodyClass::Media);
        assert_eq!(
            BodyClass::of("/_synapse/admin/v1/register"),
            BodyClass::Small
        );
        assert_eq!(BodyClass::of("/no/such/route"), BodyClass::Small);
    }

    #[test]
    fn no_class_exceeds_the_server_limit() {
        assert_eq!(BodyClass::Small.limit(50 << 20), 16 << 10);
        assert_eq!(BodyClass::Media.limit(50 << 20), 50 << 20);
        assert_eq!(BodyClass::Bulk.limit(1024), 1024);
        assert!(BodyClass::Media.streams() && !BodyClass::Bulk.streams());
    }
}
