//! Relations between events (`m.relates_to`): an index from each event to
//! the events that relate to it, written with the relating event, and what
//! it answers: pages of relations, bundled aggregations (`unsigned.
//! m.relations`: the latest edit, a thread's summary, references) and the
//! threads of a room by latest activity.

use std::borrow::Cow;

use matrixos_storage::tables::{RELATIONS, THREADS};
use matrixos_storage::{keys, Batch};
use ruma::OwnedEventId;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::visibility::RoomReader;
use super::{Pdu, Rooms};
use crate::error::Result;

/// A relation an event declares: its type and the event it relates to.
/// Only `m.relates_to` is read from an event's content, the rest skipped
/// unparsed (every appended event is looked at, most have no relation).
pub fn relation_of(pdu: &Pdu) -> Option<(String, OwnedEventId)> {
    #[derive(Deserialize)]
    struct Content {
        #[serde(rename = "m.relates_to")]
        relates_to: Option<RelatesTo>,
    }
    #[derive(Deserialize)]
    struct RelatesTo {
        rel_type: Option<String>,
        event_id: Option<String>,
    }
    let content: Content = serde_json::from_str(pdu.content.get()).ok()?;
    let relates = content.relates_to?;
    let parent = OwnedEventId::try_from(relates.event_id?).ok()?;
    Some((relates.rel_type?, parent))
}

/// One event relating to another, as indexed.
pub struct Child {
    pub short: u64,
    pub rel_type: String,
    pub kind: String,
}

impl Rooms {
    /// Indexes the relation `pdu` declares, if its parent is in the same
    /// room; a thread reply also moves its thread to `count` (a backfilled
    /// one, 0, only makes the thread known).
    pub(super) fn index_relation(
        &self,
        batch: &mut Batch,
        short_room: u64,
        pdu: &Pdu,
        short_event: u64,
        count: u64,
    ) -> Result<()> {
        let Some((rel_type, parent)) = relation_of(pdu) else {
            return Ok(());
        };
        let Some(short_parent) = self.short_event(&parent)? else {
            return Ok(());
        };
        if self
            .meta_opt(short_parent)?
            .is_none_or(|m| m.room != short_room)
        {
            return Ok(());
        }
        let kind = pdu.kind.to_string();
        self.related.insert(short_parent);
        RELATIONS.put(
            batch,
            &(short_parent, short_event),
            &(rel_type.clone(), kind),
        );
        if rel_type == "m.thread" {
            let known = THREADS.get(&self.store.db, &(short_room, short_parent))?;
            if count > 0 || known.is_none() {
                THREADS.put(
                    batch,
                    &(short_room, short_parent),
                    &count.max(known.unwrap_or(0)),
                );
            }
        }
        Ok(())
    }

    /// The events relating to `short_parent`, oldest first (by arrival),
    /// redacted ones left out: a redaction removes the relation.
    pub fn children(&self, short_parent: u64) -> Result<Vec<Child>> {
        if !self.related.may_contain(short_parent) {
            return Ok(Vec::new());
        }
        let prefix = keys::short_and_u64(short_parent, 0);
        let mut out = Vec::new();
        for item in RELATIONS.scan_prefix(&self.store.db, &prefix[..8]) {
            let ((_, short), (rel_type, kind)) = item?;
            if self.redacted_by(short)?.is_none() {
                out.push(Child {
                    short,
                    rel_type,
                    kind,
                });
            }
        }
        Ok(out)
    }

    /// The thread roots of a room with their latest activity.
    pub fn threads(&self, short_room: u64) -> Result<Vec<(u64, u64)>> {
        let prefix = keys::short_and_u64(short_room, 0);
        let mut out = Vec::new();
        for item in THREADS.scan_prefix(&self.store.db, &prefix[..8]) {
            let ((_, root), latest) = item?;
            out.push((root, latest));
        }
        Ok(out)
    }
}

impl RoomReader<'_> {
    /// `unsigned.m.relations` of an event as this reader may see them:
    /// the latest edit by its sender, its thread's summary, the events
    /// referencing it. `None` when there is nothing to bundle.
    pub fn bundled_relations(&self, short: u64, pdu: &Pdu) -> Result<Option<Value>> {
        let rooms = self.rooms();
        let children = rooms.children(short)?;
        if children.is_empty() {
            return Ok(None);
        }
        let mut edit: Option<(u64, std::sync::Arc<Pdu>)> = None;
        let mut thread: Option<(u64, std::sync::Arc<Pdu>)> = None;
        let (mut replies, mut participated) = (0u64, pdu.sender == self.user());
        let mut references = Vec::new();
        for child in children {
            let child_pdu = rooms.pdu_by_short(child.short)?;
            if !self.can_see(child.short, &child_pdu)? {
                continue;
            }
            match child.rel_type.as_str() {
                "m.replace" if is_edit_of(&child_pdu, pdu) => {
                    let newer = edit.as_ref().is_none_or(|(_, e)| {
                        (e.origin_server_ts, &e.event_id)
                            < (child_pdu.origin_server_ts, &child_pdu.event_id)
                    });
                    if newer {
                        edit = Some((child.short, child_pdu));
                    }
                }
                "m.thread" => {
                    replies += 1;
                    participated |= child_pdu.sender == self.user();
                    thread = Some((child.short, child_pdu));
                }
                "m.reference" => references.push(json!({ "event_id": child_pdu.event_id })),
                _ => {}
            }
        }
        let mut out = Map::new();
        if let Some((short, edit)) =
            edit.filter(|_| rooms.redacted_by(short).ok().flatten().is_none())
        {
            out.insert("m.replace".into(), self.plain_event(short, &edit)?);
        }
        if let Some((short, latest)) = thread {
            let summary = json!({
                "latest_event": self.plain_event(short, &latest)?,
                "count": replies,
                "current_user_participated": participated,
            });
            out.insert("m.thread".into(), summary);
        }
        if !references.is_empty() {
            out.insert("m.reference".into(), json!({ "chunk": references }));
        }
        Ok((!out.is_empty()).then_some(Value::Object(out)))
    }

    /// A timeline event as the reader's device sees it: with its
    /// transaction id for the device that sent it, the reader's membership
    /// at it, and its bundled aggregations; pruned if its sender's content
    /// was erased before the reader joined.
    pub fn client_event(
        &self,
        short: u64,
        pdu: &Pdu,
        room: Option<&ruma::RoomId>,
        device: Option<&ruma::DeviceId>,
    ) -> Result<Box<serde_json::value::RawValue>> {
        let pdu = &*self.as_served(pdu)?;
        let is_sender = pdu.sender == self.user();
        let mut unsigned = self.rooms().unsigned(short, pdu, device, is_sender)?;
        if let Some(membership) = self.membership_at(short, pdu)? {
            unsigned.insert("membership".into(), membership.as_str().into());
        }
        if let Some(relations) = self.bundled_relations(short, pdu)? {
            unsigned.insert("m.relations".into(), relations);
        }
        Ok(pdu.to_client_raw(room, unsigned)?)
    }

    /// `pdu` as the reader is served it: pruned if its sender's content
    /// was erased before the reader joined.
    fn as_served<'p>(&self, pdu: &'p Pdu) -> Result<Cow<'p, Pdu>> {
        Ok(match self.served_pruned(pdu)? {
            true => Cow::Owned(pdu.pruned(&self.redaction_rules()?)?),
            false => Cow::Borrowed(pdu),
        })
    }

    /// An event as clients see it (pruned as [`Self::as_served`] says),
    /// without aggregations of its own: an edit or a thread's latest reply
    /// bundled with another event.
    fn plain_event(&self, short: u64, pdu: &Pdu) -> Result<Value> {
        let pdu = &*self.as_served(pdu)?;
        let rooms = self.rooms();
        let unsigned = rooms.unsigned(short, pdu, None, false)?;
        Ok(pdu.to_client(pdu.room_id.as_deref(), unsigned))
    }
}

/// An edit counts when it comes from the original's sender, has its type,
/// and the original is not a state event (the spec's rules for `m.replace`).
fn is_edit_of(edit: &Pdu, original: &Pdu) -> bool {
    edit.sender == original.sender
        && edit.kind == original.kind
        && original.state_key.is_none()
        && edit.state_key.is_none()
}
