//! `/messages`, `/members`, `/joined_members`.

use axum::routing::get;
use axum::Router;
use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use matrixos_storage::Direction;
use serde_json::{json, Value};

use super::membership::parse_room;
use crate::error::{Error, Result};
use crate::http::extract::{query_param, Auth};
use crate::services::Services;
use crate::sync::filter::{EventFilter, Filter};

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route(&super::v3("/rooms/{room_id}/messages"), get(messages))
        .route(&super::v3("/rooms/{room_id}/members"), get(members))
        .route(
            &super::v3("/rooms/{room_id}/joined_members"),
            get(joined_members),
        )
}

type S = State<Arc<Services>>;
type Q = Query<Vec<(String, String)>>;

/// The `limit` (10 by default, capped at `max`) and `filter` query
/// parameters shared by `/messages` and `/context`.
pub fn page_params(q: &[(String, String)], max: usize) -> Result<(usize, EventFilter)> {
    let limit = match query_param(q, "limit") {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| Error::invalid_param("Invalid limit"))?
            .min(max),
        None => 10,
    };
    let filter = match query_param(q, "filter") {
        Some(f) => Filter::parse_room_event_filter(f)?,
        None => EventFilter::default(),
    };
    Ok((limit, filter))
}

pub fn parse_token(token: &str) -> Result<u64> {
    token
        .parse()
        .map_err(|_| Error::invalid_param("Invalid pagination token"))
}

pub async fn messages(
    State(s): S,
    Auth(caller): Auth,
    Path(room): Path<String>,
    Query(q): Q,
) -> Result<Json<MessagesPage>> {
    let room = parse_room(&room)?;
    let reader = s.rooms.reader(&caller.user_id, &room)?;
    let (short_room, until) = (reader.short_room, reader.until);
    let direction = match query_param(&q, "dir") {
        Some("b") => Direction::Backward,
        Some("f") => Direction::Forward,
        Some(_) => return Err(Error::invalid_param("dir must be b or f")),
        None => return Err(Error::missing_param("Missing dir")),
    };
    let (limit, filter) = page_params(&q, 1000)?;
    let now = s.store.position().min(until);
    let from = match query_param(&q, "from") {
        Some(t) => parse_token(t)?.min(now),
        None if direction == Direction::Backward => now,
        None => 0,
    };
    let to = query_param(&q, "to").map(parse_token).transpose()?;
    let bound = match direction {
        Direction::Backward => to,
        Direction::Forward => Some(to.unwrap_or(now).min(now)),
    };
    let mut chunk = Vec::new();
    let mut senders = BTreeSet::new();
    let mut cursor = from;
    let mut end = None;
    if limit == 0 {
        // An empty page reads nothing, so it ends where it starts (when
        // anything lies beyond): reading an event would skip it.
        let beyond = s.rooms.timeline(short_room, from, direction, 1, bound)?;
        end = (!beyond.is_empty()).then_some(from);
    }
    let rounds = if limit == 0 { 0 } else { 20 };
    // Filtered-out events still move the cursor; read in bounded rounds.
    for _ in 0..rounds {
        let page = s
            .rooms
            .timeline(short_room, cursor, direction, limit.max(1), bound)?;
        let exhausted = page.len() < limit.max(1);
        for entry in &page {
            cursor = match direction {
                Direction::Backward => entry.count.saturating_sub(1),
                Direction::Forward => entry.count,
            };
            if chunk.len() < limit && filter.allows(&entry.pdu) && reader.can_see_entry(entry)? {
                senders.insert(entry.pdu.sender.clone());
                let viewer = caller.viewer();
                chunk.push(s.rooms.client_event_raw(
                    entry.short,
                    &entry.pdu,
                    Some(&room),
                    viewer,
                )?);
            }
            if chunk.len() >= limit {
                break;
            }
        }
        if chunk.len() >= limit || exhausted {
            if !exhausted || chunk.len() >= limit {
                end = Some(cursor);
            }
            break;
        }
    }
    let mut response = MessagesPage {
        chunk,
        start: from.to_string(),
        end: end.map(|e| e.to_string()),
        state: Vec::new(),
    };
    let member_state = match filter.lazy_load_members && !senders.is_empty() {
        true => reader.readable_state().ok(),
        false => None,
    };
    if let Some(hash) = member_state {
        let mut state = Vec::new();
        for sender in senders {
            if let Some(ev) = s
                .rooms
                .state_event(hash, "m.room.member", sender.as_str())?
            {
                state.push(ev.to_client(Some(&room), Default::default()));
            }
        }
        response.state = state;
    }
    Ok(Json(response))
}

/// The `/messages` answer; events stay JSON text from store to socket.
#[derive(serde::Serialize)]
pub struct MessagesPage {
    chunk: Vec<Box<serde_json::value::RawValue>>,
    start: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    state: Vec<Value>,
}

pub async fn members(
    State(s): S,
    Auth(caller): Auth,
    Path(room): Path<String>,
    Query(q): Q,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    let reader = s.rooms.reader(&caller.user_id, &room)?;
    let hash = match query_param(&q, "at") {
        Some(at) => reader.readable_state_at(parse_token(at)?)?,
        None => reader.readable_state()?,
    };
    let membership = query_param(&q, "membership");
    let not_membership = query_param(&q, "not_membership");
    let state = s.rooms.state.load(hash)?;
    let mut chunk = Vec::new();
    for (short_key, short_event) in state.iter() {
        let (kind, _) = s.rooms.state.key_of(*short_key)?;
        if kind != "m.room.member" {
            continue;
        }
        let pdu = s.rooms.pdu_by_short(*short_event)?;
        let m = pdu
            .content_value()
            .get("membership")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if membership.is_some_and(|want| want != m) || not_membership.is_some_and(|not| not == m) {
            continue;
        }
        chunk.push(
            s.rooms
                .client_event(*short_event, &pdu, Some(&room), None)?,
        );
    }
    Ok(Json(json!({ "chunk": chunk })))
}

pub async fn joined_members(
    State(s): S,
    Auth(caller): Auth,
    Path(room): Path<String>,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    let reader = s.rooms.reader(&caller.user_id, &room)?;
    if reader.until != u64::MAX {
        return Err(Error::forbidden("You are not in this room"));
    }
    let (short_room, record) = s.rooms.record_of(&room)?;
    let mut joined = serde_json::Map::new();
    for (user, membership) in s.rooms.members(short_room)? {
        if membership != "join" {
            continue;
        }
        let content = s
            .rooms
            .state_event(record.state, "m.room.member", user.as_str())?
            .map(|e| e.content_value())
            .unwrap_or(Value::Null);
        joined.insert(
            user.to_string(),
            json!({ "display_name": content.get("displayname"), "avatar_url": content.get("avatar_url") }),
        );
    }
    Ok(Json(json!({ "joined": joined })))
}
