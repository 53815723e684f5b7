//! The public room directory's listing, as `/publicRooms` answers it to
//! clients and to other servers: the published rooms, most members first,
//! filtered by a search term, in pages.

use ruma::directory::{PublicRoomsChunk, PublicRoomsChunkInit};
use ruma::events::room::guest_access::GuestAccess;
use ruma::events::room::history_visibility::HistoryVisibility;
use ruma::room::JoinRuleKind;
use ruma::{RoomId, UInt};
use serde::de::DeserializeOwned;

use super::Services;
use crate::error::{Error, Result};

/// One field of a state event's content (state key ""), if it is there
/// and of the expected type.
pub(crate) fn state_field<T: DeserializeOwned>(
    s: &Services,
    state: u64,
    kind: &str,
    field: &str,
) -> Result<Option<T>> {
    Ok(s.rooms.state_event(state, kind, "")?.and_then(|event| {
        let value = event.content_value().get(field)?.clone();
        serde_json::from_value(value).ok()
    }))
}

/// One directory entry, from the room's current state.
fn room_summary(s: &Services, room: &RoomId) -> Result<PublicRoomsChunk> {
    let (short, record) = s.rooms.record_of(room)?;
    let state = record.state;
    let joined = s
        .rooms
        .members(short)?
        .iter()
        .filter(|(_, m)| m == "join")
        .count();
    let history: Option<HistoryVisibility> =
        state_field(s, state, "m.room.history_visibility", "history_visibility")?;
    let guests: Option<GuestAccess> = state_field(s, state, "m.room.guest_access", "guest_access")?;
    let mut entry = PublicRoomsChunk::from(PublicRoomsChunkInit {
        num_joined_members: UInt::new_saturating(joined as u64),
        room_id: room.to_owned(),
        world_readable: history == Some(HistoryVisibility::WorldReadable),
        guest_can_join: guests == Some(GuestAccess::CanJoin),
    });
    entry.join_rule =
        state_field(s, state, "m.room.join_rules", "join_rule")?.unwrap_or(JoinRuleKind::Invite);
    entry.name = state_field(s, state, "m.room.name", "name")?;
    entry.topic = state_field(s, state, "m.room.topic", "topic")?;
    entry.canonical_alias = state_field(s, state, "m.room.canonical_alias", "alias")?;
    entry.avatar_url = state_field(s, state, "m.room.avatar", "url")?;
    entry.room_type = state_field(s, state, "m.room.create", "type")?;
    Ok(entry)
}

/// Whether the entry's name, topic or alias contains `term`, in any case.
fn matches(entry: &PublicRoomsChunk, term: &str) -> bool {
    let term = term.to_lowercase();
    let alias = entry.canonical_alias.as_ref().map(|a| a.as_str());
    [entry.name.as_deref(), entry.topic.as_deref(), alias]
        .into_iter()
        .flatten()
        .any(|v| v.to_lowercase().contains(&term))
}

/// A page of the directory: every `/publicRooms` endpoint answers this.
pub struct Page {
    pub chunk: Vec<PublicRoomsChunk>,
    pub next_batch: Option<String>,
    pub prev_batch: Option<String>,
    pub total_room_count_estimate: Option<UInt>,
}

/// `answer` (any `/publicRooms` response: client or federation, GET or
/// POST, all with the same fields) filled from `page` (a [`Page`] or
/// another such response).
macro_rules! page_answer {
    ($answer:expr, $page:expr) => {{
        let page = $page;
        let mut answer = $answer;
        answer.chunk = page.chunk;
        answer.next_batch = page.next_batch;
        answer.prev_batch = page.prev_batch;
        answer.total_room_count_estimate = page.total_room_count_estimate;
        answer
    }};
}
pub(crate) use page_answer;

pub fn public_rooms(
    s: &Services,
    limit: Option<UInt>,
    since: Option<&str>,
    term: Option<&str>,
) -> Result<Page> {
    let mut entries = Vec::new();
    for room in s.rooms.published_rooms()? {
        let entry = room_summary(s, &room)?;
        if term.is_none_or(|t| matches(&entry, t)) {
            entries.push(entry);
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.num_joined_members));
    let total = entries.len();
    let start: usize = match since {
        Some(t) => t
            .parse()
            .map_err(|_| Error::invalid_param("Invalid since token"))?,
        None => 0,
    };
    let limit = limit
        .map_or(total, |l| usize::try_from(l).unwrap_or(usize::MAX))
        .max(1);
    let next = start.saturating_add(limit);
    Ok(Page {
        chunk: entries.into_iter().skip(start).take(limit).collect(),
        next_batch: (next < total).then(|| next.to_string()),
        prev_batch: (start > 0).then(|| start.saturating_sub(limit).to_string()),
        total_room_count_estimate: Some(UInt::new_saturating(total as u64)),
    })
}
