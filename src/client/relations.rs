//! `/relations` (the events relating to one, by relation and event type,
//! optionally recursing) and `/threads` (a room's threads by latest
//! activity).

use std::sync::Arc;

use axum::Router;
use ruma::api::client::relations::{
    get_relating_events, get_relating_events_with_rel_type,
    get_relating_events_with_rel_type_and_event_type,
};
use ruma::api::client::threads::get_threads;
use ruma::api::Direction;
use ruma::serde::Raw;
use ruma::{EventId, RoomId, UInt};

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::http::Caller;
use crate::rooms::visibility::RoomReader;
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    let threads = Router::new()
        .reading(threads)
        .layer(axum::middleware::from_fn(include_all_by_default));
    Router::new()
        .reading(relating)
        .reading(relating_by_type)
        .reading(relating_by_types)
        .merge(threads)
}

/// `include` is optional (`all` by default) but ruma's request type reads
/// it as required: a request without it gets it.
async fn include_all_by_default(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let uri = request.uri();
    let query = uri.query().unwrap_or_default();
    if !query.split('&').any(|p| p.starts_with("include=")) {
        let query = match query {
            "" => "include=all".to_owned(),
            q => format!("{q}&include=all"),
        };
        if let Ok(uri) = format!("{}?{query}", uri.path()).parse() {
            *request.uri_mut() = uri;
        }
    }
    next.run(request).await
}

/// Relations followed below the event when a client asks to recurse
/// (Synapse's depth).
const MAX_DEPTH: usize = 3;
/// Events in a page when the client names no limit (Synapse's default),
/// and the most it may ask for.
const DEFAULT_LIMIT: usize = 5;
const MAX_LIMIT: usize = 1000;

/// What a `/relations` request asks, whichever of its three paths.
struct Query<'a> {
    room: &'a RoomId,
    event: &'a EventId,
    rel_type: Option<String>,
    event_type: Option<String>,
    from: Option<&'a str>,
    to: Option<&'a str>,
    dir: Direction,
    limit: Option<UInt>,
    recurse: bool,
}

/// One page of relating events.
struct Page {
    chunk: Vec<Raw<ruma::events::AnyMessageLikeEvent>>,
    next_batch: Option<String>,
    recursion_depth: Option<UInt>,
}

fn token(text: Option<&str>, name: &str) -> Result<Option<u64>> {
    text.map(|t| {
        t.parse()
            .map_err(|_| Error::invalid_param(format!("Invalid {name} token")))
    })
    .transpose()
}

fn limit_of(limit: Option<UInt>) -> usize {
    limit.map_or(DEFAULT_LIMIT, |l| {
        usize::try_from(u64::from(l)).map_or(MAX_LIMIT, |l| l.clamp(1, MAX_LIMIT))
    })
}

/// The event the relations are asked of, if the caller may see it.
fn visible_event(s: &Services, reader: &RoomReader, event: &EventId) -> Result<u64> {
    let not_found = || Error::not_found("Event not found");
    let (short, pdu) = s.rooms.pdu(event)?.ok_or_else(not_found)?;
    if !reader.can_see(short, &pdu)? {
        return Err(not_found());
    }
    Ok(short)
}

fn page(s: &Services, caller: &Caller, q: Query<'_>) -> Result<Page> {
    let reader = s.rooms.reader(&caller.user_id, q.room)?;
    let parent = visible_event(s, &reader, q.event)?;
    let (from, to) = (token(q.from, "from")?, token(q.to, "to")?);
    let depth = if q.recurse { MAX_DEPTH } else { 1 };
    // Every matching relation down to the depth, by arrival.
    let mut found = Vec::new();
    let mut level = vec![parent];
    for _ in 0..depth {
        let mut next = Vec::new();
        for short in level {
            for child in s.rooms.children(short)? {
                let wanted = q.rel_type.as_ref().is_none_or(|t| *t == child.rel_type)
                    && q.event_type.as_ref().is_none_or(|t| *t == child.kind);
                if wanted {
                    next.push(child.short);
                }
            }
        }
        found.extend(&next);
        level = next;
    }
    found.sort_unstable();
    found.dedup();
    if q.dir == Direction::Backward {
        found.reverse();
    }
    let after_from = |short: &u64| match (q.dir, from) {
        (_, None) => true,
        (Direction::Backward, Some(f)) => *short < f,
        (Direction::Forward, Some(f)) => *short > f,
    };
    let before_to = |short: &u64| match (q.dir, to) {
        (_, None) => true,
        (Direction::Backward, Some(t)) => *short > t,
        (Direction::Forward, Some(t)) => *short < t,
    };
    let limit = limit_of(q.limit);
    let mut chunk = Vec::new();
    let mut next_batch = None;
    for short in found.into_iter().filter(after_from).take_while(before_to) {
        let pdu = s.rooms.pdu_by_short(short)?;
        if !reader.can_see(short, &pdu)? {
            continue;
        }
        if chunk.len() == limit {
            // One more exists: the next page starts after this one's last.
            next_batch = chunk.last().map(|(last, _): &(u64, _)| last.to_string());
            break;
        }
        let json = reader.client_event(short, &pdu, Some(q.room), Some(&caller.device_id))?;
        chunk.push((short, Raw::from_json(json)));
    }
    Ok(Page {
        next_batch,
        chunk: chunk.into_iter().map(|(_, e)| e).collect(),
        recursion_depth: q.recurse.then(|| UInt::from(MAX_DEPTH as u32)),
    })
}

/// The three `/relations` endpoints differ only in the filters their path
/// names: one handler each, the same page.
macro_rules! relations_endpoint {
    ($name:ident, $api:ident, |$b:ident| ($rel_type:expr, $event_type:expr)) => {
        fn $name(s: Arc<Services>, req: Ruma<$api::v1::Request>) -> Result<$api::v1::Response> {
            let $b = &req.body;
            let q = Query {
                room: &$b.room_id,
                event: &$b.event_id,
                rel_type: $rel_type,
                event_type: $event_type,
                from: $b.from.as_deref(),
                to: $b.to.as_deref(),
                dir: $b.dir,
                limit: $b.limit,
                recurse: $b.recurse,
            };
            let page = page(&s, &req.caller, q)?;
            let mut response = $api::v1::Response::new(page.chunk);
            response.next_batch = page.next_batch;
            response.recursion_depth = page.recursion_depth;
            Ok(response)
        }
    };
}

relations_endpoint!(relating, get_relating_events, |b| (None, None));
relations_endpoint!(relating_by_type, get_relating_events_with_rel_type, |b| (
    Some(b.rel_type.to_string()),
    None
));
relations_endpoint!(
    relating_by_types,
    get_relating_events_with_rel_type_and_event_type,
    |b| (Some(b.rel_type.to_string()), Some(b.event_type.to_string()))
);

/// `/threads`: the room's thread roots the caller may see, the most
/// recently active first; with `include=participated`, only threads the
/// caller started or replied in. Tokens are "latest_root" positions.
fn threads(
    s: Arc<Services>,
    req: Ruma<get_threads::v1::Request>,
) -> Result<get_threads::v1::Response> {
    let (caller, b) = (&req.caller, &req.body);
    let reader = s.rooms.reader(&caller.user_id, &b.room_id)?;
    let from = match b.from.as_deref() {
        None => None,
        Some(t) => Some(
            t.split_once('_')
                .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
                .ok_or_else(|| Error::invalid_param("Invalid from token"))?,
        ),
    };
    let mut threads: Vec<(u64, u64)> = s
        .rooms
        .threads(reader.short_room)?
        .into_iter()
        .map(|(root, latest)| (latest, root))
        .filter(|key| from.is_none_or(|f| *key < f))
        .collect();
    threads.sort_unstable_by(|a, b| b.cmp(a));
    let participated_only = b.include == get_threads::v1::IncludeThreads::Participated;
    let limit = limit_of(b.limit);
    let mut chunk = Vec::new();
    let mut next_batch = None;
    for (latest, root) in threads {
        let pdu = s.rooms.pdu_by_short(root)?;
        if !reader.can_see(root, &pdu)? {
            continue;
        }
        if participated_only && !participated(&s, &reader, root, &pdu)? {
            continue;
        }
        if chunk.len() == limit {
            next_batch = chunk
                .last()
                .map(|(key, _): &((u64, u64), _)| format!("{}_{}", key.0, key.1));
            break;
        }
        let json = reader.client_event(root, &pdu, Some(&b.room_id), Some(&caller.device_id))?;
        chunk.push(((latest, root), Raw::from_json(json)));
    }
    let mut response = get_threads::v1::Response::new(chunk.into_iter().map(|(_, e)| e).collect());
    response.next_batch = next_batch;
    Ok(response)
}

/// Whether the reader started the thread or replied in it.
fn participated(
    s: &Services,
    reader: &RoomReader,
    root: u64,
    pdu: &crate::rooms::Pdu,
) -> Result<bool> {
    if pdu.sender == reader.user() {
        return Ok(true);
    }
    for child in s.rooms.children(root)? {
        if child.rel_type == "m.thread"
            && s.rooms.pdu_by_short(child.short)?.sender == reader.user()
        {
            return Ok(true);
        }
    }
    Ok(false)
}
