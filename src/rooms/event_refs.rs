//! How a PDU names its prev and auth events. Room versions 1 and 2 name
//! each with its reference hash, `[event_id, {"sha256": hash}]`; later
//! versions by id alone. This server reads both and writes what the room's
//! version asks for.

use ruma::room_version_rules::{EventsReferenceFormatVersion, RoomVersionRules};
use ruma::{CanonicalJsonObject, OwnedEventId};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

use super::Rooms;
use crate::error::{Error, Result};

/// One entry of `prev_events` or `auth_events`, in either form.
#[derive(Deserialize)]
#[serde(untagged)]
enum EventRef {
    Id(OwnedEventId),
    WithHashes(OwnedEventId, serde::de::IgnoredAny),
}

/// Reads a list of event references as the ids they name.
pub(crate) fn ids<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<OwnedEventId>, D::Error> {
    let refs = Vec::<EventRef>::deserialize(deserializer)?;
    Ok(refs
        .into_iter()
        .map(|r| match r {
            EventRef::Id(id) | EventRef::WithHashes(id, _) => id,
        })
        .collect())
}

impl Rooms {
    /// `ids` as the room version's PDUs name events.
    pub(crate) fn event_refs(
        &self,
        rules: &RoomVersionRules,
        ids: &[OwnedEventId],
    ) -> Result<Value> {
        if rules.events_reference_format != EventsReferenceFormatVersion::V1 {
            return Ok(json!(ids));
        }
        let mut refs = Vec::with_capacity(ids.len());
        for id in ids {
            let cached = self.reference_hashes.lock().get(id).cloned();
            let hash = match cached {
                Some(hash) => hash,
                None => self.stored_reference_hash(rules, id)?,
            };
            refs.push(json!([id, { "sha256": hash }]));
        }
        Ok(Value::Array(refs))
    }

    /// Remembers the reference hash of an event built here, if its room
    /// version names events by it.
    pub(crate) fn note_reference_hash(
        &self,
        rules: &RoomVersionRules,
        id: &OwnedEventId,
        object: &CanonicalJsonObject,
    ) -> Result<()> {
        if rules.events_reference_format != EventsReferenceFormatVersion::V1 {
            return Ok(());
        }
        let hash = ruma::signatures::reference_hash(object, rules)
            .map_err(|e| Error::internal(format!("reference hash of {id}: {e}")))?;
        self.reference_hashes.lock().insert(id.clone(), hash);
        Ok(())
    }

    fn stored_reference_hash(&self, rules: &RoomVersionRules, id: &OwnedEventId) -> Result<String> {
        let short = self
            .short_event(id)?
            .ok_or_else(|| Error::internal(format!("referenced event {id} missing")))?;
        let signed = self.signed_pdu(short)?;
        let object: CanonicalJsonObject = serde_json::from_slice(&signed)
            .map_err(|e| Error::internal(format!("stored event {id}: {e}")))?;
        ruma::signatures::reference_hash(&object, rules)
            .map_err(|e| Error::internal(format!("reference hash of {id}: {e}")))
    }
}
