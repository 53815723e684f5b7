//! A short way through the state-dependent authorization rules for the
//! events rooms see most: messages and ordinary state (names, topics, join
//! rules), sent by a joined member with enough power.
//!
//! For such an event the rules come down to three: the room federates with
//! the sender's server, the sender is joined, and the sender's power level
//! is at least the level the event's type requires. ruma's implementation
//! reads the power levels event's content afresh for every event it checks;
//! here the integer fields those rules read are parsed once per power
//! levels event (and kept with it in the event cache).
//!
//! The shortcut only ever allows. Anything it does not read exactly as the
//! rules do (a special event type, string power levels of old room
//! versions, an additional creator's unlisted power, a missing event) leaves the
//! decision to the full rules, which then give the verdict and the reason.

use std::collections::BTreeMap;

use ruma::events::TimelineEventType;
use ruma::room_version_rules::AuthorizationRules;
use ruma::{Int, OwnedUserId, UserId};
use serde::Deserialize;

use super::state_view::StateView;
use super::Pdu;
use crate::error::Result;

/// The fields of `m.room.power_levels` content that decide who may send
/// what, read as integers only. Content that holds anything else where an
/// integer belongs (string levels, allowed before room version 10) has no
/// `SendLevels`, and its events take the full rules.
#[derive(Debug, Clone, Deserialize)]
pub struct SendLevels {
    #[serde(default)]
    users: BTreeMap<OwnedUserId, Int>,
    users_default: Option<Int>,
    #[serde(default)]
    events: BTreeMap<TimelineEventType, Int>,
    events_default: Option<Int>,
    state_default: Option<Int>,
}

impl SendLevels {
    /// Parses the content of a power levels event.
    pub fn parse(content: &str) -> Option<Self> {
        serde_json::from_str(content).ok()
    }

    /// The user's level as the users map gives it. A room creator of a
    /// version that privileges creators may rank higher than this, never
    /// lower.
    fn listed_level(&self, user: &UserId) -> Int {
        self.users
            .get(user)
            .copied()
            .unwrap_or_else(|| self.users_default.unwrap_or_default())
    }

    /// The level an event of `kind` requires.
    fn required(&self, kind: &TimelineEventType, is_state: bool) -> Int {
        if let Some(level) = self.events.get(kind) {
            return *level;
        }
        match is_state {
            true => self.state_default.unwrap_or(Int::from(50)),
            false => self.events_default.unwrap_or_default(),
        }
    }
}

/// Whether `pdu` certainly passes the state-dependent rules against
/// `state`. `false` means only that the full rules must decide.
pub(crate) fn allows(rules: &AuthorizationRules, pdu: &Pdu, state: &dyn StateView) -> Result<bool> {
    if !is_plain(pdu) {
        return Ok(false);
    }
    let Some(create) = state.state_event("m.room.create", "")? else {
        return Ok(false);
    };
    if create.sender.server_name() != pdu.sender.server_name() && !federates(&create) {
        return Ok(false);
    }
    let joined = state
        .state_event("m.room.member", pdu.sender.as_str())?
        .is_some_and(|member| member.membership().as_deref() == Some("join"));
    if !joined {
        return Ok(false);
    }
    // The room's creator, where the version privileges creators, has a
    // power no event type requires more than.
    if rules.explicitly_privilege_room_creators && create.sender == pdu.sender {
        return Ok(true);
    }
    let Some(levels_event) = state.state_event("m.room.power_levels", "")? else {
        return Ok(false);
    };
    let Some(levels) = levels_event.send_levels() else {
        return Ok(false);
    };
    Ok(levels.listed_level(&pdu.sender) >= levels.required(&pdu.kind, pdu.is_state()))
}

/// An event whose type has no rules of its own and whose state key (if
/// any) names no other user.
fn is_plain(pdu: &Pdu) -> bool {
    let special = matches!(
        pdu.kind,
        TimelineEventType::RoomCreate
            | TimelineEventType::RoomMember
            | TimelineEventType::RoomPowerLevels
            | TimelineEventType::RoomThirdPartyInvite
            | TimelineEventType::RoomRedaction
    ) || (pdu.is_state() && pdu.kind.to_string() == "m.room.aliases");
    let names_another = pdu
        .state_key
        .as_deref()
        .is_some_and(|key| key.starts_with('@') && key != pdu.sender.as_str());
    !special && !names_another
}

/// Whether the create event lets other servers in: `m.federate` absent or
/// true (a malformed value counts as not, for the full rules to judge).
fn federates(create: &Pdu) -> bool {
    #[derive(Deserialize)]
    struct Content {
        #[serde(rename = "m.federate", default = "yes")]
        federate: bool,
    }
    fn yes() -> bool {
        true
    }
    serde_json::from_str::<Content>(create.content.get()).is_ok_and(|c| c.federate)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ruma::events::StateEventType;
    use ruma::room_version_rules::AuthorizationRules;
    use serde_json::{json, Value};

    use super::*;
    use crate::rooms::state_view::DraftState;

    /// A room whose create event `@alice:a.test` sent (`content` merged
    /// into its content) and whose power levels event has `levels`; bob
    /// (a.test) and carol (b.test) are joined, dave has left.
    fn room(create: Value, levels: Value) -> DraftState {
        let mut room = DraftState::default();
        let mut create_content = json!({ "room_version": "12" });
        create_content
            .as_object_mut()
            .unwrap()
            .extend(create.as_object().unwrap().clone());
        room.add(&event(
            "@alice:a.test",
            "m.room.create",
            Some(""),
            create_content,
        ));
        room.add(&event(
            "@alice:a.test",
            "m.room.power_levels",
            Some(""),
            levels,
        ));
        for (user, membership) in [
            ("@alice:a.test", "join"),
            ("@bob:a.test", "join"),
            ("@carol:b.test", "join"),
            ("@dave:a.test", "leave"),
        ] {
            let content = json!({ "membership": membership });
            room.add(&event(user, "m.room.member", Some(user), content));
        }
        room
    }

    fn event(sender: &str, kind: &str, state_key: Option<&str>, content: Value) -> Pdu {
        let mut pdu = json!({
            "room_id": "!r:a.test",
            "sender": sender,
            "origin_server_ts": 1,
            "type": kind,
            "content": content,
            "depth": 5,
            "prev_events": [],
            "auth_events": [],
        });
        if let Some(key) = state_key {
            pdu["state_key"] = json!(key);
        }
        let id = format!("${}{}{}", kind, sender, state_key.unwrap_or("-"));
        let id = id.replace([':', '@', '.'], "_");
        Pdu::from_signed(Some(id.try_into().unwrap()), pdu.to_string().as_bytes()).unwrap()
    }

    /// The shortcut's answer, and the full rules' answer.
    fn both(rules: &AuthorizationRules, room: &DraftState, pdu: &Pdu) -> (bool, bool) {
        let fetch = |kind: &StateEventType, key: &str| -> Option<Arc<Pdu>> {
            room.state_event(&kind.to_string(), key).unwrap()
        };
        let full = ruma::state_res::check_state_dependent_auth_rules(rules, pdu, fetch).is_ok();
        (allows(rules, pdu, room).unwrap(), full)
    }

    /// What a case is, its rules, room and event, and both answers.
    type Case<'a> = (
        &'a str,
        &'a AuthorizationRules,
        DraftState,
        Pdu,
        (bool, bool),
    );

    #[test]
    fn the_shortcut_allows_only_what_the_full_rules_allow() {
        let message = json!({ "msgtype": "m.text", "body": "hi" });
        let levels = json!({
            "users": { "@bob:a.test": 50, "@carol:b.test": 0 },
            "events": { "m.room.topic": 0, "m.room.encryption": 100 },
            "events_default": 0,
            "state_default": 50,
        });
        let v12 = AuthorizationRules::V12;
        let v10 = AuthorizationRules::V10;
        let plain = || room(json!({}), levels.clone());
        let cases: Vec<Case<'_>> = vec![
            (
                "a joined member's message",
                &v12,
                plain(),
                event("@carol:b.test", "m.room.message", None, message.clone()),
                (true, true),
            ),
            (
                "a state event at the user's level",
                &v12,
                plain(),
                event(
                    "@bob:a.test",
                    "m.room.name",
                    Some(""),
                    json!({ "name": "n" }),
                ),
                (true, true),
            ),
            (
                "a type the events map lowers",
                &v12,
                plain(),
                event(
                    "@carol:b.test",
                    "m.room.topic",
                    Some(""),
                    json!({ "topic": "t" }),
                ),
                (true, true),
            ),
            (
                "a type the events map raises",
                &v12,
                plain(),
                event("@bob:a.test", "m.room.encryption", Some(""), json!({})),
                (false, false),
            ),
            (
                "state below the state default",
                &v12,
                plain(),
                event(
                    "@carol:b.test",
                    "m.room.name",
                    Some(""),
                    json!({ "name": "n" }),
                ),
                (false, false),
            ),
            (
                "a member who left",
                &v12,
                plain(),
                event("@dave:a.test", "m.room.message", None, message.clone()),
                (false, false),
            ),
            (
                "a state key naming another user",
                &v12,
                plain(),
                event(
                    "@bob:a.test",
                    "org.example",
                    Some("@carol:b.test"),
                    json!({}),
                ),
                (false, false),
            ),
            (
                "the creator, unlisted, in a version that privileges creators",
                &v12,
                plain(),
                event("@alice:a.test", "m.room.encryption", Some(""), json!({})),
                (true, true),
            ),
            (
                "the creator, unlisted, in a version that does not",
                &v10,
                room(json!({ "creator": "@alice:a.test" }), levels.clone()),
                event("@alice:a.test", "m.room.encryption", Some(""), json!({})),
                (false, false),
            ),
            (
                "an additional creator: left to the full rules",
                &v12,
                room(
                    json!({ "additional_creators": ["@carol:b.test"] }),
                    levels.clone(),
                ),
                event("@carol:b.test", "m.room.encryption", Some(""), json!({})),
                (false, true),
            ),
            (
                "another server's member where the room does not federate",
                &v12,
                room(json!({ "m.federate": false }), levels.clone()),
                event("@carol:b.test", "m.room.message", None, message.clone()),
                (false, false),
            ),
            (
                "the creator's server where the room does not federate",
                &v12,
                room(json!({ "m.federate": false }), levels.clone()),
                event("@bob:a.test", "m.room.message", None, message.clone()),
                (true, true),
            ),
            (
                "string levels of an old version: left to the full rules",
                &AuthorizationRules::V1,
                room(
                    json!({ "creator": "@alice:a.test" }),
                    json!({ "users_default": "10", "events_default": 5 }),
                ),
                event("@bob:a.test", "m.room.message", None, message.clone()),
                (false, true),
            ),
            (
                "a redaction: left to the full rules",
                &v12,
                plain(),
                event(
                    "@carol:b.test",
                    "m.room.redaction",
                    None,
                    json!({ "redacts": "$x" }),
                ),
                (false, true),
            ),
        ];
        for (what, rules, room, pdu, expected) in cases {
            assert_eq!(both(rules, &room, &pdu), expected, "{what}");
        }
    }

    #[test]
    fn levels_are_read_once_per_power_levels_event() {
        let pl = event(
            "@alice:a.test",
            "m.room.power_levels",
            Some(""),
            json!({ "users": { "@bob:a.test": 50 } }),
        );
        let first = pl.send_levels().expect("integer levels") as *const SendLevels;
        assert_eq!(pl.send_levels().unwrap() as *const SendLevels, first);
        let bob = UserId::parse("@bob:a.test").unwrap();
        assert_eq!(pl.send_levels().unwrap().listed_level(&bob), Int::from(50));
        let strings = json!({ "users": { "@bob:a.test": "50" } });
        let old = event("@alice:a.test", "m.room.power_levels", Some(""), strings);
        assert!(old.send_levels().is_none());
    }
}
