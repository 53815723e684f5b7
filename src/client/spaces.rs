//! `/v1/rooms/{roomId}/hierarchy`: a space's rooms, depth first, each
//! child in its space's order (`order`, then the time it was added, then
//! its id), as far as `max_depth`, only suggested ones when asked; rooms
//! the caller may not preview are left out with what is below them.
//! Rooms not held here are asked of the servers their parent names (the
//! federation `/hierarchy`). Pages (`from`/`next_batch`) walk the same
//! tree again past the rooms already given, so no server-side session is
//! kept.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use axum::Router;
use ruma::api::client::space::{get_hierarchy, SpaceHierarchyRoomsChunk};
use ruma::room::{JoinRuleSummary, RoomSummary, RoomType};
use ruma::{OwnedRoomId, OwnedServerName, RoomId, UserId};

use super::room_summary::{preview, Viewer};
use crate::error::{Error, Result};
use crate::federation::hierarchy as remote;
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;
use crate::spaces::{local_children, remote_children, Child};

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new().endpoint(hierarchy)
}

/// Rooms per page unless fewer are asked for, and at most.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 100;
/// Rooms one request looks at, however deep and wide the tree.
const MAX_VISITED: usize = 2_000;
/// Rooms one request asks other servers about, and the time it spends
/// waiting for them: past either, rooms not held here are left out.
const MAX_REMOTE_ASKS: usize = 20;
const REMOTE_TIME: Duration = Duration::from_secs(30);

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

async fn hierarchy(
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
    let root = crate::blocking::reads(|| preview(&s, &body.room_id, Viewer::User(user)))?;
    if root.is_none() {
        return Err(Error::forbidden(format!(
            "You may not preview {}",
            body.room_id
        )));
    }
    let (rooms, more) = walk(&s, user, &body.room_id, &page, limit).await?;
    let mut response = get_hierarchy::v1::Response::new();
    response.rooms = rooms;
    if more {
        page.skip += response.rooms.len();
        response.next_batch = Some(page.token());
    }
    Ok(response)
}

/// A room as the walk sees it: its summary and, for a space, its children.
struct Visited {
    summary: RoomSummary,
    children: Vec<Child>,
}

/// What this server makes of a room by itself.
enum Local {
    Seen(Box<Visited>),
    Hidden,
    NotHeld,
}

/// What other servers said of rooms not held here, for one walk.
struct Remote {
    /// Children summarised in a parent's answer (`None`: inaccessible), so
    /// that a child which is no space needs no request of its own.
    summaries: HashMap<OwnedRoomId, Option<RoomSummary>>,
    asked: usize,
    deadline: Instant,
}

/// The page's rooms, depth first from `root`, and whether more follow.
async fn walk(
    s: &Services,
    user: &UserId,
    root: &RoomId,
    page: &Page,
    limit: usize,
) -> Result<(Vec<SpaceHierarchyRoomsChunk>, bool)> {
    let mut stack: Vec<(OwnedRoomId, Vec<OwnedServerName>, u64)> =
        vec![(root.to_owned(), Vec::new(), 0)];
    let mut seen = HashSet::new();
    let mut remote = Remote {
        summaries: HashMap::new(),
        asked: 0,
        deadline: Instant::now() + REMOTE_TIME,
    };
    let mut shown = 0usize;
    let mut out = Vec::new();
    while let Some((room, via, depth)) = stack.pop() {
        if !seen.insert(room.clone()) || seen.len() > MAX_VISITED {
            continue;
        }
        let local = crate::blocking::reads(|| visit_local(s, &room, user, page.suggested_only))?;
        let visited = match local {
            Local::Seen(visited) => *visited,
            Local::Hidden => continue,
            Local::NotHeld => {
                match visit_remote(s, &room, &via, user, page.suggested_only, &mut remote).await? {
                    Some(visited) => visited,
                    None => continue,
                }
            }
        };
        if out.len() == limit {
            return Ok((out, true));
        }
        if page.max_depth.is_none_or(|max| depth < max) {
            let below = visited.children.iter().rev();
            stack.extend(below.map(|c| (c.room.clone(), c.via.clone(), depth + 1)));
        }
        shown += 1;
        if shown > page.skip {
            let state = visited.children.iter().map(|c| c.event.clone()).collect();
            out.push(SpaceHierarchyRoomsChunk::new(visited.summary, state));
        }
    }
    Ok((out, false))
}

fn is_space(summary: &RoomSummary) -> bool {
    summary.room_type == Some(RoomType::Space)
}

fn visit_local(s: &Services, room: &RoomId, user: &UserId, suggested_only: bool) -> Result<Local> {
    if s.rooms.short_room(room)?.is_none() {
        return Ok(Local::NotHeld);
    }
    let Some(preview) = preview(s, room, Viewer::User(user))? else {
        return Ok(Local::Hidden);
    };
    let children = if is_space(&preview.summary) {
        local_children(s, preview.state, suggested_only)?
    } else {
        Vec::new()
    };
    Ok(Local::Seen(Box::new(Visited {
        summary: preview.summary,
        children,
    })))
}

/// A room not held here, as the servers `via` names describe it, if the
/// user may see it.
async fn visit_remote(
    s: &Services,
    room: &RoomId,
    via: &[OwnedServerName],
    user: &UserId,
    suggested_only: bool,
    remote: &mut Remote,
) -> Result<Option<Visited>> {
    match remote.summaries.get(room) {
        Some(None) => return Ok(None),
        Some(Some(summary)) if !is_space(summary) => {
            let visited = Visited {
                summary: summary.clone(),
                children: Vec::new(),
            };
            return Ok(may_see_remote(s, user, &visited.summary)?.then_some(visited));
        }
        _ => {}
    }
    if remote.asked == MAX_REMOTE_ASKS {
        return Ok(None);
    }
    remote.asked += 1;
    let asked = remote::ask(s, room, via, suggested_only);
    let Ok(Some(answer)) = tokio::time::timeout_at(remote.deadline, asked).await else {
        return Ok(None);
    };
    for child in &answer.children {
        remote
            .summaries
            .insert(child.room_id.clone(), Some(child.clone()));
    }
    for child in &answer.inaccessible_children {
        remote.summaries.insert(child.clone(), None);
    }
    let summary = answer.room.summary.clone();
    if !may_see_remote(s, user, &summary)? {
        return Ok(None);
    }
    let children = if is_space(&summary) {
        remote_children(&answer.room.children_state, suggested_only)
    } else {
        Vec::new()
    };
    Ok(Some(Visited { summary, children }))
}

/// Synapse's rule for a room another server describes: anyone may see it
/// if it is world-readable or anyone may join or knock; a restricted room,
/// members of a room that lets them in; otherwise those with a membership
/// in it here (an invite, a knock).
fn may_see_remote(s: &Services, user: &UserId, summary: &RoomSummary) -> Result<bool> {
    let allowed = match &summary.join_rule {
        JoinRuleSummary::Public | JoinRuleSummary::Knock | JoinRuleSummary::KnockRestricted(_) => {
            return Ok(true)
        }
        _ if summary.world_readable => return Ok(true),
        JoinRuleSummary::Restricted(rule) => rule.allowed_room_ids.as_slice(),
        _ => &[],
    };
    if !allowed.is_empty() {
        let joined = s.rooms.joined_rooms(user)?;
        if allowed.iter().any(|r| joined.contains(r)) {
            return Ok(true);
        }
    }
    let membership = s.rooms.membership(user, &summary.room_id)?;
    Ok(membership.is_some_and(|m| matches!(m.membership.as_str(), "join" | "invite" | "knock")))
}
