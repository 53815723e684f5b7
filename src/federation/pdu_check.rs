//! The checks a PDU from another server passes before the room core sees
//! it (server-server spec, "Checks performed on receipt of a PDU", steps
//! 1–3): its size, its format for the room version, the signatures of
//! every server the room version names (the sender's server; in room
//! versions 1 and 2 the event id's; the server that authorised a
//! restricted join), and its content hash. A PDU whose content hash does
//! not match is kept in its redacted form, as the spec says.

use ruma::canonical_json::{redact, CanonicalJsonObject, CanonicalJsonValue};
use ruma::room_version_rules::RoomVersionRules;
use ruma::signatures::required_server_signatures_to_verify_event;
use ruma::{OwnedEventId, RoomVersionId, ServerName};
use serde_json::value::RawValue as RawJsonValue;

use matrixos_federation::{verify_pdu, PublicKeyMap, Verified};

use crate::error::{Error, Result};
use crate::rooms::remote::RemotePdu;
use crate::services::Services;

/// The largest PDU, as JSON, the spec allows.
pub const MAX_PDU_BYTES: usize = 65_536;

/// Key ids looked up per signing server: a PDU naming more is not asking
/// for a real check, and could make this server fetch without end.
const MAX_KEY_IDS: usize = 4;

/// The rules of a room version this server implements.
pub fn rules_of(version: &RoomVersionId) -> Result<RoomVersionRules> {
    version
        .rules()
        .ok_or_else(|| Error::unsupported_room_version(format!("Room version {version}")))
}

/// A PDU as received, parsed into canonical JSON within the size limit.
pub fn parse(raw: &RawJsonValue) -> Result<CanonicalJsonObject> {
    if raw.get().len() > MAX_PDU_BYTES {
        return Err(Error::too_large(format!(
            "A PDU is at most {MAX_PDU_BYTES} bytes"
        )));
    }
    serde_json::from_str(raw.get()).map_err(|e| Error::bad_json(format!("PDU is not JSON: {e}")))
}

/// The room a PDU names, if any (room version 12 create events name none).
pub fn room_id_of(object: &CanonicalJsonObject) -> Result<ruma::OwnedRoomId> {
    match object.get("room_id") {
        Some(CanonicalJsonValue::String(id)) => {
            ruma::RoomId::parse(id).map_err(|e| Error::bad_json(format!("Invalid room_id: {e}")))
        }
        _ => Err(Error::bad_json("PDU has no room_id")),
    }
}

/// Checks a PDU's signatures and content hash (fetching the signing
/// servers' keys as needed) and identifies it for the room core.
pub async fn verified(
    s: &Services,
    version: &RoomVersionId,
    object: CanonicalJsonObject,
) -> Result<RemotePdu> {
    RemotePdu::parse(version, checked(s, version, object).await?)
}

/// [`verified`] for a PDU whose event id is known already (computed from
/// it as received: the id of an event and of its redacted form are one).
pub async fn verified_as(
    s: &Services,
    version: &RoomVersionId,
    object: CanonicalJsonObject,
    event_id: OwnedEventId,
) -> Result<RemotePdu> {
    RemotePdu::parse_as(version, checked(s, version, object).await?, event_id)
}

/// The PDU with its signatures checked, redacted if its content hash
/// does not match.
async fn checked(
    s: &Services,
    version: &RoomVersionId,
    mut object: CanonicalJsonObject,
) -> Result<CanonicalJsonObject> {
    let rules = rules_of(version)?;
    object.remove("unsigned");
    let keys = signing_keys(s, &object, &rules).await?;
    match verify_pdu(&keys, &object, &rules) {
        Ok(Verified::All) => {}
        Ok(Verified::Signatures) => {
            tracing::info!("PDU content hash mismatch: stored redacted");
            object = redact(object, &rules.redaction, None)
                .map_err(|e| Error::bad_json(format!("PDU cannot be redacted: {e}")))?;
        }
        Err(e) => {
            tracing::info!(error = %e, "PDU signature refused");
            return Err(Error::forbidden(format!("Invalid PDU signature: {e}")));
        }
    }
    Ok(object)
}

/// The events of another server's answer (a room's state, an auth chain,
/// missing events) that belong to `room` and pass their checks, in their
/// order; the others are logged and dropped (a caller that needed them
/// fails later, for want of them).
pub async fn verified_of_room(
    s: &Services,
    room: &ruma::RoomId,
    version: &RoomVersionId,
    events: &[Box<RawJsonValue>],
) -> Vec<RemotePdu> {
    let mut out = Vec::with_capacity(events.len());
    for raw in events {
        let object = match parse(raw) {
            Ok(object) => object,
            Err(e) => {
                tracing::info!(%room, error = %e, "unreadable event from another server");
                continue;
            }
        };
        match room_id_of(&object) {
            Ok(id) if id == room => {}
            // A room version 12 create event names no room.
            Err(_)
                if object.get("type")
                    == Some(&CanonicalJsonValue::String("m.room.create".into())) => {}
            _ => {
                tracing::info!(%room, "event of another room from another server");
                continue;
            }
        }
        match verified(s, version, object).await {
            Ok(event) => out.push(event),
            Err(e) => tracing::info!(%room, error = %e, "event from another server refused"),
        }
    }
    out
}

/// The keys of every server whose signature the room version requires,
/// usable at the PDU's timestamp.
async fn signing_keys(
    s: &Services,
    object: &CanonicalJsonObject,
    rules: &RoomVersionRules,
) -> Result<PublicKeyMap> {
    let servers = required_server_signatures_to_verify_event(object, &rules.signatures)
        .map_err(|e| Error::bad_json(format!("Malformed PDU: {e}")))?;
    let at = match object.get("origin_server_ts") {
        Some(CanonicalJsonValue::Integer(ts)) => u64::try_from(i64::from(*ts)).unwrap_or(0),
        _ => return Err(Error::bad_json("PDU has no origin_server_ts")),
    };
    let mut map = PublicKeyMap::new();
    for server in servers {
        if server == s.server_name {
            map.extend(s.signing_key.public_key_map(&server));
            continue;
        }
        let ids = key_ids(object, &server);
        let keys = s.federation.keys.keys_at(&server, &ids, at).await?;
        map.insert(server.to_string(), keys);
    }
    Ok(map)
}

/// The key ids `server` signed the PDU with (at most [`MAX_KEY_IDS`]).
fn key_ids(object: &CanonicalJsonObject, server: &ServerName) -> Vec<String> {
    let Some(CanonicalJsonValue::Object(signatures)) = object.get("signatures") else {
        return Vec::new();
    };
    let Some(CanonicalJsonValue::Object(by_server)) = signatures.get(server.as_str()) else {
        return Vec::new();
    };
    by_server.keys().take(MAX_KEY_IDS).cloned().collect()
}
