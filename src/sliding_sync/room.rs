//! One room's part of a sliding sync answer: everything for a room the
//! connection has not sent (`initial`), else what changed since it was last
//! sent, however long the room was out of every range.

use std::collections::BTreeSet;

use matrixos_storage::records::SentRoom;
use matrixos_storage::Direction;
use ruma::{OwnedUserId, RoomId, UserId};
use serde_json::Value;

use super::list::Candidate;
use super::request::RoomConfig;
use super::response::{Hero, RawEvent, RoomResponse};
use crate::error::Result;
use crate::http::Caller;
use crate::rooms::state::StateMap;
use crate::rooms::timeline::{TimelineEntry, TimelinePos};
use crate::rooms::visibility::RoomReader;
use crate::services::Services;
use crate::sync::filter::Filter;
use crate::sync::room::RoomSync;

/// Most heroes named for a room without a name.
const HEROES: usize = 5;

/// What all rooms of one answer share.
pub struct Answer<'a> {
    pub s: &'a Services,
    pub caller: &'a Caller,
    /// The stream position the connection continues from (0: new).
    pub since: u64,
    pub next: u64,
    pub ignored: &'a BTreeSet<OwnedUserId>,
}

/// A room to answer about, and what the connection had of it.
pub struct RoomAsk<'a> {
    pub room: &'a Candidate,
    pub config: &'a RoomConfig,
    pub sent: Option<&'a SentRoom>,
    /// The `required_state` pairs it was sent with.
    pub sent_pairs: &'a [(String, String)],
    pub is_dm: bool,
}

/// Whether the pair (`kind`, `key`) of a `required_state` entry names the
/// state event (`event_kind`, `event_key`).
fn pair_matches(
    (kind, key): &(String, String),
    event_kind: &str,
    event_key: &str,
    me: &UserId,
) -> bool {
    (kind == "*" || kind == event_kind)
        && (key == "*" || key == event_key || (key == "$ME" && event_key == me.as_str()))
}

impl Answer<'_> {
    /// The room's part, with how far it is now sent; `None` when nothing
    /// changed for the client.
    pub fn room(&self, ask: &RoomAsk<'_>) -> Result<Option<(RoomResponse, SentRoom)>> {
        let membership = ask.room.membership.membership.as_str();
        let count = ask.room.membership.count;
        let unchanged = ask
            .sent
            .is_some_and(|sent| sent.membership == membership && sent.up_to >= count);
        let out = match membership {
            "invite" | "knock" if unchanged => None,
            "invite" | "knock" => Some(self.invited(ask)?),
            "join" => self.with_timeline(ask, self.next)?,
            _ if unchanged => None,
            _ => self.with_timeline(ask, count)?,
        };
        Ok(out.map(|room| {
            let sent = SentRoom {
                up_to: self.next,
                membership: membership.to_owned(),
                config: 0,
                timeline_limit: ask.config.limit(),
            };
            (room, sent)
        }))
    }

    /// An invite or a knock: its stripped state.
    fn invited(&self, ask: &RoomAsk<'_>) -> Result<RoomResponse> {
        let stripped = ask.room.membership.stripped_state.clone();
        let mut room = RoomResponse {
            initial: Some(true),
            is_dm: Some(ask.is_dm),
            bump_stamp: Some(ask.room.bump_stamp),
            ..RoomResponse::default()
        };
        if ask.room.membership.membership == "invite" {
            room.invite_state = Some(stripped);
        } else {
            room.knock_state = Some(stripped);
        }
        Ok(room)
    }

    /// A joined room (up to `next`) or one left (up to the leave).
    fn with_timeline(&self, ask: &RoomAsk<'_>, up_to: u64) -> Result<Option<RoomResponse>> {
        let room_id = &ask.room.room_id;
        let Some(short_room) = ask.room.short_room else {
            return self.left_unknown_room(ask).map(Some);
        };
        let joined = ask.room.membership.membership == "join";
        // The client has the room to catch up on only if it had it joined
        // (an invite starts over) and did not join again since.
        let sent = ask.sent.filter(|sent| {
            sent.membership == "join" && (!joined || ask.room.membership.count <= sent.up_to)
        });
        let initial = sent.is_none();
        let from = sent.map_or(0, |sent| sent.up_to);
        let pairs = ask.config.pairs();
        let limit = ask.config.limit();
        let expanded = sent.is_some_and(|sent| limit > sent.timeline_limit);
        let new_pairs: Vec<&(String, String)> = pairs
            .iter()
            .filter(|p| initial || !ask.sent_pairs.contains(p))
            .collect();
        let settings_changed = !initial && pairs.as_slice() != ask.sent_pairs;
        if !initial
            && !expanded
            && !settings_changed
            && !self.s.store.notifier.room_changed_since(room_id, from)
        {
            return Ok(None);
        }
        let reader = match self.s.rooms.reader(&self.caller.user_id, room_id) {
            Ok(reader) => reader,
            // Someone who never was in the room (an invite rejected) is
            // told of their leave only.
            Err(_) if !joined => return self.left_unknown_room(ask).map(Some),
            Err(e) => return Err(e),
        };
        let bound = if initial || expanded { 0 } else { from };
        let (timeline, limited) = self.timeline(&reader, ask, bound, up_to)?;
        let may_read_state = joined || reader.readable_state().is_ok();
        let state_now = self
            .s
            .rooms
            .state
            .load(self.s.rooms.state_at(short_room, up_to)?)?;
        let mut picked: Vec<u64> = Vec::new();
        if may_read_state {
            let changed = self.changed_state(short_room, &state_now, sent.is_some(), from)?;
            self.pick_state(&state_now, &pairs, changed.as_ref(), &mut picked)?;
            if !new_pairs.is_empty() && !initial {
                let new: Vec<_> = new_pairs.iter().map(|p| (*p).clone()).collect();
                self.pick_state(&state_now, &new, None, &mut picked)?;
            }
            self.lazy_members(&state_now, &pairs, &timeline, &mut picked)?;
        }
        let own_receipt = !initial && self.own_receipt_since(room_id, from)?;
        if !initial
            && timeline.is_empty()
            && picked.is_empty()
            && !expanded
            && !settings_changed
            && !own_receipt
        {
            return Ok(None);
        }
        let mut room = RoomResponse {
            initial: initial.then_some(true),
            is_dm: Some(ask.is_dm),
            bump_stamp: Some(ask.room.bump_stamp),
            limited,
            unstable_expanded_timeline: expanded && !initial,
            ..RoomResponse::default()
        };
        if may_read_state {
            self.describe(
                &mut room,
                (short_room, joined),
                &state_now,
                initial,
                &picked,
            )?;
        }
        room.required_state = picked
            .iter()
            .map(|short| self.state_event(*short))
            .collect::<Result<_>>()?;
        if self.since > 0 {
            let live = timeline
                .iter()
                .filter(|e| e.pos.stream_count() > self.since)
                .count();
            room.num_live = Some(live as u64);
        }
        let filter = Filter::default();
        let ctx = self.room_sync(room_id, bound, up_to, &filter);
        let served = ctx.timeline_of(&reader, &timeline, limited)?;
        room.prev_batch = served.prev_batch;
        room.timeline = served.events.into_iter().map(|e| e.into_json()).collect();
        let counts = self
            .s
            .push
            .counts(&self.caller.user_id, short_room, up_to)?;
        room.notification_count = Some(counts.total.notifications);
        room.highlight_count = Some(counts.total.highlights);
        Ok(Some(room))
    }

    fn room_sync<'b>(
        &'b self,
        room_id: &'b RoomId,
        since: u64,
        next: u64,
        filter: &'b Filter,
    ) -> RoomSync<'b> {
        RoomSync {
            s: self.s,
            caller: self.caller,
            room_id,
            since,
            next,
            full_state: false,
            state_after: false,
            filter,
            ignored: self.ignored,
            account_data: &[],
        }
    }

    /// The newest `timeline_limit` events the user may see after `bound`
    /// up to `up_to`, and whether older ones were left out.
    fn timeline(
        &self,
        reader: &RoomReader,
        ask: &RoomAsk<'_>,
        bound: u64,
        up_to: u64,
    ) -> Result<(Vec<TimelineEntry>, bool)> {
        let limit = ask.config.limit() as usize;
        if limit == 0 {
            let any = self.s.rooms.timeline(
                reader.short_room,
                TimelinePos::live(up_to),
                Direction::Backward,
                1,
                Some(TimelinePos::live(bound)),
            )?;
            return Ok((Vec::new(), !any.is_empty()));
        }
        let mut filter = Filter::default();
        filter.room.timeline.limit = Some(limit);
        self.room_sync(&ask.room.room_id, bound, up_to, &filter)
            .timeline(reader, bound)
    }

    /// The state keys whose event changed since `from` (`None`: the
    /// client has none of the room's state yet).
    fn changed_state(
        &self,
        short_room: u64,
        now: &StateMap,
        was_sent: bool,
        from: u64,
    ) -> Result<Option<BTreeSet<u64>>> {
        if !was_sent {
            return Ok(None);
        }
        let then = self
            .s
            .rooms
            .state
            .load(self.s.rooms.state_at(short_room, from)?)?;
        Ok(Some(
            now.iter()
                .filter(|(key, event)| then.get(key) != Some(event))
                .map(|(key, _)| *key)
                .collect(),
        ))
    }

    /// Adds to `picked` the events of `state` that `pairs` name (among the
    /// keys in `only`, when given).
    fn pick_state(
        &self,
        state: &StateMap,
        pairs: &[(String, String)],
        only: Option<&BTreeSet<u64>>,
        picked: &mut Vec<u64>,
    ) -> Result<()> {
        let me = &self.caller.user_id;
        let mut add = |short_event: u64| {
            if !picked.contains(&short_event) {
                picked.push(short_event);
            }
        };
        let wildcard = pairs.iter().any(|(kind, key)| kind == "*" || key == "*");
        if wildcard || only.is_some_and(|keys| keys.len() < pairs.len()) {
            let keys: Box<dyn Iterator<Item = (&u64, &u64)>> = match only {
                Some(keys) => Box::new(keys.iter().filter_map(|k| state.get_key_value(k))),
                None => Box::new(state.iter()),
            };
            for (short_key, short_event) in keys {
                let (kind, key) = self.s.rooms.state.key_of(*short_key)?;
                if pairs.iter().any(|p| pair_matches(p, &kind, &key, me)) {
                    add(*short_event);
                }
            }
            return Ok(());
        }
        for (kind, key) in pairs {
            let key = match key.as_str() {
                "$ME" => me.as_str(),
                "$LAZY" => continue,
                key => key,
            };
            let Some(short_key) = self.s.rooms.state.short_key(kind, key)? else {
                continue;
            };
            if only.is_some_and(|keys| !keys.contains(&short_key)) {
                continue;
            }
            if let Some(short_event) = state.get(&short_key) {
                add(*short_event);
            }
        }
        Ok(())
    }

    /// With `(m.room.member, $LAZY)`: the members of the timeline's senders
    /// and of the users its member events are about.
    fn lazy_members(
        &self,
        state: &StateMap,
        pairs: &[(String, String)],
        timeline: &[TimelineEntry],
        picked: &mut Vec<u64>,
    ) -> Result<()> {
        let lazy = pairs
            .iter()
            .any(|(kind, key)| kind == "m.room.member" && key == "$LAZY");
        if !lazy {
            return Ok(());
        }
        let mut users: BTreeSet<&str> = BTreeSet::new();
        for entry in timeline {
            users.insert(entry.pdu.sender.as_str());
            if entry.pdu.kind.to_string() == "m.room.member" {
                users.extend(entry.pdu.state_key.as_deref());
            }
        }
        for user in users {
            let Some(short_key) = self.s.rooms.state.short_key("m.room.member", user)? else {
                continue;
            };
            if let Some(event) = state.get(&short_key) {
                if !picked.contains(event) {
                    picked.push(*event);
                }
            }
        }
        Ok(())
    }

    fn own_receipt_since(&self, room: &RoomId, from: u64) -> Result<bool> {
        let receipts = self.s.receipts.since(room, from)?;
        Ok(receipts.iter().any(|r| r.user == self.caller.user_id))
    }

    fn state_event(&self, short: u64) -> Result<RawEvent> {
        let pdu = self.s.rooms.pdu_by_short(short)?;
        self.s.rooms.client_event_raw(short, &pdu, None, None)
    }

    /// The content of the state event (`kind`, "") in `state`.
    fn content(&self, state: &StateMap, kind: &str) -> Result<Option<Value>> {
        let Some(short_key) = self.s.rooms.state.short_key(kind, "")? else {
            return Ok(None);
        };
        match state.get(&short_key) {
            Some(short) => Ok(Some(self.s.rooms.pdu_by_short(*short)?.content_value())),
            None => Ok(None),
        }
    }

    /// Name, avatar, heroes and member counts: on a room's first sending,
    /// and afterwards when the state they come from is sent again. Of a
    /// room left, as they were at the leave.
    fn describe(
        &self,
        room: &mut RoomResponse,
        (short_room, joined): (u64, bool),
        state: &StateMap,
        initial: bool,
        picked: &[u64],
    ) -> Result<()> {
        let name = self
            .content(state, "m.room.name")?
            .and_then(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
            .filter(|n| !n.is_empty());
        let avatar = self
            .content(state, "m.room.avatar")?
            .and_then(|c| c.get("url").and_then(Value::as_str).map(str::to_owned))
            .filter(|u| !u.is_empty());
        let touched = |kind: &str| -> Result<bool> {
            let Some(short_key) = self.s.rooms.state.short_key(kind, "")? else {
                return Ok(false);
            };
            Ok(state.get(&short_key).is_some_and(|e| picked.contains(e)))
        };
        if initial || touched("m.room.name")? {
            room.name = name.clone();
        }
        if initial && avatar.is_some() || !initial && touched("m.room.avatar")? {
            room.avatar = Some(avatar.map_or(Value::Null, Value::String));
        }
        let members = match joined {
            true => self.s.rooms.members(short_room)?,
            false => self.members_in(state)?,
        };
        let count = |m: &str| members.iter().filter(|(_, x)| x == m).count() as u64;
        room.joined_count = Some(count("join"));
        room.invited_count = Some(count("invite"));
        if name.is_none() {
            let heroes = members
                .iter()
                .filter(|(u, m)| *u != self.caller.user_id && (m == "join" || m == "invite"))
                .take(HEROES)
                .map(|(user, _)| self.hero(state, user))
                .collect::<Result<_>>()?;
            room.heroes = Some(heroes);
        }
        Ok(())
    }

    /// Every member of `state` with their membership.
    fn members_in(&self, state: &StateMap) -> Result<Vec<(OwnedUserId, String)>> {
        let mut out = Vec::new();
        for (short_key, short_event) in state {
            let (kind, key) = self.s.rooms.state.key_of(*short_key)?;
            let user = UserId::parse(key.as_str());
            let (true, Ok(user)) = (kind == "m.room.member", user) else {
                continue;
            };
            let content = self.s.rooms.pdu_by_short(*short_event)?.content_value();
            let membership = content.get("membership").and_then(Value::as_str);
            out.push((user, membership.unwrap_or("leave").to_owned()));
        }
        Ok(out)
    }

    fn hero(&self, state: &StateMap, user: &UserId) -> Result<Hero> {
        let mut hero = Hero {
            user_id: user.to_string(),
            ..Hero::default()
        };
        let Some(short_key) = self
            .s
            .rooms
            .state
            .short_key("m.room.member", user.as_str())?
        else {
            return Ok(hero);
        };
        if let Some(short) = state.get(&short_key) {
            let content = self.s.rooms.pdu_by_short(*short)?.content_value();
            let text = |field: &str| {
                content
                    .get(field)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            hero.displayname = text("displayname");
            hero.avatar_url = text("avatar_url");
        }
        Ok(hero)
    }

    /// A room the user left that they may not read (an invite rejected,
    /// here or through another server): the leave event is all there is.
    fn left_unknown_room(&self, ask: &RoomAsk<'_>) -> Result<RoomResponse> {
        Ok(RoomResponse {
            initial: Some(true),
            bump_stamp: Some(ask.room.bump_stamp),
            timeline: vec![crate::sync::room::leave_event(
                self.s,
                &ask.room.membership,
            )?],
            ..RoomResponse::default()
        })
    }
}
