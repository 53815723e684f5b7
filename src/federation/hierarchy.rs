//! Space hierarchies across servers. Served: `/hierarchy/{roomId}` gives
//! another server, for its users, a space held here with its children's
//! summaries (those it may see; the others named as inaccessible).
//! Asked: a client's hierarchy walk reaching a room not held here asks the
//! servers its parent names; answers are kept five minutes (as Synapse
//! does), so paging through a space does not ask again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use parking_lot::Mutex;
use ruma::api::federation::space::{
    get_hierarchy::v1 as get_hierarchy, SpaceHierarchyParentSummary,
};
use ruma::{OwnedRoomId, OwnedServerName, RoomId};

use super::acl;
use super::client::Bounds;
use super::x_matrix::Origin;
use crate::bounded_map::BoundedMap;
use crate::client::room_summary::{preview, Viewer};
use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;
use crate::spaces::local_children;

pub fn routes() -> Router<Arc<Services>> {
    Router::new().reading(hierarchy)
}

/// Children summarised in one answer (Synapse's bound too).
const MAX_CHILDREN: usize = 50;
/// How long another server's answer is used.
const KEEP: Duration = Duration::from_secs(5 * 60);
/// Answers kept at once: with `BOUNDS`, at most 100 MiB however large
/// the answers other servers send.
const MAX_KEPT: usize = 100;
/// Servers asked in turn for one room.
const MAX_ASKED: usize = 3;
/// An answer's size and time limits.
const BOUNDS: Bounds = Bounds {
    max_response: 1024 * 1024,
    timeout: Duration::from_secs(15),
};

fn hierarchy(
    s: Arc<Services>,
    req: Ruma<get_hierarchy::Request>,
) -> Result<get_hierarchy::Response> {
    let Origin(origin) = &req.caller;
    let room = &req.body.room_id;
    acl::check(&s, room, origin)?;
    let viewer = Viewer::Server(origin);
    let not_found = || Error::not_found("Unknown room");
    let root = preview(&s, room, viewer)?.ok_or_else(not_found)?;
    let is_space = root.summary.room_type == Some(ruma::room::RoomType::Space);
    let children = if is_space {
        local_children(&s, root.state, req.body.suggested_only)?
    } else {
        Vec::new()
    };
    let children_state = children.iter().map(|c| c.event.clone()).collect();
    let mut response = get_hierarchy::Response::new(SpaceHierarchyParentSummary::new(
        root.summary,
        children_state,
    ));
    for child in children.iter().take(MAX_CHILDREN) {
        if s.rooms.short_room(&child.room)?.is_none() {
            continue;
        }
        match preview(&s, &child.room, viewer)? {
            Some(seen) => response.children.push(seen.summary),
            None => response.inaccessible_children.push(child.room.clone()),
        }
    }
    Ok(response)
}

type Answer = Arc<get_hierarchy::Response>;

/// Other servers' answers, by room and `suggested_only`.
pub struct RemoteHierarchies(Mutex<BoundedMap<(OwnedRoomId, bool), Answer>>);

impl Default for RemoteHierarchies {
    fn default() -> Self {
        Self(Mutex::new(BoundedMap::new(MAX_KEPT)))
    }
}

impl RemoteHierarchies {
    fn kept(&self, key: &(OwnedRoomId, bool)) -> Option<Answer> {
        let mut map = self.0.lock();
        map.expire(Instant::now(), KEEP);
        map.get(key).cloned()
    }

    fn keep(&self, key: (OwnedRoomId, bool), answer: Answer) {
        self.0.lock().insert(key, answer, Instant::now());
    }
}

/// A room not held here as one of `via` describes it, with its children
/// if it is a space: the first answer from a server that has it.
pub async fn ask(
    s: &Services,
    room: &RoomId,
    via: &[OwnedServerName],
    suggested_only: bool,
) -> Option<Answer> {
    let key = (room.to_owned(), suggested_only);
    if let Some(answer) = s.federation.hierarchies.kept(&key) {
        return Some(answer);
    }
    for server in via.iter().filter(|v| **v != s.server_name).take(MAX_ASKED) {
        let mut request = get_hierarchy::Request::new(room.to_owned());
        request.suggested_only = suggested_only;
        match s
            .federation
            .client
            .send_bounded(server, request, BOUNDS)
            .await
        {
            Ok(answer) if answer.room.summary.room_id == room => {
                let answer = Arc::new(answer);
                s.federation.hierarchies.keep(key, answer.clone());
                return Some(answer);
            }
            Ok(_) => tracing::info!(%room, %server, "hierarchy answer for another room"),
            Err(e) => tracing::info!(%room, %server, error = %e, "hierarchy not fetched"),
        }
    }
    None
}
