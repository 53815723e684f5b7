//! `/directory/room/{alias}`, `/rooms/{id}/aliases`, `/directory/list/room`
//! and `/publicRooms`.

use axum::routing::get;
use axum::Router;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use ruma::{OwnedRoomId, RoomAliasId};
use serde_json::{json, Value};

use super::membership::parse_room;
use crate::error::{Error, Result};
use crate::http::extract::{opt_str, query_param, req_str, Auth, JsonBody, MaybeAuth};
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route(
            &super::v3("/directory/room/{room_alias}"),
            get(get_alias).put(put_alias).delete(delete_alias),
        )
        .route(&super::v3("/rooms/{room_id}/aliases"), get(room_aliases))
        .route(
            &super::v3("/directory/list/room/{room_id}"),
            get(get_visibility).put(set_visibility),
        )
        .route(
            &super::v3("/publicRooms"),
            get(get_public_rooms).post(post_public_rooms),
        )
}

type S = State<Arc<Services>>;

fn parse_alias(s: &Services, alias: &str) -> Result<ruma::OwnedRoomAliasId> {
    let alias =
        RoomAliasId::parse(alias).map_err(|_| Error::invalid_param("Invalid room alias"))?;
    if alias.server_name() != s.server_name {
        return Err(Error::invalid_param("Room alias is not on this server"));
    }
    Ok(alias)
}

pub async fn get_alias(State(s): S, Path(alias): Path<String>) -> Result<Json<Value>> {
    let alias = parse_alias(&s, &alias)?;
    let room = s
        .rooms
        .alias_target(&alias)?
        .ok_or_else(|| Error::not_found("Room alias not found"))?;
    Ok(Json(json!({ "room_id": room, "servers": [s.server_name] })))
}

pub async fn put_alias(
    State(s): S,
    Auth(caller): Auth,
    Path(alias): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let alias = parse_alias(&s, &alias)?;
    let room = parse_room(req_str(&body, "room_id")?)?;
    if s.rooms.short_room(&room)?.is_none() {
        return Err(Error::not_found("Unknown room"));
    }
    // Only members may name a room (Synapse checks the same): an alias is
    // public, and whoever made it may delete it again.
    if !s.rooms.is_joined(&caller.user_id, &room)? {
        return Err(Error::forbidden("You are not in this room"));
    }
    s.rooms.set_alias(&alias, &room, &caller.user_id).await?;
    Ok(Json(json!({})))
}

pub async fn delete_alias(
    State(s): S,
    Auth(caller): Auth,
    Path(alias): Path<String>,
) -> Result<Json<Value>> {
    let alias = parse_alias(&s, &alias)?;
    let record = s
        .rooms
        .alias(&alias)?
        .ok_or_else(|| Error::not_found("Room alias not found"))?;
    let admin = s.accounts.get(&caller.user_id)?.is_some_and(|u| u.admin);
    let may = record.creator == caller.user_id || admin || {
        let (_, room) = s.rooms.record_of(&record.room_id)?;
        s.rooms
            .has_level(&room, &caller.user_id, "state_default", 50)?
    };
    if !may {
        return Err(Error::forbidden("You may not delete this alias"));
    }
    s.rooms.delete_alias(&alias, &record).await?;
    Ok(Json(json!({})))
}

pub async fn room_aliases(
    State(s): S,
    Auth(caller): Auth,
    Path(room): Path<String>,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    s.rooms.reader(&caller.user_id, &room)?.readable_state()?;
    Ok(Json(json!({ "aliases": s.rooms.aliases_of(&room)? })))
}

pub async fn get_visibility(State(s): S, Path(room): Path<String>) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    s.rooms.record_of(&room)?;
    let visibility = if s.rooms.is_published(&room)? {
        "public"
    } else {
        "private"
    };
    Ok(Json(json!({ "visibility": visibility })))
}

pub async fn set_visibility(
    State(s): S,
    Auth(caller): Auth,
    Path(room): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    let (_, record) = s.rooms.record_of(&room)?;
    let public = match opt_str(&body, "visibility")?.unwrap_or("public") {
        "public" => true,
        "private" => false,
        _ => return Err(Error::invalid_param("visibility must be public or private")),
    };
    if !s.rooms.is_joined(&caller.user_id, &room)?
        || !s
            .rooms
            .has_level(&record, &caller.user_id, "state_default", 50)?
    {
        return Err(Error::forbidden(
            "You may not change this room's visibility",
        ));
    }
    s.rooms.set_published(&room, public).await?;
    Ok(Json(json!({})))
}

/// One directory entry, from the room's current state.
fn room_summary(s: &Services, room: &OwnedRoomId) -> Result<Value> {
    let (short, record) = s.rooms.record_of(room)?;
    let content = |kind: &str| -> Result<Value> {
        Ok(s.rooms
            .state_event(record.state, kind, "")?
            .map(|e| e.content_value())
            .unwrap_or(Value::Null))
    };
    let joined = s
        .rooms
        .members(short)?
        .iter()
        .filter(|(_, m)| m == "join")
        .count();
    let history = content("m.room.history_visibility")?;
    let guest = content("m.room.guest_access")?;
    let mut entry = json!({
        "room_id": room,
        "num_joined_members": joined,
        "world_readable": history.get("history_visibility").and_then(Value::as_str) == Some("world_readable"),
        "guest_can_join": guest.get("guest_access").and_then(Value::as_str) == Some("can_join"),
        "join_rule": content("m.room.join_rules")?.get("join_rule").cloned().unwrap_or(json!("invite")),
    });
    for (field, kind, key) in [
        ("name", "m.room.name", "name"),
        ("topic", "m.room.topic", "topic"),
        ("canonical_alias", "m.room.canonical_alias", "alias"),
        ("avatar_url", "m.room.avatar", "url"),
        ("room_type", "m.room.create", "type"),
    ] {
        if let Some(v) = content(kind)?.get(key).filter(|v| v.is_string()) {
            entry[field] = v.clone();
        }
    }
    Ok(entry)
}

async fn public_rooms(
    s: &Services,
    limit: Option<usize>,
    since: Option<&str>,
    term: Option<&str>,
) -> Result<Json<Value>> {
    let mut entries = Vec::new();
    for room in s.rooms.published_rooms()? {
        let entry = room_summary(s, &room)?;
        let matches = term.is_none_or(|t| {
            let t = t.to_lowercase();
            ["name", "topic", "canonical_alias"].iter().any(|f| {
                entry
                    .get(*f)
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.to_lowercase().contains(&t))
            })
        });
        if matches {
            entries.push(entry);
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e["num_joined_members"].as_u64().unwrap_or(0)));
    let total = entries.len();
    let start: usize = match since {
        Some(t) => t
            .parse()
            .map_err(|_| Error::invalid_param("Invalid since token"))?,
        None => 0,
    };
    let limit = limit.unwrap_or(total).max(1);
    let chunk: Vec<Value> = entries.into_iter().skip(start).take(limit).collect();
    let mut out = json!({ "chunk": chunk, "total_room_count_estimate": total });
    let next = start.saturating_add(limit);
    if next < total {
        out["next_batch"] = json!(next.to_string());
    }
    if start > 0 {
        out["prev_batch"] = json!(start.saturating_sub(limit).to_string());
    }
    Ok(Json(out))
}

pub async fn get_public_rooms(
    State(s): S,
    MaybeAuth(_): MaybeAuth,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<Value>> {
    let limit = query_param(&q, "limit")
        .map(|l| l.parse().map_err(|_| Error::invalid_param("Invalid limit")))
        .transpose()?;
    public_rooms(&s, limit, query_param(&q, "since"), None).await
}

pub async fn post_public_rooms(
    State(s): S,
    Auth(_): Auth,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let limit = match body.get("limit") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| Error::bad_json("limit must be a number"))? as usize,
        ),
    };
    let term = body
        .get("filter")
        .and_then(|f| f.get("generic_search_term"))
        .and_then(Value::as_str);
    public_rooms(&s, limit, opt_str(&body, "since")?, term).await
}
