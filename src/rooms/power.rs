//! Power levels as the server reads them for its own decisions (who may
//! redact whose events), beyond what the auth rules check.

use ruma::room_version_rules::AuthorizationRules;
use ruma::UserId;
use serde_json::Value;

use super::state::StateMap;
use super::{RoomRecord, Rooms};
use crate::error::{Error, Result};

pub(crate) fn as_level(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl Rooms {
    fn state_content(&self, state: &StateMap, kind: &str) -> Result<Option<Value>> {
        let Some(short_key) = self.state.short_key(kind, "")? else {
            return Ok(None);
        };
        match state.get(&short_key) {
            Some(short) => Ok(Some(self.pdu_by_short(*short)?.content_value())),
            None => Ok(None),
        }
    }

    /// The user's power level; room creators in versions that privilege
    /// them rank above everyone.
    pub fn user_power(
        &self,
        state: &StateMap,
        rules: &AuthorizationRules,
        user: &UserId,
    ) -> Result<i64> {
        if let Some(create_short) = self
            .state
            .short_key("m.room.create", "")?
            .and_then(|k| state.get(&k).copied())
        {
            let create = self.pdu_by_short(create_short)?;
            if rules.explicitly_privilege_room_creators {
                let additional = create.content_value();
                let is_additional = additional
                    .get("additional_creators")
                    .and_then(Value::as_array)
                    .is_some_and(|list| list.iter().any(|u| u.as_str() == Some(user.as_str())));
                if create.sender == user || is_additional {
                    return Ok(i64::MAX);
                }
            }
            match self.state_content(state, "m.room.power_levels")? {
                Some(pl) => Ok(as_level(pl.get("users").and_then(|u| u.get(user.as_str())))
                    .or_else(|| as_level(pl.get("users_default")))
                    .unwrap_or(0)),
                // Without power levels the creator has 100, everyone else 0.
                None => Ok(if create.sender == user { 100 } else { 0 }),
            }
        } else {
            Ok(0)
        }
    }

    /// Whether the user's power in the room's current state reaches the
    /// top-level requirement `field` (`default` when unset).
    pub fn has_level(
        &self,
        record: &RoomRecord,
        user: &UserId,
        field: &str,
        default: i64,
    ) -> Result<bool> {
        let rules = record
            .version
            .rules()
            .ok_or_else(|| Error::unsupported_room_version("Unsupported room version"))?;
        let state = self.state.load(record.state)?;
        Ok(self.user_power(&state, &rules.authorization, user)?
            >= self.required_level(&state, field, default)?)
    }

    /// A top-level power level requirement (`redact`, `kick`, …).
    pub fn required_level(&self, state: &StateMap, field: &str, default: i64) -> Result<i64> {
        Ok(self
            .state_content(state, "m.room.power_levels")?
            .and_then(|pl| as_level(pl.get(field)))
            .unwrap_or(default))
    }
}
