//! Key codecs of the key backup: a user's versions, and the room keys in
//! each version by room and session.

use crate::keys::{read_u64, SEP};
use crate::typed::KeyCodec;

/// (user id, version): a user's backup versions, in version order.
pub struct UserVersion;

fn user_version(user: &str, version: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(user.len() + 9);
    out.extend_from_slice(user.as_bytes());
    out.push(SEP);
    out.extend_from_slice(&version.to_be_bytes());
    out
}

/// The user id and version at the start of `bytes`, and what follows.
fn read_user_version(bytes: &[u8]) -> Option<(String, u64, &[u8])> {
    let at = bytes.iter().position(|b| *b == SEP)?;
    let user = String::from_utf8(bytes[..at].to_vec()).ok()?;
    let rest = bytes.get(at + 1..)?;
    let version = read_u64(rest.get(..8)?)?;
    Some((user, version, &rest[8..]))
}

impl UserVersion {
    /// The prefix of every version of `user`.
    pub fn prefix(user: &str) -> Vec<u8> {
        crate::keys::prefix(&[user.as_bytes()])
    }
}

impl KeyCodec for UserVersion {
    type Key = (String, u64);
    type Owned = (String, u64);
    fn encode((user, version): &(String, u64)) -> Vec<u8> {
        user_version(user, *version)
    }
    fn decode(bytes: &[u8]) -> Option<(String, u64)> {
        match read_user_version(bytes)? {
            (user, version, []) => Some((user, version)),
            _ => None,
        }
    }
}

/// (user id, version, room id, session id): one backed-up room key.
pub struct BackedUpKey;

impl BackedUpKey {
    /// The prefix of the keys of a version, of one room in it, or of one
    /// session (then the whole key).
    pub fn prefix(user: &str, version: u64, room: Option<&str>, session: Option<&str>) -> Vec<u8> {
        let mut out = user_version(user, version);
        if let Some(room) = room {
            out.extend_from_slice(room.as_bytes());
            out.push(SEP);
            if let Some(session) = session {
                out.extend_from_slice(session.as_bytes());
            }
        }
        out
    }
}

impl KeyCodec for BackedUpKey {
    type Key = (String, u64, String, String);
    type Owned = (String, u64, String, String);
    fn encode((user, version, room, session): &(String, u64, String, String)) -> Vec<u8> {
        Self::prefix(user, *version, Some(room), Some(session))
    }
    fn decode(bytes: &[u8]) -> Option<(String, u64, String, String)> {
        let (user, version, rest) = read_user_version(bytes)?;
        let at = rest.iter().position(|b| *b == SEP)?;
        let room = String::from_utf8(rest[..at].to_vec()).ok()?;
        let session = String::from_utf8(rest[at + 1..].to_vec()).ok()?;
        Some((user, version, room, session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_whatever_bytes_the_version_has() {
        let version = ("@a:x".to_owned(), 0xff);
        assert_eq!(
            UserVersion::decode(&UserVersion::encode(&version)),
            Some(version)
        );
        let key = (
            "@a:x".to_owned(),
            0xffff,
            "!r:x".to_owned(),
            "sess".to_owned(),
        );
        let bytes = BackedUpKey::encode(&key);
        assert_eq!(BackedUpKey::decode(&bytes), Some(key));
        assert!(bytes.starts_with(&BackedUpKey::prefix("@a:x", 0xffff, Some("!r:x"), None)));
        assert!(
            !BackedUpKey::encode(&("@a:x".into(), 1, "!r:xy".into(), "s".into()))
                .starts_with(&BackedUpKey::prefix("@a:x", 1, Some("!r:x"), None))
        );
    }
}
