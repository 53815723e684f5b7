//! `/v1/rooms/{roomId}/hierarchy`: a space's rooms, depth first, each
//! child in its space's order (`order`, then the time it was added, then
//! its id), as far as `max_depth`, only suggested ones when asked; rooms
//! the caller may not preview are left out with what is below them.
//! Pages (`from`/`next_batch`) walk the same tree again past the rooms
//! already given, so no server-side session is kept.

use std::collections::HashSet;
use std::sync::Arc;

use axum::Router;
use ruma::api::client::space::{get_hierarchy, SpaceHierarchyRoomsChunk};
use ruma::serde::Raw;
use ruma::{OwnedRoomId, RoomId, UserId};
use serde_json::{json, Value};

use super::room_summary::preview;
use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::rooms::Pdu;
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new().reading(hierarchy)
}

/// Rooms per page unless fewer are asked for, and at most.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 100;
/// Rooms one request looks at, however deep and wide the tree.
const MAX_VISITED: usize = 2_000;
/// An `order` longer than this, or not printable ASCII, is ignored.
const MAX_ORDER_LEN: usize = 50;

/// An `m.space.child` event that names a child (its `via` is a list with
/// something in it).
struct Child {
    room: OwnedRoomId,
    order: Option<String>,
    pdu: Arc<Pdu>,
}

fn valid_order(order: &str) -> bool {
    order.len() <= MAX_ORDER_LEN && order.chars().all(|c| (' '..='~').contains(&c))
}

/// A space's children, in the order the spec gives them.
fn children(s: &Services, state: u64, suggested_only: bool) -> Result<Vec<Child>> {
    let mut out = Vec::new();
    for (short_key, short) in s.rooms.state.load(state)?.iter() {
        let (kind, key) = s.rooms.state.key_of(*short_key)?;
        if kind != "m.space.child" {
            continue;
        }
        let Ok(room) = RoomId::parse(key.as_str()) else {
            continue;
        };
        let pdu = s.rooms.pdu_by_short(*short)?;
        let content = pdu.content_value();
        let via = content.get("via").and_then(Value::as_array);
        if via.is_none_or(|v| v.is_empty()) {
            continue;
        }
        let suggested = content.get("suggested").and_then(Value::as_bool) == Some(true);
        if suggested_only && !suggested {
            continue;
        }
        let order = content
            .get("order")
            .and_then(Value::as_str)
            .filter(|o| valid_order(o))
            .map(str::to_owned);
        out.push(Child { room, order, pdu });
    }
    out.sort_by(|a, b| {
        let key = |c: &Child| {
            (
                c.order.is_none(),
                c.order.clone(),
                c.pdu.origin_server_ts,
                c.room.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    Ok(out)
}

/// A child event as the hierarchy shows it (stripped, with its time).
fn child_state(child: &Child) -> Result<Raw<ruma::events::space::child::HierarchySpaceChildEvent>> {
    let pdu = &child.pdu;
    let event = json!({
        "type": "m.space.child",
        "state_key": child.room,
        "content": pdu.content_value(),
        "sender": pdu.sender,
        "origin_server_ts": pdu.origin_server_ts,
    });
    let raw = serde_json::value::to_raw_value(&event)
        .map_err(|e| Error::internal(format!("child event: {e}")))?;
    Ok(Raw::from_json(raw))
}

/// Where a page starts and what it was asked with: a page token holds the
/// rooms given before it and the options, which must not change.
struct Page {
    skip: usize,
    max_depth: Option<u64>,
    suggested_only: bool,
}

impl Page {
    fn token(&self) -> String {
        let depth = self.max_depth.map_or("-".to_owned(), |d| d.to_string());
        format!("{}.{depth}.{}", self.skip, u8::from(self.suggested_only))
    }

    fn parse(token: &str) -> Option<Page> {
        let mut parts = token.split('.');
        let skip = parts.next()?.parse().ok()?;
        let max_depth = match parts.next()? {
            "-" => None,
            depth => Some(depth.parse().ok()?),
        };
        let suggested_only = match parts.next()? {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        parts.next().is_none().then_some(Page {
            skip,
            max_depth,
            suggested_only,
        })
    }
}

fn hierarchy(
    s: Arc<Services>,
    req: Ruma<get_hierarchy::v1::Request>,
) -> Result<get_hierarchy::v1::Response> {
    let body = &req.body;
    let user = &req.caller.user_id;
    let mut page = Page {
        skip: 0,
        max_depth: body.max_depth.map(u64::from),
        suggested_only: body.suggested_only,
    };
    if let Some(from) = &body.from {
        let asked =
            Page::parse(from).ok_or_else(|| Error::invalid_param("Unknown pagination token"))?;
        if (asked.max_depth, asked.suggested_only) != (page.max_depth, page.suggested_only) {
            return Err(Error::invalid_param("Pagination parameters don't match"));
        }
        page.skip = asked.skip;
    }
    let limit = match body.limit.map(u64::from) {
        Some(0) => return Err(Error::invalid_param("limit must be greater than 0")),
        Some(n) => usize::try_from(n).map_or(MAX_LIMIT, |n| n.min(MAX_LIMIT)),
        None => DEFAULT_LIMIT,
    };
    if preview(&s, &body.room_id, Some(user))?.is_none() {
        return Err(Error::forbidden(format!(
            "You may not preview {}",
            body.room_id
        )));
    }
    let (rooms, more) = walk(&s, user, &body.room_id, &page, limit)?;
    let mut response = get_hierarchy::v1::Response::new();
    response.rooms = rooms;
    if more {
        page.skip += response.rooms.len();
        response.next_batch = Some(page.token());
    }
    Ok(response)
}

/// The page's rooms, depth first from `root`, and whether more follow.
fn walk(
    s: &Services,
    user: &UserId,
    root: &RoomId,
    page: &Page,
    limit: usize,
) -> Result<(Vec<SpaceHierarchyRoomsChunk>, bool)> {
    let mut stack: Vec<(OwnedRoomId, u64)> = vec![(root.to_owned(), 0)];
    let mut seen = HashSet::new();
    let mut shown = 0usize;
    let mut out = Vec::new();
    while let Some((room, depth)) = stack.pop() {
        if !seen.insert(room.clone()) || seen.len() > MAX_VISITED {
            continue;
        }
        let Some(preview) = preview(s, &room, Some(user))? else {
            continue;
        };
        if out.len() == limit {
            return Ok((out, true));
        }
        let is_space = preview.summary.room_type == Some(ruma::room::RoomType::Space);
        let kids = if is_space {
            children(s, preview.state, page.suggested_only)?
        } else {
            Vec::new()
        };
        if page.max_depth.is_none_or(|max| depth < max) {
            stack.extend(kids.iter().rev().map(|c| (c.room.clone(), depth + 1)));
        }
        shown += 1;
        if shown > page.skip {
            let state = kids.iter().map(child_state).collect::<Result<_>>()?;
            out.push(SpaceHierarchyRoomsChunk::new(preview.summary, state));
        }
    }
    Ok((out, false))
}
