//! `/user_directory/search`: users who share a room with the searcher or
//! are in a public room (Synapse's default), matched by display name and
//! user id, each word of the search a prefix of a word of theirs.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use ruma::api::client::user_directory::search_users;
use ruma::{OwnedMxcUri, OwnedUserId, UserId};
use serde_json::Value;

use crate::error::Result;
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new().reading(search)
}

/// Most results one search answers.
const MAX_LIMIT: usize = 100;

/// A user the searcher may find, as one of their rooms shows them.
struct Candidate {
    display_name: Option<String>,
    avatar_url: Option<OwnedMxcUri>,
    /// Shares a room with the searcher (ranked first).
    shared: bool,
    /// In a public room.
    public: bool,
}

/// Lower-case words: letters and digits of any script.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Every word of the search starts a word of the user's name or id.
fn matches(terms: &[String], user: &UserId, candidate: &Candidate) -> bool {
    let mut theirs = words(user.as_str());
    if let Some(name) = &candidate.display_name {
        theirs.extend(words(name));
    }
    terms
        .iter()
        .all(|term| theirs.iter().any(|w| w.starts_with(term.as_str())))
}

/// Whether anyone may join or read a room (Synapse's "public rooms" for
/// the directory).
fn is_public(s: &Services, state: u64) -> Result<bool> {
    let field = |kind: &str, name: &str| -> Result<Option<String>> {
        let event = s.rooms.state_event(state, kind, "")?;
        Ok(event.and_then(|e| e.content_value().get(name)?.as_str().map(str::to_owned)))
    };
    Ok(
        field("m.room.join_rules", "join_rule")?.as_deref() == Some("public")
            || field("m.room.history_visibility", "history_visibility")?.as_deref()
                == Some("world_readable"),
    )
}

/// The joined members of a room's current state, with their room profile.
fn add_members(
    s: &Services,
    state: u64,
    (shared, public): (bool, bool),
    out: &mut BTreeMap<OwnedUserId, Candidate>,
) -> Result<()> {
    for (short_key, short_event) in s.rooms.state.load(state)?.iter() {
        let (kind, key) = s.rooms.state.key_of(*short_key)?;
        if kind != "m.room.member" {
            continue;
        }
        let Ok(user) = UserId::parse(key.as_str()) else {
            continue;
        };
        let content = s.rooms.pdu_by_short(*short_event)?.content_value();
        if content.get("membership").and_then(Value::as_str) != Some("join") {
            continue;
        }
        let text = |name: &str| content.get(name).and_then(Value::as_str).map(str::to_owned);
        let entry = out.entry(user).or_insert_with(|| Candidate {
            display_name: text("displayname"),
            avatar_url: text("avatar_url").map(OwnedMxcUri::from),
            shared,
            public,
        });
        entry.shared |= shared;
        entry.public |= public;
    }
    Ok(())
}

fn search(
    s: Arc<Services>,
    req: Ruma<search_users::v3::Request>,
) -> Result<search_users::v3::Response> {
    let caller = &req.caller.user_id;
    let terms = words(&req.body.search_term);
    let limit = usize::try_from(u64::from(req.body.limit)).map_or(MAX_LIMIT, |l| l.min(MAX_LIMIT));
    if terms.is_empty() || limit == 0 {
        return Ok(search_users::v3::Response::new(Vec::new(), false));
    }
    let joined = s.rooms.joined_rooms(caller)?;
    let mut candidates = BTreeMap::new();
    for (_, record) in s.rooms.all_rooms()? {
        let shared = joined.contains(&record.room_id);
        let public = is_public(&s, record.state)?;
        if shared || public {
            add_members(&s, record.state, (shared, public), &mut candidates)?;
        }
    }
    let mut found: Vec<(OwnedUserId, Candidate)> = candidates
        .into_iter()
        // The searcher is found only through a public room, as in Synapse.
        .filter(|(user, c)| (user != caller || c.public) && matches(&terms, user, c))
        .collect();
    // Those sharing a room first, then by name.
    found.sort_by_cached_key(|(user, c)| {
        let name = c
            .display_name
            .as_deref()
            .unwrap_or(user.localpart())
            .to_lowercase();
        (!c.shared, name, user.clone())
    });
    let limited = found.len() > limit;
    let results = found
        .into_iter()
        .take(limit)
        .map(|(user, c)| {
            let mut out = search_users::v3::User::new(user);
            out.display_name = c.display_name;
            out.avatar_url = c.avatar_url;
            out
        })
        .collect();
    Ok(search_users::v3::Response::new(results, limited))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_search_word_starts_a_word_of_the_user() {
        let user = ruma::user_id!("@zoë.martin:example.org");
        let c = Candidate {
            display_name: Some("Zoë Martin-Dupont".into()),
            avatar_url: None,
            shared: true,
            public: false,
        };
        assert!(matches(&words("zo"), user, &c));
        assert!(matches(&words("ZOË dup"), user, &c));
        assert!(matches(&words("example"), user, &c));
        assert!(!matches(&words("artin"), user, &c));
        assert!(!matches(&words("zoë smith"), user, &c));
    }
}
