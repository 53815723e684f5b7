//! Invites across servers. Inbound (`PUT /_matrix/federation/v2/invite`):
//! another server's user invites one of ours; the event is checked, signed
//! here and recorded so the invitee sees it (with the room's stripped
//! state) before this server is in the room. Outbound: a local user
//! invites someone of another server; the event is built and signed here,
//! countersigned by their server, then appended to the room.

use std::sync::Arc;

use axum::Router;
use http::StatusCode;
use ruma::api::federation::membership::create_invite::v2 as create_invite;
use ruma::api::federation::membership::RawStrippedState;
use ruma::canonical_json::{CanonicalJsonObject, CanonicalJsonValue};
use ruma::{EventId, OwnedServerName, RoomId, RoomVersionId, UserId};
use serde_json::value::RawValue as RawJsonValue;
use serde_json::{json, Value};

use super::pdu_check::{self, rules_of};
use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::rooms::send::EventDraft;
use crate::services::Services;

/// Most stripped state events kept with an invite.
const MAX_INVITE_STATE: usize = 50;

pub fn routes() -> Router<Arc<Services>> {
    Router::new().endpoint(invited)
}

fn text<'a>(object: &'a CanonicalJsonObject, key: &str) -> Option<&'a str> {
    match object.get(key) {
        Some(CanonicalJsonValue::String(value)) => Some(value),
        _ => None,
    }
}

fn membership_of(object: &CanonicalJsonObject) -> Option<&str> {
    match object.get("content") {
        Some(CanonicalJsonValue::Object(content)) => match content.get("membership") {
            Some(CanonicalJsonValue::String(m)) => Some(m),
            _ => None,
        },
        _ => None,
    }
}

async fn invited(
    s: Arc<Services>,
    req: Ruma<create_invite::Request>,
) -> Result<create_invite::Response> {
    let Ruma { body, caller, .. } = req;
    let invite = Invite {
        room_id: &body.room_id,
        event_id: &body.event_id,
        version: body.room_version.clone(),
        event: &body.event,
        stripped: stripped_forms(&body.invite_room_state),
    };
    Ok(create_invite::Response::new(
        take_invite(s, caller.0, invite).await?,
    ))
}

/// An invite another server sends (`invite` v1 or v2).
pub(super) struct Invite<'a> {
    pub room_id: &'a RoomId,
    pub event_id: &'a EventId,
    pub version: RoomVersionId,
    pub event: &'a RawJsonValue,
    /// The room's stripped state as clients are shown it.
    pub stripped: Vec<Value>,
}

/// Checks an invite of one of our users, countersigns it and records it;
/// answers the event as signed by both servers.
pub(super) async fn take_invite(
    s: Arc<Services>,
    origin: OwnedServerName,
    body: Invite<'_>,
) -> Result<Box<RawJsonValue>> {
    let version = body.version;
    let rules = rules_of(&version).map_err(|_| {
        Error::new(
            StatusCode::BAD_REQUEST,
            "M_INCOMPATIBLE_ROOM_VERSION",
            format!("This server does not support room version {version}"),
        )
        .with_extra(json!({ "room_version": version }))
    })?;
    let mut object = pdu_check::parse(body.event)?;
    if text(&object, "type") != Some("m.room.member") || membership_of(&object) != Some("invite") {
        return Err(Error::bad_json("Not an invite"));
    }
    if text(&object, "room_id") != Some(body.room_id.as_str()) {
        return Err(Error::bad_json("The invite is for another room"));
    }
    let sender = text(&object, "sender")
        .and_then(|u| UserId::parse(u).ok())
        .ok_or_else(|| Error::bad_json("Invalid sender"))?;
    if sender.server_name() != origin {
        return Err(Error::forbidden("The inviter belongs to another server"));
    }
    let invitee = text(&object, "state_key")
        .and_then(|u| UserId::parse(u).ok())
        .ok_or_else(|| Error::bad_json("Invalid state_key"))?;
    if invitee.server_name() != s.server_name || !s.accounts.exists(&invitee)? {
        return Err(Error::not_found("No such user on this server"));
    }
    // A room an admin blocked here takes no invites of our users (Synapse).
    crate::services::membership::check_not_blocked(&s, body.room_id, "invite")?;
    ruma::signatures::sign_event(
        s.server_name.as_str(),
        s.signing_key.key_pair(),
        &mut object,
        &rules.redaction,
    )
    .map_err(|e| Error::bad_json(format!("Cannot sign the invite: {e}")))?;
    let remote = pdu_check::verified(&s, &version, object).await?;
    if remote.event_id() != body.event_id {
        return Err(Error::bad_json("The event id does not match the event"));
    }
    let signed = remote.signed_json()?;
    super::acl::check(&s, body.room_id, &origin)?;
    if s.rooms.has_joined_member(body.room_id)? {
        // A room this server is in: the invite is an event like any other.
        let appended = s.rooms.append_remote(body.room_id, remote).await?;
        if !appended.verdict.is_accepted() {
            return Err(Error::forbidden(format!(
                "The invite was refused: {}",
                appended.reason.unwrap_or_default()
            )));
        }
    } else {
        s.rooms
            .store_remote_invite(body.room_id, remote, body.stripped)
            .await?;
        s.ai.invited_from_elsewhere(&invitee, body.room_id, &sender);
    }
    Ok(signed)
}

/// The stripped state of a room's state `state` for another server: the
/// events as signed PDUs (Matrix 1.16).
pub fn stripped_state_pdus(s: &Services, state: u64) -> Result<Vec<RawStrippedState>> {
    s.rooms
        .stripped_state_events(state)?
        .into_iter()
        .map(|short| Ok(RawStrippedState::Pdu(super::events::signed_raw(s, short)?)))
        .collect()
}

/// The stripped state another server gave with an invite or a knock, as
/// clients are shown it (at most [`MAX_INVITE_STATE`] events).
pub fn stripped_forms(state: &[RawStrippedState]) -> Vec<Value> {
    state
        .iter()
        .take(MAX_INVITE_STATE)
        .filter_map(|raw| {
            #[allow(deprecated)]
            let json = match raw {
                RawStrippedState::Stripped(event) => event.json().get(),
                RawStrippedState::Pdu(pdu) => pdu.get(),
                _ => return None,
            };
            stripped_form(&serde_json::from_str(json).ok()?)
        })
        .collect()
}

/// Stripped state events given as JSON values (an `invite` v1 event's
/// `unsigned.invite_room_state`), as clients are shown them.
pub fn stripped_forms_of_values(state: &[Value]) -> Vec<Value> {
    state
        .iter()
        .take(MAX_INVITE_STATE)
        .filter_map(stripped_form)
        .collect()
}

/// An invite's stripped state event as clients are shown it: type, state
/// key, content and sender, whether it came stripped or as a full PDU.
fn stripped_form(event: &Value) -> Option<Value> {
    let mut out = serde_json::Map::new();
    for key in ["type", "state_key", "content", "sender"] {
        out.insert(key.to_owned(), event.get(key)?.clone());
    }
    Some(Value::Object(out))
}

/// Invites a user of another server: the invite is built here, signed by
/// their server, then appended. A refusal by their server is the answer.
pub async fn invite_remote(
    s: &Services,
    sender: &UserId,
    room: &RoomId,
    invitee: &UserId,
    draft: EventDraft,
) -> Result<()> {
    let (version, event) = s.rooms.build_unstored(sender, room, draft).await?;
    let rules = rules_of(&version)?;
    let event_id = matrixos_federation::event_id_for_pdu(&event, &rules)
        .map_err(|e| Error::internal(format!("naming the invite: {e}")))?;
    let (_, record) = s.rooms.record_of(room)?;
    let stripped = stripped_state_pdus(s, record.state)?;
    let request = create_invite::Request::new(
        room.to_owned(),
        event_id.clone(),
        version.clone(),
        serde_json::value::to_raw_value(&event)?,
        stripped,
    );
    let answer = s
        .federation
        .client
        .send(invitee.server_name(), request)
        .await
        .map_err(|e| {
            Error::forbidden(format!(
                "{} refused the invite: {}",
                invitee.server_name(),
                e.message
            ))
        })?;
    let signed = pdu_check::parse(&answer.event)?;
    let remote = pdu_check::verified(s, &version, signed.clone()).await?;
    if remote.event_id() != &event_id {
        return Err(Error::unavailable(
            "The invitee's server changed the invite",
        ));
    }
    let countersigned = match signed.get("signatures") {
        Some(CanonicalJsonValue::Object(by_server)) => {
            by_server.contains_key(invitee.server_name().as_str())
        }
        _ => false,
    };
    if !countersigned {
        return Err(Error::unavailable(
            "The invitee's server did not sign the invite",
        ));
    }
    let appended = s.rooms.append_remote(room, remote).await?;
    if !appended.verdict.is_accepted() {
        return Err(Error::forbidden(format!(
            "The invite was refused: {}",
            appended.reason.unwrap_or_default()
        )));
    }
    Ok(())
}
