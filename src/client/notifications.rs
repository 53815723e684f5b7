//! `GET /notifications`: the events that notified the user and that they
//! have not read yet, newest first.

use std::collections::hash_map::{Entry, HashMap};
use std::sync::Arc;

use axum::Router;
use matrixos_storage::Direction;
use ruma::api::client::push::get_notifications::v3::{Notification, Request, Response};
use ruma::serde::Raw;

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::rooms::timeline::TimelinePos;
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new().endpoint(list)
}

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

async fn list(s: Arc<Services>, req: Ruma<Request>) -> Result<Response> {
    let caller = req.caller;
    let q = req.body;
    let from = q
        .from
        .map(|token| {
            token
                .parse::<u64>()
                .map_err(|_| Error::invalid_param("Invalid from token"))
        })
        .transpose()?;
    let limit = q.limit.map_or(DEFAULT_LIMIT, |n| {
        usize::try_from(u64::from(n)).map_or(MAX_LIMIT, |n| n.clamp(1, MAX_LIMIT))
    });
    let only_highlight = q.only.as_deref() == Some("highlight");
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
        let at = TimelinePos::live(row.count);
        let entry = s.rooms.timeline(
            row.short_room,
            at,
            Direction::Backward,
            1,
            Some(at.before()),
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
        notifications.push(Notification::new(
            serde_json::from_value(row.actions)?,
            Raw::from_json(serde_json::value::to_raw_value(&event)?),
            false,
            record.room_id,
            entry.pdu.origin_server_ts,
        ));
    }
    let mut out = Response::new(notifications);
    out.next_token = next_token;
    Ok(out)
}
