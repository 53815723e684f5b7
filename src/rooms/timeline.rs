//! Reading a room's timeline: pages in either direction, the state at a
//! stream position, and the `unsigned` data clients expect.

use std::sync::Arc;

use matrixos_storage::typed::room_prefix;
use matrixos_storage::{tables, Direction};
use ruma::{DeviceId, MilliSecondsSinceUnixEpoch, OwnedEventId, RoomId, UserId};
use serde_json::{json, Map, Value};

use super::{Pdu, Rooms};
use crate::error::{Error, Result};

pub use matrixos_storage::records::TimelinePos;

/// A pagination token's place; anything else is `M_INVALID_PARAM`.
pub fn parse_token(token: &str) -> Result<TimelinePos> {
    TimelinePos::parse(token).ok_or_else(|| Error::invalid_param("Invalid pagination token"))
}

/// One timeline entry: its place, short id and event.
pub struct TimelineEntry {
    pub pos: TimelinePos,
    pub short: u64,
    pub pdu: Arc<Pdu>,
}

impl Rooms {
    /// Up to `limit` events: backward = places ≤ `from`, newest first;
    /// forward = places > `from`, oldest first. Stops past `bound`
    /// (exclusive backward lower bound / inclusive forward upper bound).
    pub fn timeline(
        &self,
        short_room: u64,
        from: TimelinePos,
        direction: Direction,
        limit: usize,
        bound: Option<TimelinePos>,
    ) -> Result<Vec<TimelineEntry>> {
        let prefix = room_prefix(short_room);
        let start = match direction {
            Direction::Backward => from,
            Direction::Forward => from.after(),
        };
        let mut out = Vec::new();
        for item in tables::TIMELINE.scan(&self.store.db, &prefix, &(short_room, start), direction)
        {
            if out.len() >= limit {
                break;
            }
            let ((_, pos), short) = item?;
            let beyond = match (direction, bound) {
                (Direction::Backward, Some(b)) => pos <= b,
                (Direction::Forward, Some(b)) => pos > b,
                _ => false,
            };
            if beyond {
                break;
            }
            out.push(TimelineEntry {
                pos,
                short,
                pdu: self.pdu_by_short(short)?,
            });
        }
        Ok(out)
    }

    /// The room's current state as it was at stream position `position`
    /// (0 if the room had no state by then): recorded whenever the current
    /// state changes, so it is right on a forked room. Rooms stored before
    /// that record was kept fall back to the state after the last event.
    pub fn state_at(&self, short_room: u64, position: u64) -> Result<u64> {
        let prefix = room_prefix(short_room);
        let start = (short_room, position);
        if let Some(item) = tables::ROOM_STATES
            .scan(&self.store.db, &prefix, &start, Direction::Backward)
            .next()
        {
            let (_, state) = item?;
            return Ok(state);
        }
        let live = TimelinePos::live(position);
        match self
            .timeline(
                short_room,
                live,
                Direction::Backward,
                1,
                Some(TimelinePos::LIVE_START),
            )?
            .first()
        {
            Some(entry) => Ok(self.meta(entry.short)?.state_after),
            None => Ok(0),
        }
    }

    /// The state just before an event.
    /// The state at a place in the timeline: at a live place, the state at
    /// that stream position; at a backfilled one, the state after the
    /// newest event at or before it, or, before every event held (a token
    /// from paging back, history not fetched yet), the state before the
    /// oldest one.
    pub fn state_at_place(&self, short_room: u64, place: TimelinePos) -> Result<u64> {
        if place > TimelinePos::LIVE_START {
            return self.state_at(short_room, place.stream_count());
        }
        let newest = self.timeline(short_room, place, Direction::Backward, 1, None)?;
        if let Some(entry) = newest.first() {
            return Ok(self.meta(entry.short)?.state_after);
        }
        let oldest = self.timeline(short_room, place, Direction::Forward, 1, None)?;
        match oldest.first() {
            Some(entry) => Ok(self.meta(entry.short)?.state_before),
            None => Ok(0),
        }
    }

    pub fn state_before(&self, short_event: u64) -> Result<u64> {
        Ok(self.meta(short_event)?.state_before)
    }

    /// The state just after an event.
    pub fn state_after(&self, short_event: u64) -> Result<u64> {
        Ok(self.meta(short_event)?.state_after)
    }

    /// The client form of an event as `viewer` (user and device) sees it;
    /// `room` is included for endpoints that name it.
    pub fn client_event(
        &self,
        short: u64,
        pdu: &Pdu,
        room: Option<&RoomId>,
        viewer: Option<(&UserId, &DeviceId)>,
    ) -> Result<Value> {
        let (device, is_sender) = match viewer {
            Some((user, device)) => (Some(device), pdu.sender == user),
            None => (None, false),
        };
        Ok(pdu.to_client(room, self.unsigned(short, pdu, device, is_sender)?))
    }

    /// [`Self::client_event`] as JSON text, content copied through.
    pub fn client_event_raw(
        &self,
        short: u64,
        pdu: &Pdu,
        room: Option<&RoomId>,
        viewer: Option<(&UserId, &DeviceId)>,
    ) -> Result<Box<serde_json::value::RawValue>> {
        let (device, is_sender) = match viewer {
            Some((user, device)) => (Some(device), pdu.sender == user),
            None => (None, false),
        };
        Ok(pdu.to_client_raw(room, self.unsigned(short, pdu, device, is_sender)?)?)
    }

    /// `unsigned` for a client: age, the sender's transaction id (only for
    /// the device that sent it), and the replaced state's content.
    pub fn unsigned(
        &self,
        short: u64,
        pdu: &Pdu,
        viewer: Option<&DeviceId>,
        viewer_is_sender: bool,
    ) -> Result<Map<String, Value>> {
        let mut unsigned = Map::new();
        let now: u64 = MilliSecondsSinceUnixEpoch::now().get().into();
        let ts: u64 = pdu.origin_server_ts.get().into();
        unsigned.insert("age".into(), json!(now.saturating_sub(ts)));
        let meta = self.meta_opt(short)?;
        let txn = meta.as_ref().and_then(|m| m.txn.as_ref());
        if let (Some((device, txn)), Some(viewer)) = (txn, viewer) {
            if viewer_is_sender && device.as_str() == viewer.as_str() {
                unsigned.insert("transaction_id".into(), json!(txn));
            }
        }
        if let Some(redaction) = self.redacted_by(short)? {
            let redaction = self.pdu_by_short(redaction)?;
            unsigned.insert(
                "redacted_because".into(),
                redaction.to_client(None, Map::new()),
            );
        }
        if pdu.is_state() {
            if let Some(prev) = meta.and_then(|m| m.replaces) {
                let prev = self.pdu_by_short(prev)?;
                unsigned.insert("prev_content".into(), prev.content_value());
                unsigned.insert("replaces_state".into(), json!(prev.event_id));
                unsigned.insert("prev_sender".into(), json!(prev.sender));
            }
        }
        Ok(unsigned)
    }
}

/// Most events examined by one search by time.
const MAX_TIME_SCAN: usize = 200_000;

impl Rooms {
    /// The event of the room's timeline (up to `upto`) closest to `ts` in
    /// one direction: the first at or after it (`forward`), or the last at
    /// or before it, among those `visible` lets through.
    pub fn closest_event(
        &self,
        short_room: u64,
        upto: TimelinePos,
        ts: MilliSecondsSinceUnixEpoch,
        forward: bool,
        visible: impl Fn(&TimelineEntry) -> Result<bool>,
    ) -> Result<Option<(MilliSecondsSinceUnixEpoch, OwnedEventId)>> {
        let ts: u64 = ts.get().into();
        let mut best: Option<(MilliSecondsSinceUnixEpoch, OwnedEventId)> = None;
        let mut cursor = TimelinePos::EARLIEST;
        let mut scanned = 0;
        while scanned < MAX_TIME_SCAN {
            let page = self.timeline(short_room, cursor, Direction::Forward, 500, Some(upto))?;
            if page.is_empty() {
                break;
            }
            for e in &page {
                scanned += 1;
                cursor = e.pos;
                if !visible(e)? {
                    continue;
                }
                let ets: u64 = e.pdu.origin_server_ts.get().into();
                let better = match (&best, forward) {
                    (_, true) if ets < ts => false,
                    (_, false) if ets > ts => false,
                    (None, _) => true,
                    (Some((b, _)), true) => ets < u64::from(b.get()),
                    (Some((b, _)), false) => ets >= u64::from(b.get()),
                };
                if better {
                    best = Some((e.pdu.origin_server_ts, e.pdu.event_id.clone()));
                }
            }
        }
        Ok(best)
    }
}
