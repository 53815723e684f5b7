//! `/search`: messages, room names and topics the caller may see in the
//! rooms they are in (and the rooms those replaced, when asked for by
//! room), best match first or newest first, with highlights, context,
//! the rooms' state, grouping and `next_batch` paging.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::routing::post;
use axum::{Json, Router};
use ruma::api::client::search::search_events::v3::{
    Categories, Criteria, EventContextResult, GroupingKey, OrderBy, ResultGroup, ResultGroupMap,
    ResultRoomEvents, SearchKeys, SearchResult, UserProfile,
};
use ruma::serde::Raw;
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UInt, UserId};
use serde_json::{json, Value};

use super::room_context::{around, Around};
use super::room_history::{event_filter, page_limit};
use crate::error::{Error, Result};
use crate::http::auth::Caller;
use crate::http::extract::{Auth, JsonBody};
use crate::rooms::visibility::RoomReader;
use crate::rooms::Pdu;
use crate::search::query::Parsed;
use crate::search::{tokens, Ask, Hit, Keys, Ranking, Search};
use crate::services::Services;
use crate::sync::filter::EventFilter;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route("/_matrix/client/v3/search", post(search))
        .route("/_matrix/client/r0/search", post(search))
}

/// Results per page unless the filter asks for fewer (Synapse's default).
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 50;
/// Context events on either side of a result, at most.
const MAX_CONTEXT: usize = 20;
/// Index lookups one page makes for results the caller may see; past
/// that the page ends early and `next_batch` goes on from there.
const MAX_ROUNDS: usize = 8;
/// How far a room's predecessors are followed.
const MAX_PREDECESSORS: usize = 10;

/// The request's categories; a missing field is `M_MISSING_PARAM`, any
/// other mistake `M_BAD_JSON`.
fn categories(mut body: Value) -> Result<Categories> {
    let categories = body
        .get_mut("search_categories")
        .map(Value::take)
        .ok_or_else(|| Error::missing_param("Missing search_categories"))?;
    serde_json::from_value(categories).map_err(|e| {
        let message = format!("Invalid search request: {e}");
        if e.to_string().starts_with("missing field") {
            Error::missing_param(message)
        } else {
            Error::bad_json(message)
        }
    })
}

/// The server's index; `M_UNKNOWN` (400) when search is off, as Synapse
/// answers with `enable_search: false`.
fn index(s: &Services) -> Result<&Search> {
    s.search.as_deref().ok_or_else(|| {
        Error::new(
            axum::http::StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "Search is disabled on this homeserver",
        )
    })
}

/// Answered as JSON written here, not through ruma's response type,
/// which leaves out an empty `results` list that clients (matrix-js-sdk)
/// read unconditionally, as Synapse always sends it.
async fn search(
    State(s): State<Arc<Services>>,
    Auth(caller): Auth,
    RawQuery(query): RawQuery,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let next_batch = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "next_batch")
        .map(|(_, v)| v.into_owned());
    let Some(criteria) = categories(body)?.room_events else {
        return Ok(Json(json!({ "search_categories": {} })));
    };
    index(&s)?.caught_up(s.store.position()).await;
    let events =
        crate::blocking::reads(|| room_events(&s, &caller, &criteria, next_batch.as_deref()))?;
    let mut events =
        serde_json::to_value(events).map_err(|e| Error::internal(format!("search answer: {e}")))?;
    for field in ["results", "highlights"] {
        if events.get(field).is_none() {
            events[field] = json!([]);
        }
    }
    Ok(Json(
        json!({ "search_categories": { "room_events": events } }),
    ))
}

/// Where a page starts: the place before which `recent` goes on, or how
/// many of the best `rank` passes over.
fn parse_batch(token: Option<&str>, ranking: Ranking) -> Result<(Option<i64>, usize)> {
    let invalid = || Error::invalid_param("Invalid next_batch");
    let Some(token) = token else {
        return Ok((None, 0));
    };
    match ranking {
        Ranking::Recent => {
            let before = token.strip_prefix('r').and_then(|n| n.parse().ok());
            Ok((Some(before.ok_or_else(invalid)?), 0))
        }
        Ranking::Rank => {
            let skip = token.strip_prefix('k').and_then(|n| n.parse().ok());
            Ok((None, skip.ok_or_else(invalid)?))
        }
    }
}

fn keys_of(criteria: &Criteria) -> Keys {
    let Some(keys) = &criteria.keys else {
        return Keys {
            body: true,
            name: true,
            topic: true,
        };
    };
    let mut out = Keys::default();
    for key in keys {
        match key {
            SearchKeys::ContentBody => out.body = true,
            SearchKeys::ContentName => out.name = true,
            SearchKeys::ContentTopic => out.topic = true,
            _ => {}
        }
    }
    out
}

fn ranking_of(criteria: &Criteria) -> Result<Ranking> {
    match &criteria.order_by {
        None | Some(OrderBy::Rank) => Ok(Ranking::Rank),
        Some(OrderBy::Recent) => Ok(Ranking::Recent),
        Some(other) => Err(Error::invalid_param(format!(
            "Invalid order_by: {}",
            other.as_str()
        ))),
    }
}

/// The rooms searched: those the caller is in that the filter allows,
/// and, for rooms the filter names, the rooms they replaced.
fn rooms_searched(s: &Services, user: &UserId, filter: &EventFilter) -> Result<Vec<OwnedRoomId>> {
    let joined = s.rooms.joined_rooms(user)?;
    let mut rooms: Vec<OwnedRoomId> = joined
        .into_iter()
        .filter(|r| filter.allows_room(r.as_str()))
        .collect();
    if filter.rooms.is_some() {
        let mut earlier = Vec::new();
        for room in &rooms {
            let mut at = room.clone();
            for _ in 0..MAX_PREDECESSORS {
                let Some(previous) = predecessor(s, &at)? else {
                    break;
                };
                if rooms.contains(&previous) || earlier.contains(&previous) {
                    break;
                }
                earlier.push(previous.clone());
                at = previous;
            }
        }
        rooms.extend(earlier);
    }
    Ok(rooms)
}

/// The room a room's create event names as its predecessor.
fn predecessor(s: &Services, room: &RoomId) -> Result<Option<OwnedRoomId>> {
    let Some(short) = s.rooms.short_room(room)? else {
        return Ok(None);
    };
    let Some(record) = s.rooms.record(short)? else {
        return Ok(None);
    };
    let create = s.rooms.state_event(record.state, "m.room.create", "")?;
    Ok(create.and_then(|c| {
        let content = c.content_value();
        let id = content.get("predecessor")?.get("room_id")?.as_str()?;
        RoomId::parse(id).ok()
    }))
}

/// The searchable text of an event still holding it.
fn text_of(pdu: &Pdu) -> Option<String> {
    crate::search::text::searched_text(pdu).map(|(_, text)| text)
}

/// A result the caller may see.
struct Found {
    hit: Hit,
    room: OwnedRoomId,
    pdu: Arc<Pdu>,
    text: String,
}

/// Readers of the rooms searched, made as results need them.
struct Readers<'a> {
    s: &'a Services,
    user: &'a UserId,
    by_short: HashMap<u64, (OwnedRoomId, RoomReader<'a>)>,
}

impl<'a> Readers<'a> {
    fn of(&mut self, short_room: u64) -> Result<Option<&(OwnedRoomId, RoomReader<'a>)>> {
        if !self.by_short.contains_key(&short_room) {
            let (s, user) = (self.s, self.user);
            let Some(record) = s.rooms.record(short_room)? else {
                return Ok(None);
            };
            let reader = s.rooms.reader(user, &record.room_id)?;
            self.by_short.insert(short_room, (record.room_id, reader));
        }
        Ok(self.by_short.get(&short_room))
    }
}

/// A page of results: those found, how many match in all, and the token
/// of the next page.
fn page(
    s: &Services,
    readers: &mut Readers<'_>,
    ask: &mut Ask<'_>,
    filter: &EventFilter,
    limit: usize,
) -> Result<(Vec<Found>, usize, Option<String>)> {
    let mut found = Vec::new();
    let mut count = 0;
    for round in 0..MAX_ROUNDS {
        ask.take = limit * 2;
        let (hits, matching) = index(s)?.find(ask)?;
        if round == 0 {
            count = matching;
        }
        let exhausted = hits.len() < ask.take;
        for hit in hits {
            ask.before = Some(hit.order);
            ask.skip += 1;
            if let Some(result) = visible(s, readers, filter, hit)? {
                found.push(result);
                if found.len() == limit {
                    return Ok((found, count, Some(token(ask))));
                }
            }
        }
        if exhausted {
            return Ok((found, count, None));
        }
    }
    Ok((found, count, Some(token(ask))))
}

fn token(ask: &Ask<'_>) -> String {
    match ask.ranking {
        Ranking::Recent => format!("r{}", ask.before.unwrap_or(i64::MAX)),
        Ranking::Rank => format!("k{}", ask.skip),
    }
}

/// The hit as a result, if the caller may see it, the filter allows it
/// and it still has its text (not redacted).
fn visible(
    s: &Services,
    readers: &mut Readers<'_>,
    filter: &EventFilter,
    hit: Hit,
) -> Result<Option<Found>> {
    let Some(meta) = s.rooms.timeline_meta(hit.short_event)? else {
        return Ok(None);
    };
    let pdu = s.rooms.pdu_by_short(hit.short_event)?;
    let Some((room, reader)) = readers.of(meta.room)? else {
        return Ok(None);
    };
    if !filter.allows(&pdu) || !reader.can_see(hit.short_event, &pdu)? {
        return Ok(None);
    }
    let Some(text) = text_of(&pdu) else {
        return Ok(None);
    };
    Ok(Some(Found {
        hit,
        room: room.clone(),
        pdu,
        text,
    }))
}

fn room_events(
    s: &Services,
    caller: &Caller,
    criteria: &Criteria,
    next_batch: Option<&str>,
) -> Result<ResultRoomEvents> {
    let user = &caller.user_id;
    let ranking = ranking_of(criteria)?;
    let (before, skip) = parse_batch(next_batch, ranking)?;
    let filter = event_filter(criteria.filter.clone());
    let limit = criteria
        .filter
        .limit
        .map_or(DEFAULT_LIMIT, |l| page_limit(l, MAX_LIMIT))
        .max(1);
    let term = Parsed::parse(&criteria.search_term);
    let mut shorts = Vec::new();
    for room in rooms_searched(s, user, &filter)? {
        shorts.extend(s.rooms.short_room(&room)?);
    }
    let mut ask = Ask {
        term: &term,
        keys: keys_of(criteria),
        rooms: &shorts,
        ranking,
        before,
        skip,
        take: 0,
    };
    let mut readers = Readers {
        s,
        user,
        by_short: HashMap::new(),
    };
    let (found, count, next) = page(s, &mut readers, &mut ask, &filter, limit)?;

    let mut events = ResultRoomEvents::new();
    events.count = Some(UInt::try_from(count).unwrap_or(UInt::MAX));
    events.next_batch = next;
    events.highlights = highlights(index(s)?, &term, &found);
    let context = &criteria.event_context;
    let context_limits = (
        page_limit(context.before_limit, MAX_CONTEXT),
        page_limit(context.after_limit, MAX_CONTEXT),
    );
    for result in &found {
        let Some((_, reader)) = readers.of(s.rooms.meta(result.hit.short_event)?.room)? else {
            continue;
        };
        let event = reader.client_event(
            result.hit.short_event,
            &result.pdu,
            Some(&result.room),
            Some(&caller.device_id),
        )?;
        let mut out = SearchResult::new();
        out.rank = (ranking == Ranking::Rank).then_some(f64::from(result.hit.score));
        out.result = Some(Raw::from_json(event));
        out.context = context_of(
            s,
            reader,
            caller,
            result,
            context_limits,
            context.include_profile,
            &filter,
        )?;
        events.results.push(out);
    }
    if criteria.include_state == Some(true) {
        for result in &found {
            if events.state.contains_key(&result.room) {
                continue;
            }
            let Some((_, reader)) = readers.of(s.rooms.meta(result.hit.short_event)?.room)? else {
                continue;
            };
            let state = state_of(s, reader, &result.room)?;
            events.state.insert(result.room.clone(), state);
        }
    }
    for grouping in &criteria.groupings.group_by {
        if let Some(key) = &grouping.key {
            events.groups.insert(groups(key, &found));
        }
    }
    Ok(events)
}

/// The words of the results that matched, as they are written there.
fn highlights(index: &Search, term: &Parsed, found: &[Found]) -> Vec<String> {
    let mut analyzer = index.analyzer();
    let wanted = term.highlight_terms(&mut analyzer);
    let mut out = BTreeSet::new();
    for result in found {
        let mut stream = analyzer.token_stream(&result.text);
        while let Some(token) = tantivy::tokenizer::TokenStream::next(&mut stream) {
            let matches = wanted.iter().any(|(w, prefix)| {
                token.text == *w || (*prefix && token.text.starts_with(w.as_str()))
            });
            if let (true, Some(word)) =
                (matches, result.text.get(token.offset_from..token.offset_to))
            {
                out.insert(word.to_owned());
            }
        }
    }
    for (w, _) in wanted {
        if !w.chars().any(tokens::stands_alone) {
            out.insert(w);
        }
    }
    out.into_iter().collect()
}

/// The events around a result, with their senders' profiles if asked.
fn context_of(
    s: &Services,
    reader: &RoomReader<'_>,
    caller: &Caller,
    result: &Found,
    (before_n, after_n): (usize, usize),
    include_profile: bool,
    filter: &EventFilter,
) -> Result<EventContextResult> {
    let meta = s.rooms.meta(result.hit.short_event)?;
    let Around {
        before,
        after,
        start,
        end,
    } = around(s, reader, meta.position(), (before_n, after_n), filter)?;
    let client = |e: &crate::rooms::timeline::TimelineEntry| -> Result<Raw<_>> {
        let json =
            reader.client_event(e.short, &e.pdu, Some(&result.room), Some(&caller.device_id))?;
        Ok(Raw::from_json(json))
    };
    let mut context = EventContextResult::new();
    context.start = Some(start.token());
    context.end = Some(end.token());
    context.events_before = before.iter().map(client).collect::<Result<_>>()?;
    context.events_after = after.iter().map(client).collect::<Result<_>>()?;
    if include_profile {
        let senders: BTreeSet<&UserId> = std::iter::once(&result.pdu)
            .chain(before.iter().chain(&after).map(|e| &e.pdu))
            .map(|p| p.sender.as_ref())
            .collect();
        for sender in senders {
            let member = s
                .rooms
                .state_event(meta.state_after, "m.room.member", sender.as_str())?
                .map(|e| e.content_value());
            let text = |name: &str| {
                member
                    .as_ref()
                    .and_then(|c| c.get(name)?.as_str().map(str::to_owned))
            };
            let mut profile = UserProfile::new();
            profile.displayname = text("displayname");
            profile.avatar_url = text("avatar_url").map(Into::into);
            context.profile_info.insert(sender.to_owned(), profile);
        }
    }
    Ok(context)
}

/// The room's state as the caller may read it.
fn state_of(
    s: &Services,
    reader: &RoomReader<'_>,
    room: &RoomId,
) -> Result<Vec<Raw<ruma::events::AnyStateEvent>>> {
    let hash = reader.readable_state()?;
    let mut out = Vec::new();
    for (_, short) in s.rooms.state.load(hash)?.iter() {
        let pdu = s.rooms.pdu_by_short(*short)?;
        let json = s.rooms.client_event_raw(*short, &pdu, Some(room), None)?;
        out.push(Raw::from_json(json));
    }
    Ok(out)
}

/// The page's results grouped by room or by sender, groups in the order
/// their first result came.
fn groups(key: &GroupingKey, found: &[Found]) -> ResultGroupMap {
    fn grouped<K: Ord + Clone>(
        found: &[Found],
        key_of: impl Fn(&Found) -> K,
    ) -> BTreeMap<K, ResultGroup> {
        let mut out: BTreeMap<K, ResultGroup> = BTreeMap::new();
        for result in found {
            let order = UInt::try_from(out.len()).unwrap_or(UInt::MAX);
            let group = out.entry(key_of(result)).or_insert_with(|| {
                let mut group = ResultGroup::new();
                group.order = Some(order);
                group
            });
            let id: OwnedEventId = result.pdu.event_id.clone();
            group.results.push(id);
        }
        out
    }
    match key {
        GroupingKey::Sender => {
            ResultGroupMap::Sender(grouped(found, |r| -> OwnedUserId { r.pdu.sender.clone() }))
        }
        _ => ResultGroupMap::RoomId(grouped(found, |r| r.room.clone())),
    }
}
