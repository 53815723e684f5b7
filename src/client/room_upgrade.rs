//! `/rooms/{id}/upgrade`: a new room of another version replaces a room,
//! as Synapse does it. The new room copies the old one's rules, name,
//! topic, avatar, encryption, ACL, power levels and bans, and names its
//! predecessor. Local aliases move to it; members are invited when its join
//! rule needs it. The old room gets a tombstone pointing at the new one,
//! and its power levels stop ordinary members from talking or inviting.

use std::sync::Arc;

use axum::Router;
use ruma::api::client::room::upgrade_room;
use ruma::events::StateEventType;
use ruma::{OwnedUserId, RoomId, UserId};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::rooms::create::{CreateRoom, Preset};
use crate::rooms::power::as_level;
use crate::rooms::send::EventDraft;
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new().endpoint(upgrade)
}

/// State carried over to the new room (Synapse's list).
const COPIED: [&str; 8] = [
    "m.room.join_rules",
    "m.room.name",
    "m.room.topic",
    "m.room.history_visibility",
    "m.room.guest_access",
    "m.room.avatar",
    "m.room.encryption",
    "m.room.server_acl",
];

fn content_of(s: &Services, state: u64, kind: &str, key: &str) -> Result<Option<Value>> {
    Ok(s.rooms
        .state_event(state, kind, key)?
        .map(|e| e.content_value()))
}

/// The level `kind` needs as a state event, from power levels content.
fn state_level(pl: &Value, kind: &str) -> i64 {
    as_level(pl.get("events").and_then(|e| e.get(kind)))
        .or_else(|| as_level(pl.get("state_default")))
        .unwrap_or(50)
}

async fn upgrade(
    s: Arc<Services>,
    req: Ruma<upgrade_room::v3::Request>,
) -> Result<upgrade_room::v3::Response> {
    let (user, old) = (&req.caller.user_id, &req.body.room_id);
    let version = req.body.new_version.clone();
    let (_, record) = s.rooms.record_of(old)?;
    if !s.rooms.is_joined(user, old)? {
        return Err(Error::forbidden("You are not in this room"));
    }
    let state = record.state;
    let pl = content_of(&s, state, "m.room.power_levels", "")?.unwrap_or_else(|| json!({}));
    let rules = record
        .version
        .rules()
        .ok_or_else(|| Error::unsupported_room_version("Unsupported room version"))?;
    let state_map = s.rooms.state.load(state)?;
    let power = s.rooms.user_power(&state_map, &rules.authorization, user)?;
    if power < state_level(&pl, "m.room.tombstone") {
        return Err(Error::forbidden("You may not upgrade this room"));
    }
    let new_room = create_successor(
        &s,
        user,
        old,
        state,
        &pl,
        &version,
        &req.body.additional_creators,
    )
    .await?;
    // Members of an invite-only room are invited to its successor.
    let join_rule = content_of(&s, state, "m.room.join_rules", "")?;
    let rule = join_rule
        .as_ref()
        .and_then(|c| c.get("join_rule"))
        .and_then(Value::as_str);
    if matches!(rule, Some("invite" | "knock")) {
        let short_room = s.rooms.short_room(old)?.unwrap_or_default();
        for (member, membership) in s.rooms.members(short_room)? {
            if membership == "join" && member != *user && s.accounts.is_local(&member) {
                let draft = EventDraft::state(
                    StateEventType::RoomMember,
                    member.as_str(),
                    json!({ "membership": "invite" }),
                );
                if let Err(e) = s.rooms.send(user, &new_room, draft, None).await {
                    tracing::info!(%member, error = %e, "invite to the upgraded room failed");
                }
            }
        }
    }
    retire(&s, user, old, &new_room, &pl).await?;
    Ok(upgrade_room::v3::Response::new(new_room))
}

/// Creates the new room: the old one's state, its power levels (the
/// upgrader's own raised for the copy when needed, then restored), and its
/// bans.
async fn create_successor(
    s: &Services,
    user: &UserId,
    old: &RoomId,
    state: u64,
    pl: &Value,
    version: &ruma::RoomVersionId,
    additional_creators: &[OwnedUserId],
) -> Result<ruma::OwnedRoomId> {
    let rules = version
        .rules()
        .ok_or_else(|| Error::unsupported_room_version("Unsupported room version"))?;
    let privileged = rules.authorization.explicitly_privilege_room_creators;
    let mut creation = Map::new();
    if let Some(old_create) = content_of(s, state, "m.room.create", "")? {
        for field in ["type", "m.federate"] {
            if let Some(v) = old_create.get(field) {
                creation.insert(field.into(), v.clone());
            }
        }
    }
    creation.insert("predecessor".into(), json!({ "room_id": old }));
    if privileged && !additional_creators.is_empty() {
        creation.insert("additional_creators".into(), json!(additional_creators));
    }
    let mut levels = pl.as_object().cloned().unwrap_or_default();
    let original_users = levels.get("users").cloned();
    levels.entry("users").or_insert_with(|| json!({}));
    if let Some(Value::Object(users)) = levels.get_mut("users") {
        if privileged {
            users.remove(user.as_str());
            for creator in additional_creators {
                users.remove(creator.as_str());
            }
        } else {
            // Enough power to copy every state event.
            let needed = COPIED
                .iter()
                .map(|k| state_level(pl, k))
                .max()
                .unwrap_or(100);
            let own = users
                .get(user.as_str())
                .and_then(|v| as_level(Some(v)))
                .unwrap_or(0);
            users.insert(user.to_string(), json!(own.max(needed).max(100)));
        }
    }
    let mut initial_state = Vec::new();
    for kind in COPIED {
        if let Some(content) = content_of(s, state, kind, "")? {
            initial_state.push(EventDraft::state(StateEventType::from(kind), "", content));
        }
    }
    let opts = CreateRoom {
        version: version.clone(),
        preset: Preset::PrivateChat,
        name: None,
        topic: None,
        alias: None,
        invite: Vec::new(),
        is_direct: false,
        creation_content: creation,
        power_level_override: Some(levels.clone()),
        initial_state,
        creator_profile: crate::services::membership::profile_content(s, user)?,
    };
    let new_room = s.rooms.create_room(user, opts).await?;
    // The upgrader's power as it was (creators of privileged versions
    // were never listed).
    if !privileged && levels.get("users") != original_users.as_ref() {
        if let Some(users) = original_users {
            levels.insert("users".into(), users);
            let draft =
                EventDraft::state(StateEventType::RoomPowerLevels, "", Value::Object(levels));
            s.rooms.send(user, &new_room, draft, None).await?;
        }
    }
    // Bans carry over.
    let short_room = s.rooms.short_room(old)?.unwrap_or_default();
    for (member, membership) in s.rooms.members(short_room)? {
        if membership == "ban" {
            let draft = EventDraft::state(
                StateEventType::RoomMember,
                member.as_str(),
                json!({ "membership": "ban" }),
            );
            s.rooms.send(user, &new_room, draft, None).await?;
        }
    }
    Ok(new_room)
}

/// The old room: local aliases and the canonical alias move to the new
/// room, so does its directory listing; a tombstone points at the new
/// room; ordinary members can no longer talk or invite.
async fn retire(
    s: &Services,
    user: &UserId,
    old: &RoomId,
    new_room: &RoomId,
    pl: &Value,
) -> Result<()> {
    for alias in s.rooms.aliases_of(old)? {
        if let Some(record) = s.rooms.alias(&alias)? {
            s.rooms.delete_alias(&alias, &record).await?;
            s.rooms.set_alias(&alias, new_room, user).await?;
        }
    }
    let (_, record) = s.rooms.record_of(old)?;
    if let Some(canonical) = content_of(s, record.state, "m.room.canonical_alias", "")? {
        let draft = EventDraft::state(StateEventType::RoomCanonicalAlias, "", canonical);
        s.rooms.send(user, new_room, draft, None).await?;
        let empty = EventDraft::state(StateEventType::RoomCanonicalAlias, "", json!({}));
        s.rooms.send(user, old, empty, None).await?;
    }
    if s.rooms.is_published(old)? {
        s.rooms.set_published(new_room, true).await?;
        s.rooms.set_published(old, false).await?;
    }
    let tombstone = json!({
        "body": "This room has been replaced", "replacement_room": new_room,
    });
    let draft = EventDraft::state(StateEventType::RoomTombstone, "", tombstone);
    s.rooms.send(user, old, draft, None).await?;
    // Synapse's restriction of the old room: talking and inviting need
    // 50 (or one above the default).
    let users_default = as_level(pl.get("users_default")).unwrap_or(0);
    let restricted = 50.max(users_default + 1);
    let mut levels = pl.as_object().cloned().unwrap_or_default();
    let mut changed = false;
    for field in ["events_default", "invite"] {
        if as_level(levels.get(field)).unwrap_or(0) < restricted {
            levels.insert(field.into(), json!(restricted));
            changed = true;
        }
    }
    if changed {
        let draft = EventDraft::state(StateEventType::RoomPowerLevels, "", Value::Object(levels));
        if let Err(e) = s.rooms.send(user, old, draft, None).await {
            tracing::info!(room = %old, error = %e, "restricting the upgraded room failed");
        }
    }
    Ok(())
}
