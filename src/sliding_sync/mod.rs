//! Simplified sliding sync (MSC4186), the sync of Element X: lists of the
//! user's rooms cut to ranges, room subscriptions and extensions, over a
//! connection whose positions are kept in the database.

mod bump;
pub mod connection;
mod extensions;
mod list;
mod request;
mod response;
mod room;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::routing::post;
use axum::{Json, Router};
use matrixos_storage::records::SlidingPosition;

pub use bump::BumpStamps;
use connection::{Connection, Pos};
use extensions::{Extensions, RoomSources};
use list::FilterFacts;
use request::{RoomConfig, SyncRequest};
use response::{ListCount, SyncResponse};
use room::{Answer, RoomAsk};

use crate::error::{Error, Result};
use crate::http::extract::{Auth, JsonBody};
use crate::http::Caller;
use crate::services::Services;

/// Where clients find it (MSC4186's unstable prefix, as Synapse serves it).
pub const PATH: &str = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync";

/// Longest long-poll a client may ask for.
const MAX_TIMEOUT: Duration = Duration::from_secs(120);

pub fn routes() -> Router<Arc<Services>> {
    Router::new().route(PATH, post(sync))
}

/// The query: `pos`, `timeout` (ms) and `set_presence`.
struct Query {
    pos: Option<Pos>,
    timeout: Duration,
    set_presence: Option<String>,
}

impl Query {
    fn parse(query: Option<&str>) -> Result<Self> {
        let mut out = Query {
            pos: None,
            timeout: Duration::ZERO,
            set_presence: None,
        };
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "pos" => out.pos = Some(Pos::parse(&value)?),
                "timeout" => {
                    let ms = value
                        .parse::<u64>()
                        .map_err(|_| Error::invalid_param("timeout must be a number"))?;
                    out.timeout = Duration::from_millis(ms).min(MAX_TIMEOUT);
                }
                "set_presence" => out.set_presence = Some(value.into_owned()),
                _ => {}
            }
        }
        Ok(out)
    }
}

/// How long an unknown or expired position waits for its answer. Element
/// X's sync service (matrix-sdk-ui 0.18) starts its room list and
/// encryption syncs together and, when one fails, stops the other; a
/// failure answered before the other has started leaves that one running
/// alone, and the room list never syncs again. A pause this short lets
/// both start first, and costs a client that was away long enough for its
/// connection to be forgotten nothing it would notice.
const UNKNOWN_POS_PAUSE: Duration = Duration::from_millis(250);

async fn sync(
    State(s): State<Arc<Services>>,
    Auth(caller): Auth,
    RawQuery(query): RawQuery,
    JsonBody(body): JsonBody,
) -> Result<Json<SyncResponse>> {
    if !s.config.sliding_sync {
        return Err(Error::unrecognized(
            "Sliding sync is turned off on this server",
        ));
    }
    let query = Query::parse(query.as_deref())?;
    let req = SyncRequest::parse(body)?;
    let conn_id = req.conn_id.as_deref().unwrap_or("");
    let opened = Connection::open(
        &s,
        &caller.user_id,
        &caller.device_id,
        conn_id,
        query.pos.as_ref(),
    );
    let connection = match opened {
        Err(e) if e.errcode == "M_UNKNOWN_POS" => {
            tokio::time::sleep(UNKNOWN_POS_PAUSE).await;
            return Err(e);
        }
        opened => opened?,
    };
    let presence = query.set_presence.as_deref().unwrap_or("online");
    crate::sync::apply_set_presence(&s, &caller.user_id, presence).await?;
    let since = query.pos.as_ref().map_or(0, |p| p.stream);
    let deadline = tokio::time::Instant::now() + query.timeout;
    let ((mut answer, sent), stream) = loop {
        // Subscribed before looking, so that a write landing while the
        // answer is built still wakes the wait.
        let joined = s.rooms.joined_rooms(&caller.user_id)?;
        let mut waiting = s.store.notifier.subscribe(&caller.user_id, joined.iter());
        s.sends_in_flight
            .settled(&caller.user_id, &caller.device_id)
            .await;
        let next = s.store.position();
        let since = since.min(next);
        let built = build(&s, &caller, &req, &connection.from, (since, next)).await?;
        let news = !built.0.rooms.is_empty() || built.0.extensions.has_news();
        if news || query.pos.is_none() || tokio::time::Instant::now() >= deadline {
            break (built, next);
        }
        if tokio::time::timeout_at(deadline, waiting.changed())
            .await
            .is_err()
        {
            break (built, next);
        }
    };
    s.presence.note_seen(&caller.user_id);
    let id = connection.save(&s, sent).await?;
    answer.pos = Pos { id, stream }.token();
    answer.txn_id = req.txn_id;
    Ok(Json(answer))
}

/// Merges the settings of a room that several lists or a subscription ask
/// for.
fn ask_for(asks: &mut BTreeMap<usize, RoomConfig>, index: usize, config: &RoomConfig) {
    asks.entry(index)
        .and_modify(|c| c.merge(config))
        .or_insert_with(|| config.clone());
}

/// The answer at stream position `next`, and what the connection then has.
async fn build(
    s: &Services,
    caller: &Caller,
    req: &SyncRequest,
    from: &SlidingPosition,
    (since, next): (u64, u64),
) -> Result<(SyncResponse, SlidingPosition)> {
    let context = Answer {
        s,
        caller,
        since,
        next,
        ignored: &s.account_data.ignored_users(&caller.user_id)?,
    };
    // Reads only: it may run twice.
    let (mut answer, sources, sent) =
        crate::blocking::reads(|| lists_and_rooms(&context, req, from))?;
    let extensions = Extensions {
        s,
        caller,
        since,
        next,
        sources: &sources,
    };
    answer.extensions = extensions.build(&req.extensions).await?;
    Ok((answer, sent))
}

/// The lists' counts and the rooms' parts; where each room came from; what
/// the connection has after them.
fn lists_and_rooms(
    context: &Answer<'_>,
    req: &SyncRequest,
    from: &SlidingPosition,
) -> Result<(SyncResponse, RoomSources, SlidingPosition)> {
    let (s, user) = (context.s, &context.caller.user_id);
    let candidates = list::candidates(s, user, context.since, context.next)?;
    let mut facts = FilterFacts::new(s, user);
    let mut answer = SyncResponse::default();
    let mut sources = RoomSources::default();
    // Index into `candidates` → the settings asked for.
    let mut asks: BTreeMap<usize, RoomConfig> = BTreeMap::new();
    for (name, list) in &req.lists {
        let (count, picked) = list::select(&mut facts, list, &candidates)?;
        answer.lists.insert(name.clone(), ListCount { count });
        for index in picked {
            ask_for(&mut asks, index, &list.config);
            let room = candidates[index].room_id.clone();
            sources.lists.entry(room).or_default().push(name.clone());
        }
    }
    let index_of: BTreeMap<&ruma::RoomId, usize> = match req.room_subscriptions.is_empty() {
        true => BTreeMap::new(),
        false => candidates
            .iter()
            .enumerate()
            .map(|(i, c)| (&*c.room_id, i))
            .collect(),
    };
    for (room_id, config) in &req.room_subscriptions {
        // Rooms the user has no membership of are not answered (as
        // Synapse does): nothing about them is told.
        if let Some(&index) = index_of.get(&**room_id) {
            ask_for(&mut asks, index, config);
            sources.subscribed.insert(room_id.clone());
        }
    }
    let mut sent = from.clone();
    for (index, config) in &asks {
        let room = &candidates[*index];
        let was_sent = from.rooms.get(room.room_id.as_str());
        let sent_pairs = was_sent
            .and_then(|r| from.configs.get(r.config as usize))
            .map_or(&[][..], Vec::as_slice);
        let ask = RoomAsk {
            room,
            config,
            sent: was_sent,
            sent_pairs,
            is_dm: facts.is_dm(&room.room_id)?,
        };
        let Some((part, mut record)) = context.room(&ask)? else {
            continue;
        };
        record.config = config_index(&mut sent, config.pairs());
        if part.initial == Some(true) {
            sources.initial.insert(room.room_id.clone());
        }
        sent.rooms.insert(room.room_id.to_string(), record);
        answer.rooms.insert(room.room_id.to_string(), part);
    }
    drop_unused_configs(&mut sent);
    Ok((answer, sources, sent))
}

/// The index of `pairs` among the connection's `required_state` lists,
/// added if new.
fn config_index(sent: &mut SlidingPosition, pairs: Vec<(String, String)>) -> u32 {
    if let Some(i) = sent.configs.iter().position(|c| *c == pairs) {
        return i as u32;
    }
    sent.configs.push(pairs);
    (sent.configs.len() - 1) as u32
}

/// Forgets `required_state` lists no room refers to any more.
fn drop_unused_configs(sent: &mut SlidingPosition) {
    let used: BTreeSet<u32> = sent.rooms.values().map(|r| r.config).collect();
    if used.len() == sent.configs.len() {
        return;
    }
    let mut renumber = BTreeMap::new();
    let mut kept = Vec::new();
    for (i, config) in std::mem::take(&mut sent.configs).into_iter().enumerate() {
        if used.contains(&(i as u32)) {
            renumber.insert(i as u32, kept.len() as u32);
            kept.push(config);
        }
    }
    sent.configs = kept;
    for room in sent.rooms.values_mut() {
        room.config = renumber[&room.config];
    }
}
