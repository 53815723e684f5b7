//! Rooms through Synapse's admin API: the list of every room this server
//! holds (`/v1/rooms`), one room's details and joined members, and whether
//! it is blocked.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use ruma::{OwnedRoomId, RoomId};
use serde_json::{json, Value};

use super::params::{page_of, sort_rows, Params, SortKey};
use super::Admin;
use crate::error::{Error, Result};
use crate::http::extract::JsonBody;
use crate::services::public_rooms::state_field;
use crate::services::Services;
use matrixos_storage::records::RoomRecord;

type S = State<Arc<Services>>;

/// Synapse's default page of rooms.
const DEFAULT_LIMIT: usize = 100;

/// What `/v1/rooms` sorts by (`order_by`), the default first, each with
/// Synapse's natural direction (sizes largest first, the rest ascending).
const ORDERS: [(&str, bool); 15] = [
    ("name", true),
    ("alphabetical", true),
    ("size", false),
    ("canonical_alias", true),
    ("joined_members", false),
    ("joined_local_members", false),
    ("version", false),
    ("creator", true),
    ("encryption", true),
    ("federatable", true),
    ("public", true),
    ("join_rules", true),
    ("guest_access", true),
    ("history_visibility", true),
    ("state_events", false),
];

/// A room id from the path; 400 `M_INVALID_PARAM` when it is not one.
pub(super) fn parse_room(raw: &str) -> Result<OwnedRoomId> {
    RoomId::parse(raw).map_err(|_| Error::invalid_param(format!("{raw} is not a legal room ID")))
}

/// A room this server holds, by id from the path: 404 for another, and
/// for one purged here that nobody here joined since.
fn known_room(s: &Services, raw: &str) -> Result<(u64, RoomRecord)> {
    let room = parse_room(raw)?;
    let not_found = || Error::not_found("Room not found");
    let short = s.rooms.short_room(&room)?.ok_or_else(not_found)?;
    if s.rooms.purged_and_empty(&room)? {
        return Err(not_found());
    }
    let record = s.rooms.record(short)?.ok_or_else(not_found)?;
    Ok((short, record))
}

/// What the admin API shows of a room, from its current state.
struct RoomInfo {
    room_id: OwnedRoomId,
    version: String,
    name: Option<String>,
    canonical_alias: Option<String>,
    joined_members: u64,
    joined_local_members: u64,
    creator: Option<String>,
    encryption: Option<String>,
    federatable: bool,
    public: bool,
    join_rules: Option<String>,
    guest_access: Option<String>,
    history_visibility: Option<String>,
    state_events: u64,
    room_type: Option<String>,
}

impl RoomInfo {
    fn of(s: &Services, short: u64, record: &RoomRecord) -> Result<Self> {
        let state = record.state;
        let field = |kind: &str, field: &str| state_field::<String>(s, state, kind, field);
        let (mut joined, mut joined_local) = (0, 0);
        for (user, membership) in s.rooms.members(short)? {
            if membership == "join" {
                joined += 1;
                joined_local += u64::from(s.accounts.is_local(&user));
            }
        }
        let create = s.rooms.state_event(state, "m.room.create", "")?;
        let create_content = create.as_ref().map(|c| c.content_value());
        // Before room version 11 the create event names the creator; since,
        // its sender is.
        let creator = create.as_ref().map(|c| {
            create_content
                .as_ref()
                .and_then(|c| c.get("creator"))
                .and_then(Value::as_str)
                .map_or_else(|| c.sender.to_string(), str::to_owned)
        });
        let federatable = create_content
            .as_ref()
            .and_then(|c| c.get("m.federate"))
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let room_type = create_content
            .as_ref()
            .and_then(|c| c.get("type"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(Self {
            room_id: record.room_id.clone(),
            version: record.version.to_string(),
            name: field("m.room.name", "name")?,
            canonical_alias: field("m.room.canonical_alias", "alias")?,
            joined_members: joined,
            joined_local_members: joined_local,
            creator,
            encryption: field("m.room.encryption", "algorithm")?,
            federatable,
            public: s.rooms.is_published(&record.room_id)?,
            join_rules: field("m.room.join_rules", "join_rule")?,
            guest_access: field("m.room.guest_access", "guest_access")?,
            history_visibility: field("m.room.history_visibility", "history_visibility")?,
            state_events: s.rooms.state.load(state)?.len() as u64,
            room_type,
        })
    }

    fn to_json(&self) -> Value {
        json!({
            "room_id": self.room_id,
            "name": self.name,
            "canonical_alias": self.canonical_alias,
            "joined_members": self.joined_members,
            "joined_local_members": self.joined_local_members,
            "version": self.version,
            "creator": self.creator,
            "encryption": self.encryption,
            "federatable": self.federatable,
            "public": self.public,
            "join_rules": self.join_rules,
            "guest_access": self.guest_access,
            "history_visibility": self.history_visibility,
            "state_events": self.state_events,
            "room_type": self.room_type,
        })
    }

    fn sort_key(&self, order: &str) -> Option<SortKey> {
        let text = |v: &Option<String>| v.as_deref().map(SortKey::from);
        match order {
            "canonical_alias" => text(&self.canonical_alias),
            "size" | "joined_members" => Some(self.joined_members.into()),
            "joined_local_members" => Some(self.joined_local_members.into()),
            "version" => Some(self.version.as_str().into()),
            "creator" => text(&self.creator),
            "encryption" => text(&self.encryption),
            "federatable" => Some(self.federatable.into()),
            "public" => Some(self.public.into()),
            "join_rules" => text(&self.join_rules),
            "guest_access" => text(&self.guest_access),
            "history_visibility" => text(&self.history_visibility),
            "state_events" => Some(self.state_events.into()),
            _ => text(&self.name),
        }
    }

    /// Whether `term` (lower-case) is in the name or the canonical alias,
    /// or is the room id.
    fn matches(&self, term: &str) -> bool {
        let has = |v: &Option<String>| {
            v.as_deref()
                .is_some_and(|v| v.to_lowercase().contains(term))
        };
        has(&self.name)
            || has(&self.canonical_alias)
            || self.room_id.as_str().eq_ignore_ascii_case(term)
    }
}

/// `GET /_synapse/admin/v1/rooms`: every room this server holds, filtered
/// by `search_term`, sorted, in pages (`offset`, `next_batch`,
/// `prev_batch`, all numbers as in Synapse).
pub async fn list(
    State(s): S,
    Admin(_): Admin,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>> {
    let q = Params(query);
    let (from, limit) = q.page(DEFAULT_LIMIT)?;
    let names: Vec<&str> = ORDERS.iter().map(|(name, _)| *name).collect();
    let order = q.one_of("order_by", &names)?;
    let ascending = ORDERS.iter().any(|(name, asc)| *name == order && *asc);
    let backwards = q.backwards()?;
    let term = match q.str("search_term") {
        Some("") => return Err(Error::invalid_param("search_term cannot be empty")),
        term => term.map(str::to_lowercase),
    };
    let mut rooms = Vec::new();
    for (short, record) in s.rooms.all_rooms()? {
        if s.rooms.purged_and_empty(&record.room_id)? {
            continue;
        }
        let info = RoomInfo::of(&s, short, &record)?;
        if term.as_deref().is_none_or(|t| info.matches(t)) {
            rooms.push(info);
        }
    }
    sort_rows(
        &mut rooms,
        |r| r.sort_key(order),
        |r| r.room_id.to_string(),
        ascending,
        backwards,
    );
    let (page, more) = page_of(&rooms, from, limit, RoomInfo::to_json);
    let mut answer = json!({ "rooms": page, "offset": from, "total_rooms": rooms.len() });
    if more {
        answer["next_batch"] = json!(from + limit);
    }
    if from > 0 {
        answer["prev_batch"] = json!(from.saturating_sub(limit));
    }
    Ok(Json(answer))
}

/// `GET /_synapse/admin/v1/rooms/{room_id}`: the listing's fields and the
/// avatar, topic, local members' devices and whether every local user
/// forgot the room.
pub async fn details(
    State(s): S,
    Admin(_): Admin,
    Path(room): Path<String>,
) -> Result<Json<Value>> {
    let (short, record) = known_room(&s, &room)?;
    let mut answer = RoomInfo::of(&s, short, &record)?.to_json();
    let field = |kind: &str, field: &str| state_field::<String>(&s, record.state, kind, field);
    answer["avatar"] = json!(field("m.room.avatar", "url")?);
    answer["topic"] = json!(field("m.room.topic", "topic")?);
    let (mut devices, mut remembered) = (0, false);
    for (user, membership) in s.rooms.members(short)? {
        if !s.accounts.is_local(&user) {
            continue;
        }
        if membership == "join" {
            devices += s.accounts.device_ids(&user)?.len();
        }
        remembered |= s.rooms.membership(&user, &record.room_id)?.is_some();
    }
    answer["joined_local_devices"] = json!(devices);
    answer["forgotten"] = json!(!remembered);
    Ok(Json(answer))
}

/// `GET /_synapse/admin/v1/rooms/{room_id}/members`: the joined members.
pub async fn members(
    State(s): S,
    Admin(_): Admin,
    Path(room): Path<String>,
) -> Result<Json<Value>> {
    let (short, _) = known_room(&s, &room)?;
    let members: Vec<String> = s
        .rooms
        .members(short)?
        .into_iter()
        .filter(|(_, membership)| membership == "join")
        .map(|(user, _)| user.to_string())
        .collect();
    Ok(Json(json!({ "total": members.len(), "members": members })))
}

/// `GET /_synapse/admin/v1/rooms/{room_id}/block`: `{"block": bool}`, and
/// who blocked it.
pub async fn get_block(
    State(s): S,
    Admin(_): Admin,
    Path(room): Path<String>,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    Ok(Json(match s.rooms.blocked_by(&room)? {
        Some(by) => json!({ "block": true, "user_id": by }),
        None => json!({ "block": false }),
    }))
}

/// `PUT /_synapse/admin/v1/rooms/{room_id}/block` (`{"block": bool}`):
/// blocks or unblocks a room, known here or not.
pub async fn set_block(
    State(s): S,
    Admin(admin): Admin,
    Path(room): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    let block = match body.get("block") {
        None => return Err(Error::missing_param("Missing params: ['block']")),
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Error::bad_json("'block' must be a boolean")),
    };
    let by = block.then_some(&*admin.user_id);
    s.rooms.set_blocked(&room, by).await?;
    tracing::info!(room = %room, admin = %admin.user_id, block, "room block set");
    Ok(Json(json!({ "block": block })))
}
