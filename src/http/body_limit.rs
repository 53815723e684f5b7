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
    /// push rules, filters, profile fields, app data.
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

/// The client-server API's path prefixes, current and legacy.
const CLIENT_PREFIXES: [&str; 2] = ["/_matrix/client/v3", "/_matrix/client/r0"];

/// A route template with every parameter written `{}`, so that the table
/// below holds whatever names the routes give their parameters.
fn unnamed_params(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        out.push_str("{}");
        rest = rest[open..]
            .find('}')
            .map_or("", |close| &rest[open + close + 1..]);
    }
    out.push_str(rest);
    out
}

/// Whether a path (or route template) is a media upload, whose body is the
/// file: `/_matrix/media/{version}/upload`, `…/upload/{serverName}/{mediaId}`
/// filling a reserved id, and their unstable forms.
pub fn is_media_upload(path: &str) -> bool {
    let mut segments = [""; 6];
    let mut count = 0;
    for (slot, segment) in segments.iter_mut().zip(path.split('/')) {
        *slot = segment;
        count += 1;
    }
    matches!(
        &segments[..count],
        ["", "_matrix", "media", "unstable", _, "upload"]
            | ["", "_matrix", "media", _, "upload", ..]
    )
}

impl BodyClass {
    /// The class of the endpoint whose route template is `route` (as
    /// axum's `MatchedPath` gives it); anything not listed is `Small`.
    pub fn of(route: &str) -> Self {
        if is_media_upload(route) {
            return Self::Media;
        }
        if route.starts_with("/_matrixos/app-data/") || route == "/_matrixos/v1/files/content" {
            return Self::Document;
        }
        if let Some(endpoint) = route.strip_prefix("/_matrix/federation/") {
            return Self::of_federation(&unnamed_params(endpoint));
        }
        let Some(endpoint) = CLIENT_PREFIXES.iter().find_map(|p| route.strip_prefix(p)) else {
            return Self::Small;
        };
        match unnamed_params(endpoint).as_str() {
            "/rooms/{}/send/{}/{}"
            | "/rooms/{}/send/{}"
            | "/rooms/{}/state/{}"
            | "/rooms/{}/state/{}/"
            | "/rooms/{}/state/{}/{}"
            | "/rooms/{}/redact/{}/{}"
            | "/pushrules/{}/{}/{}"
            | "/pushrules/{}/{}/{}/{}"
            | "/pushrules/global/{}/{}"
            | "/pushrules/global/{}/{}/actions"
            | "/user/{}/filter"
            | "/profile/{}/{}"
            | "/delete_devices" => Self::Document,
            "/keys/upload"
            | "/keys/query"
            | "/keys/claim"
            | "/keys/device_signing/upload"
            | "/keys/signatures/upload"
            | "/sendToDevice/{}/{}"
            | "/room_keys/version"
            | "/room_keys/version/{}"
            | "/room_keys/keys"
            | "/room_keys/keys/{}"
            | "/room_keys/keys/{}/{}"
            | "/user/{}/account_data/{}"
            | "/user/{}/rooms/{}/account_data/{}"
            | "/createRoom" => Self::Bulk,
            _ => Self::Small,
        }
    }

    /// The class of a server-server endpoint (path after
    /// `/_matrix/federation/`): a transaction holds up to 50 PDUs and 100
    /// EDUs; an invite carries stripped state as PDUs.
    fn of_federation(endpoint: &str) -> Self {
        match endpoint {
            "v1/send/{}" | "v2/invite/{}/{}" | "v1/invite/{}/{}" | "v1/user/keys/query"
            | "v1/user/keys/claim" => Self::Bulk,
            "v1/send_join/{}/{}"
            | "v2/send_join/{}/{}"
            | "v1/send_leave/{}/{}"
            | "v2/send_leave/{}/{}"
            | "v1/send_knock/{}/{}" => Self::Document,
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
        let v3 = |p: &str| BodyClass::of(&format!("/_matrix/client/v3{p}"));
        assert_eq!(v3("/login"), BodyClass::Small);
        assert_eq!(v3("/register"), BodyClass::Small);
        assert_eq!(v3("/rooms/{room}/join"), BodyClass::Small);
        assert_eq!(v3("/rooms/{room}/send/{kind}/{txn}"), BodyClass::Document);
        assert_eq!(v3("/rooms/{room}/state/{kind}/{key}"), BodyClass::Document);
        assert_eq!(
            BodyClass::of("/_matrix/client/r0/rooms/{room_id}/send/{event_type}/{txn_id}"),
            BodyClass::Document
        );
        assert_eq!(v3("/keys/upload"), BodyClass::Bulk);
        assert_eq!(v3("/sendToDevice/{kind}/{txn}"), BodyClass::Bulk);
        assert_eq!(v3("/createRoom"), BodyClass::Bulk);
        assert_eq!(BodyClass::of("/_matrix/media/v3/upload"), BodyClass::Media);
        assert_eq!(
            BodyClass::of("/_synapse/admin/v1/register"),
            BodyClass::Small
        );
        assert_eq!(BodyClass::of("/no/such/route"), BodyClass::Small);
        let federation = |p: &str| BodyClass::of(&format!("/_matrix/federation{p}"));
        assert_eq!(federation("/v1/send/{txn_id}"), BodyClass::Bulk);
        assert_eq!(federation("/v2/invite/{room}/{event}"), BodyClass::Bulk);
        assert_eq!(
            federation("/v2/send_join/{room}/{event}"),
            BodyClass::Document
        );
        assert_eq!(federation("/v1/make_join/{room}/{user}"), BodyClass::Small);
    }

    #[test]
    fn templates_and_uploads_are_read_segment_by_segment() {
        assert_eq!(
            unnamed_params("/rooms/{room}/send/{a}/{b}"),
            "/rooms/{}/send/{}/{}"
        );
        assert_eq!(unnamed_params("/login"), "/login");
        assert_eq!(unnamed_params("/x/{open"), "/x/{}");
        assert!(is_media_upload("/_matrix/media/v3/upload"));
        assert!(is_media_upload("/_matrix/media/v3/upload/{server}/{media}"));
        assert!(is_media_upload(
            "/_matrix/media/unstable/org.example/upload"
        ));
        assert!(!is_media_upload("/_matrix/media/v3/download/a/b"));
        assert!(!is_media_upload("/_matrix/media"));
        assert!(!is_media_upload(""));
    }

    #[test]
    fn no_class_exceeds_the_server_limit() {
        assert_eq!(BodyClass::Small.limit(50 << 20), 16 << 10);
        assert_eq!(BodyClass::Media.limit(50 << 20), 50 << 20);
        assert_eq!(BodyClass::Bulk.limit(1024), 1024);
        assert!(BodyClass::Media.streams() && !BodyClass::Bulk.streams());
    }
}
