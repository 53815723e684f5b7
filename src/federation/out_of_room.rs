//! Member events of rooms this server is not in, for its users with an
//! invite or a knock pending there: a resident server sends the leave that
//! retracts an invite or turns a knock down (or a ban). Such an event
//! cannot be checked against the room's state, which is not here; it is
//! taken only from a server that the invite or knock came through, with
//! its signatures checked, and only changes that user's pending
//! membership.

use ruma::canonical_json::{CanonicalJsonObject, CanonicalJsonValue};
use ruma::{OwnedUserId, RoomId, RoomVersionId, ServerName, UserId};

use super::pdu_check;
use crate::error::{Error, Result};
use crate::services::membership::resident_servers;
use crate::services::Services;

/// Takes a PDU of a room this server is not in, if it ends a local user's
/// pending invite or knock there.
pub async fn take(
    s: &Services,
    origin: &ServerName,
    room: &RoomId,
    object: CanonicalJsonObject,
) -> Result<()> {
    let (target, membership) =
        ending_membership(s, &object).ok_or_else(|| Error::not_found("Unknown room"))?;
    let pending = s
        .rooms
        .membership(&target, room)?
        .filter(|m| m.membership == "invite" || m.membership == "knock")
        .ok_or_else(|| Error::not_found("Unknown room"))?;
    let resident = resident_servers(s, &target, room)?;
    if !resident.iter().any(|r| r == origin) {
        return Err(Error::forbidden(
            "This server did not send the invite or take the knock",
        ));
    }
    let version = version_from(&pending.stripped_state);
    let remote = pdu_check::verified(s, &version, object).await?;
    if !resident
        .iter()
        .any(|r| r == remote.pdu.sender.server_name())
    {
        return Err(Error::forbidden("The sender is not of a resident server"));
    }
    let (pdu, stored) = remote.into_parts();
    s.rooms
        .record_out_of_room(room, &target, pdu, stored, &membership, Vec::new())
        .await
}

/// The local user and the membership (leave or ban) a member event gives.
fn ending_membership(s: &Services, object: &CanonicalJsonObject) -> Option<(OwnedUserId, String)> {
    let text = |value: Option<&CanonicalJsonValue>| match value {
        Some(CanonicalJsonValue::String(text)) => Some(text.clone()),
        _ => None,
    };
    if text(object.get("type"))? != "m.room.member" {
        return None;
    }
    let target = UserId::parse(text(object.get("state_key"))?).ok()?;
    if target.server_name() != s.server_name {
        return None;
    }
    let membership = match object.get("content") {
        Some(CanonicalJsonValue::Object(content)) => text(content.get("membership"))?,
        _ => return None,
    };
    matches!(membership.as_str(), "leave" | "ban").then_some((target, membership))
}

/// The room version the stripped state's create event names (1 if none).
fn version_from(stripped: &[serde_json::Value]) -> RoomVersionId {
    stripped
        .iter()
        .find(|e| e["type"] == "m.room.create")
        .and_then(|e| e["content"]["room_version"].as_str())
        .and_then(|v| RoomVersionId::try_from(v).ok())
        .unwrap_or(RoomVersionId::V1)
}
