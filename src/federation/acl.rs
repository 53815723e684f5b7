//! `m.room.server_acl`: which servers a room keeps out. A server the
//! room's current ACL denies gets nothing of the room from this one and
//! sends it nothing: its requests about the room are `403 M_FORBIDDEN`,
//! its PDUs and EDUs for the room are refused.

use ruma::{RoomId, ServerName};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::rooms::Rooms;
use crate::services::Services;

#[derive(Deserialize, Default)]
pub struct Acl {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default = "yes")]
    allow_ip_literals: bool,
}

fn yes() -> bool {
    true
}

/// Whether `pattern` (with `*` for any run of characters and `?` for one)
/// matches `name`, ignoring ASCII case.
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (
        pattern.to_ascii_lowercase().chars().collect(),
        name.to_ascii_lowercase().chars().collect(),
    );
    // Iterative matching with one backtrack point: linear in practice.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl Acl {
    /// The ACL of a room state, if it has one.
    pub fn at(rooms: &Rooms, state: u64) -> Result<Option<Acl>> {
        let Some(event) = rooms.state_event(state, "m.room.server_acl", "")? else {
            return Ok(None);
        };
        Ok(Some(
            serde_json::from_str(event.content.get()).unwrap_or_default(),
        ))
    }

    pub fn allows(&self, server: &ServerName) -> bool {
        // The port is not part of what an ACL names.
        let host = server.host();
        if !self.allow_ip_literals && server.is_ip_literal() {
            return false;
        }
        if self.deny.iter().any(|d| glob(d, host)) {
            return false;
        }
        self.allow.iter().any(|a| glob(a, host))
    }
}

/// Whether the room's current ACL lets `server` take part.
pub fn allows(s: &Services, room: &RoomId, server: &ServerName) -> Result<bool> {
    let Ok((_, record)) = s.rooms.record_of(room) else {
        return Ok(true);
    };
    Ok(Acl::at(&s.rooms, record.state)?.is_none_or(|acl| acl.allows(server)))
}

/// Refuses a server the room's ACL denies.
pub fn check(s: &Services, room: &RoomId, server: &ServerName) -> Result<()> {
    if allows(s, room, server)? {
        return Ok(());
    }
    tracing::info!(%server, %room, "server denied by the room's ACL");
    Err(Error::forbidden("Server is banned from this room"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(allow: &[&str], deny: &[&str], ip: bool) -> Acl {
        Acl {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
            allow_ip_literals: ip,
        }
    }

    fn name(s: &str) -> &ServerName {
        <&ServerName>::try_from(s).unwrap()
    }

    #[test]
    fn globs_match_as_the_spec_says() {
        assert!(glob("*", "matrix.org"));
        assert!(glob("*.example.org", "a.example.org"));
        assert!(!glob("*.example.org", "example.org"));
        assert!(glob("ex?mple.org", "EXAMPLE.org"));
        assert!(!glob("ex?mple.org", "exaample.org"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
    }

    #[test]
    fn deny_wins_and_ip_literals_can_be_refused() {
        let rules = acl(&["*"], &["evil.example", "*.evil.example"], false);
        assert!(rules.allows(name("good.example:8448")));
        assert!(!rules.allows(name("evil.example")));
        assert!(!rules.allows(name("a.evil.example:443")));
        assert!(!rules.allows(name("127.0.0.1:8448")));
        assert!(!acl(&[], &[], true).allows(name("good.example")));
        assert!(acl(&["*"], &[], true).allows(name("[::1]:8448")));
    }
}
