//! Applying redactions: the redacted event's stored form is replaced by its
//! redacted form (per the room version's algorithm) in the redaction's batch.

use matrixos_storage::{tables, Batch};
use ruma::canonical_json::{redact_in_place, CanonicalJsonObject};
use ruma::room_version_rules::{AuthorizationRules, RoomVersionRules};
use ruma::{EventId, RoomId, RoomVersionId, UserId};

use super::state::StateMap;
use super::{stored_event, Pdu, Rooms};
use crate::error::{Error, Result};

impl Rooms {
    /// Redacts the target of `redaction` if its sender may: the original
    /// sender always, anyone else with the `redact` power level. A redaction
    /// that may not apply is still stored (the auth rules allowed it).
    pub(crate) fn apply_redaction(
        &self,
        batch: &mut Batch,
        short_room: u64,
        state: &StateMap,
        rules: &RoomVersionRules,
        redaction: &Pdu,
        redaction_short: u64,
    ) -> Result<()> {
        let Some(target_id) = redaction.redacted_event() else {
            return Ok(());
        };
        let Some((target_short, target)) = self.pdu(&target_id)? else {
            return Ok(());
        };
        if self.meta_opt(target_short)?.map(|m| m.room) != Some(short_room) {
            return Ok(());
        }
        if !self.may_redact(
            state,
            &rules.authorization,
            &redaction.sender,
            &target.sender,
        )? {
            return Ok(());
        }
        let pdu = self.prune_stored(batch, target_short, &target_id, rules)?;
        self.redacted.insert(target_short);
        tables::REDACTIONS.put(batch, &target_short, &redaction_short);
        self.cache_pdu(target_short, std::sync::Arc::new(pdu));
        Ok(())
    }

    /// Replaces an event's stored form by its form as the room version's
    /// redaction algorithm prunes it, in `batch`; answers the pruned event.
    pub(crate) fn prune_stored(
        &self,
        batch: &mut Batch,
        short: u64,
        event_id: &EventId,
        rules: &RoomVersionRules,
    ) -> Result<Pdu> {
        let raw = self.stored_event(short)?;
        let mut object: CanonicalJsonObject =
            serde_json::from_slice(&stored_event::signed_pdu(&raw)?)?;
        redact_in_place(&mut object, &rules.redaction, None)
            .map_err(|e| Error::internal(format!("redacting: {e}")))?;
        let signed = serde_json::to_vec(&object)?;
        let pdu = Pdu::from_signed(Some(event_id.to_owned()), &signed)?;
        tables::EVENTS.put(batch, &short, &stored_event::encode(event_id, &signed)?);
        Ok(pdu)
    }

    /// Refuses, before it is sent, a local redaction that would not apply:
    /// of someone else's event without the `redact` power level (403, as
    /// Synapse answers), or of an event in another room. The auth rules
    /// accept both, since they cannot see the target; a redaction of an
    /// event this server does not know is let through, as in Synapse.
    pub(crate) fn check_may_redact(
        &self,
        room: &RoomId,
        version: &RoomVersionId,
        state: &StateMap,
        redaction: &Pdu,
    ) -> Result<()> {
        let Some(target_id) = redaction.redacted_event() else {
            return Ok(());
        };
        let Some((target_short, target)) = self.pdu(&target_id)? else {
            return Ok(());
        };
        let target_room = self.meta_opt(target_short)?.map(|m| m.room);
        if target_room.is_none() || target_room != self.short_room(room)? {
            return Err(Error::invalid_param(
                "Cannot redact an event from another room",
            ));
        }
        let rules = version
            .rules()
            .ok_or_else(|| Error::unsupported_room_version("Unsupported room version"))?;
        if !self.may_redact(
            state,
            &rules.authorization,
            &redaction.sender,
            &target.sender,
        )? {
            return Err(Error::forbidden(
                "You don't have permission to redact this event",
            ));
        }
        Ok(())
    }

    /// The original sender may always redact; anyone else needs the room's
    /// `redact` level (50 when unset).
    fn may_redact(
        &self,
        state: &StateMap,
        rules: &AuthorizationRules,
        sender: &UserId,
        target_sender: &UserId,
    ) -> Result<bool> {
        if sender == target_sender {
            return Ok(true);
        }
        Ok(self.user_power(state, rules, sender)? >= self.required_level(state, "redact", 50)?)
    }

    /// The redaction that redacted this event, if any.
    pub fn redacted_by(&self, short: u64) -> Result<Option<u64>> {
        if !self.redacted.may_contain(short) {
            return Ok(None);
        }
        Ok(tables::REDACTIONS.get(&self.store.db, &short)?)
    }
}
