//! `GET /notifications`: the events that notified the user and that they
//! have not read yet, newest first.

use axum::routing::get;
use axum::Router;
use std::collections::hash_map::{Entry, HashMap};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use matrixos_storage::Direction;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::http::extract::{query_param, Auth};
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new().route(&super::v3("/notifications"), get(list))
}

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

pub async fn list(
    State(s): State<Arc<Services>>,
    Auth(caller): Auth,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<Value>> {
    let from = match query_param(&q, "from") {
        Some(token) => Some(
            token
                .parse::<u64>()
                .map_err(|_| Error::invalid_param("Invalid from token"))?,
        ),
        None => None,
    };
    let limit = match query_param(&q, "limit") {
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| Error::invalid_param("Invalid limit"))?
            .clamp(1, MAX_LIMIT),
        None => DEFAULT_LIMIT,
    };
    let only_highlight = query_param(&q, "only") == Some("highlight");
    // One more than asked for tells whether there is a next page.
    let mut rows = s
        .push
        .notifications(&caller.user_id, from, limit + 1, only_highlight)?;
    let next_token = (rows.len() > limit).then(|| rows[limit - 1].count.to_string());
    rows.truncate(limit);
    let mut notifications = Vec::with_capacity(rows.len());
    let mut readers = HashMap::new();
    for row in rows {
        let Some(record) = s.rooms.record(row.short_room)? else {
            continue;
        };
        let reader = match readers.entry(row.short_room) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(new) => new.insert(s.rooms.reader(&caller.user_id, &record.room_id).ok()),
        };
        let entry = s.rooms.timeline(
            row.short_room,
            row.count,
            Direction::Backward,
            1,
            Some(row.count.saturating_sub(1)),
        )?;
        let Some(entry) = entry.into_iter().next() else {
            continue;
        };
        match reader {
            Some(reader) if reader.can_see_entry(&entry)? => {}
            _ => continue,
        }
        let event = s.rooms.client_event(
            entry.short,
            &entry.pdu,
            Some(&record.room_id),
            caller.viewer(),
        )?;
        notifications.push(json!({
            "actions": row.actions,
            "event": event,
            "read": false,
            "room_id": record.room_id,
            "ts": entry.pdu.origin_server_ts,
        }));
    }
    let mut out = json!({ "notifications": notifications });
    if let Some(token) = next_token {
        out["next_token"] = json!(token);
    }
    Ok(Json(out))
}
