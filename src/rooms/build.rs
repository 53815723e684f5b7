//! Building a local event: filling in its auth events, prev events and
//! depth, hashing and signing it, and checking it against the size limits
//! and the auth rules, before anything is stored.

use matrixos_federation::{event_id_for_pdu, hash_and_sign_pdu};
use ruma::canonical_json::CanonicalJsonObject;
use ruma::events::TimelineEventType;
use ruma::room_version_rules::{EventIdFormatVersion, RoomVersionRules};
use ruma::{MilliSecondsSinceUnixEpoch, OwnedEventId, UserId};
use serde_json::json;

use super::send::EventDraft;
use super::state_view::{StateView, StoredState};
use super::{auth, limits, stored_event, Pdu, RoomRecord, Rooms};
use crate::error::{Error, Result};
use crate::random::random_string;

/// The most prev events a local event names.
const MAX_PREV_EVENTS: usize = 10;

/// A signed, authorised event not yet stored.
pub struct BuiltEvent {
    pub pdu: Pdu,
    pub(crate) stored: Vec<u8>,
}

impl Rooms {
    /// Builds, signs and authorises an event on `head` (its stored state),
    /// without storing it.
    pub(crate) fn build(
        &self,
        head: &RoomRecord,
        sender: &UserId,
        draft: EventDraft,
        room_id_in_pdu: bool,
    ) -> Result<BuiltEvent> {
        let state = StoredState {
            rooms: self,
            state: self.state.load(head.state)?,
        };
        let built = self.build_on(head, &state, sender, draft, room_id_in_pdu)?;
        if built.pdu.kind == TimelineEventType::RoomRedaction {
            self.check_may_redact(&head.room_id, &head.version, &state.state, &built.pdu)?;
        }
        Ok(built)
    }

    /// Builds, signs and authorises an event on `head`'s extremities and
    /// depth, against `state`, without storing it.
    pub(crate) fn build_on(
        &self,
        head: &RoomRecord,
        state: &dyn StateView,
        sender: &UserId,
        draft: EventDraft,
        room_id_in_pdu: bool,
    ) -> Result<BuiltEvent> {
        let rules = rules_of(head)?;
        let mut pdu_json = self.template(head, state, sender, draft, room_id_in_pdu, &rules)?;
        if rules.event_id_format == EventIdFormatVersion::V1 {
            // Room versions 1 and 2: the sending server names the event.
            pdu_json["event_id"] = json!(format!("${}:{}", random_string(24), self.server_name));
        }
        let mut object: CanonicalJsonObject = serde_json::from_value(pdu_json)
            .map_err(|e| Error::bad_json(format!("Event is not canonical JSON: {e}")))?;
        hash_and_sign_pdu(&self.server_name, &self.signing_key, &mut object, &rules)
            .map_err(limits::signing_error)?;
        let event_id = event_id_for_pdu(&object, &rules).map_err(limits::signing_error)?;
        self.note_reference_hash(&rules, &event_id, &object)?;
        let signed = serde_json::to_vec(&object)?;
        limits::check_stored(&signed)?;
        let pdu = Pdu::from_signed(Some(event_id.clone()), &signed)?;
        let stored = stored_event::encode(&event_id, &signed)?;

        auth::check(&rules.authorization, &pdu, state)?;
        Ok(BuiltEvent { pdu, stored })
    }

    /// The unsigned event a draft makes on `head`: auth events from
    /// `state`, prev events and depth from `head`; no hashes, signatures or
    /// (in room versions 1 and 2) event id yet.
    pub(crate) fn template(
        &self,
        head: &RoomRecord,
        state: &dyn StateView,
        sender: &UserId,
        draft: EventDraft,
        room_id_in_pdu: bool,
        rules: &RoomVersionRules,
    ) -> Result<serde_json::Value> {
        let content_raw = serde_json::value::to_raw_value(&draft.content)?;
        limits::check_draft(&draft, content_raw.get())?;
        let auth_types = ruma::state_res::auth_types_for_event(
            &draft.kind,
            sender,
            draft.state_key.as_deref(),
            &content_raw,
            &rules.authorization,
        )
        .map_err(Error::bad_json)?;
        let mut auth_events = Vec::new();
        for (kind, key) in &auth_types {
            if let Some(event) = state.state_event(&kind.to_string(), key)? {
                auth_events.push(event.event_id.clone());
            }
        }

        let mut pdu_json = json!({
            "auth_events": self.event_refs(rules, &auth_events)?,
            "content": draft.content,
            "depth": head.depth + 1,
            "origin_server_ts": self.timestamp_for(&draft.kind),
            "prev_events": self.event_refs(rules, &self.prev_events_for(head)?)?,
            "sender": sender,
            "type": draft.kind.to_string(),
        });
        if room_id_in_pdu {
            pdu_json["room_id"] = json!(head.room_id);
        }
        if let Some(key) = &draft.state_key {
            pdu_json["state_key"] = json!(key);
        }
        if let Some(redacts) = &draft.redacts {
            if rules.redaction.content_field_redacts {
                if let Some(content) = pdu_json["content"].as_object_mut() {
                    content.insert("redacts".to_owned(), json!(redacts));
                }
            } else {
                pdu_json["redacts"] = json!(redacts);
            }
        }
        Ok(pdu_json)
    }

    /// Now, in milliseconds; for a create event, also later than the last
    /// one built here.
    fn timestamp_for(&self, kind: &TimelineEventType) -> u64 {
        use std::sync::atomic::Ordering;
        let now: u64 = MilliSecondsSinceUnixEpoch::now().get().into();
        if *kind != TimelineEventType::RoomCreate {
            return now;
        }
        let previous = self
            .last_create_ts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or(now);
        now.max(previous + 1)
    }

    /// The prev events of a new local event: every forward extremity, so
    /// that the event merges forks, but at most [`MAX_PREV_EVENTS`] (the
    /// deepest), as Synapse does.
    fn prev_events_for(&self, head: &RoomRecord) -> Result<Vec<OwnedEventId>> {
        if head.extremities.len() <= MAX_PREV_EVENTS {
            return Ok(head.extremities.clone());
        }
        let mut by_depth = Vec::with_capacity(head.extremities.len());
        for id in &head.extremities {
            let (_, pdu) = self
                .pdu(id)?
                .ok_or_else(|| Error::internal(format!("forward extremity {id} missing")))?;
            by_depth.push((pdu.depth, id.clone()));
        }
        by_depth.sort_by(|a, b| b.cmp(a));
        Ok(by_depth
            .into_iter()
            .take(MAX_PREV_EVENTS)
            .map(|(_, id)| id)
            .collect())
    }
}

/// The rules of a room's version.
pub(crate) fn rules_of(head: &RoomRecord) -> Result<RoomVersionRules> {
    head.version
        .rules()
        .ok_or_else(|| Error::unsupported_room_version("Unsupported room version"))
}
