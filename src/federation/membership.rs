//! Joins and leaves through this server by users of other servers:
//! `make_join`/`make_leave` hand out an event template built on the room's
//! current state; `send_join`/`send_leave` take the signed event, check it
//! as any PDU, append it, pass it on to the room's other servers and (for a
//! join) answer with the state before it and its auth chain. Knocks go the
//! same way (`make_knock`/`send_knock`), answered with the room's stripped
//! state.

use std::sync::Arc;

use axum::Router;
use http::StatusCode;
use ruma::api::federation::membership::{
    create_join_event::v2 as send_join, create_knock_event::v1 as send_knock,
    create_leave_event::v2 as send_leave, prepare_join_event::v1 as make_join,
    prepare_knock_event::v1 as make_knock, prepare_leave_event::v1 as make_leave,
};
use ruma::canonical_json::{CanonicalJsonObject, CanonicalJsonValue};
use ruma::{EventId, OwnedEventId, RoomId, RoomVersionId, ServerName, UserId};
use serde_json::json;
use serde_json::value::RawValue as RawJsonValue;

use super::events::signed_raw;
use super::pdu_check::{self, rules_of};
use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::rooms::remote::Appended;
use crate::services::membership::restricted_join_authoriser;
use crate::services::Services;

pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .reading(prepare_join)
        .reading(prepare_leave)
        .reading(prepare_knock)
        .endpoint(join)
        .endpoint(leave)
        .endpoint(knock)
}

/// A user's membership may be changed only by their own server.
fn check_user_of(origin: &ServerName, user: &UserId) -> Result<()> {
    if user.server_name() != origin {
        return Err(Error::forbidden("The user belongs to another server"));
    }
    Ok(())
}

/// The version of a room this server is in, or 404; 403 for a server
/// the room's ACL denies.
fn version_of_room_here(s: &Services, room: &RoomId, origin: &ServerName) -> Result<RoomVersionId> {
    let (_, record) = s
        .rooms
        .record_of(room)
        .map_err(|_| Error::not_found("Unknown room"))?;
    if !s.rooms.servers_in_room(room)?.contains(&s.server_name) {
        return Err(Error::not_found("This server is not in the room"));
    }
    super::acl::check(s, room, origin)?;
    Ok(record.version)
}

fn template_response(template: serde_json::Value) -> Result<Box<RawJsonValue>> {
    Ok(serde_json::value::to_raw_value(&template)?)
}

/// Refuses a room version the asking server does not support.
fn check_supported(version: &RoomVersionId, supported: &[RoomVersionId]) -> Result<()> {
    if !supported.contains(version) {
        return Err(incompatible(
            version,
            format!("Your server does not support room version {version}"),
        ));
    }
    Ok(())
}

fn incompatible(version: &RoomVersionId, message: String) -> Error {
    Error::new(
        StatusCode::BAD_REQUEST,
        "M_INCOMPATIBLE_ROOM_VERSION",
        message,
    )
    .with_extra(json!({ "room_version": version }))
}

fn prepare_join(s: Arc<Services>, req: Ruma<make_join::Request>) -> Result<make_join::Response> {
    let Ruma { body, caller, .. } = req;
    check_user_of(&caller.0, &body.user_id)?;
    let version = version_of_room_here(&s, &body.room_id, &caller.0)?;
    check_supported(&version, &body.ver)?;
    let mut content = json!({ "membership": "join" });
    if let Some(via) = restricted_join_authoriser(&s, &body.room_id, &body.user_id)? {
        content["join_authorised_via_users_server"] = json!(via);
    }
    let (version, template) = s
        .rooms
        .membership_template(&body.room_id, &body.user_id, content)?;
    let mut response = make_join::Response::new(template_response(template)?);
    response.room_version = Some(version);
    Ok(response)
}

fn prepare_leave(s: Arc<Services>, req: Ruma<make_leave::Request>) -> Result<make_leave::Response> {
    let Ruma { body, caller, .. } = req;
    check_user_of(&caller.0, &body.user_id)?;
    version_of_room_here(&s, &body.room_id, &caller.0)?;
    let (version, template) = s.rooms.membership_template(
        &body.room_id,
        &body.user_id,
        json!({ "membership": "leave" }),
    )?;
    Ok(make_leave::Response::new(
        Some(version),
        template_response(template)?,
    ))
}

fn prepare_knock(s: Arc<Services>, req: Ruma<make_knock::Request>) -> Result<make_knock::Response> {
    let Ruma { body, caller, .. } = req;
    check_user_of(&caller.0, &body.user_id)?;
    let version = version_of_room_here(&s, &body.room_id, &caller.0)?;
    check_supported(&version, &body.ver)?;
    if !rules_of(&version)?.authorization.knocking {
        return Err(incompatible(
            &version,
            format!("Room version {version} does not allow knocking"),
        ));
    }
    let (_, record) = s.rooms.record_of(&body.room_id)?;
    let rule = s
        .rooms
        .state_event(record.state, "m.room.join_rules", "")?
        .and_then(|e| serde_json::from_str::<serde_json::Value>(e.content.get()).ok())
        .and_then(|c| c["join_rule"].as_str().map(str::to_owned));
    if !matches!(rule.as_deref(), Some("knock" | "knock_restricted")) {
        return Err(Error::forbidden("This room does not take knocks"));
    }
    let (version, template) = s.rooms.membership_template(
        &body.room_id,
        &body.user_id,
        json!({ "membership": "knock" }),
    )?;
    Ok(make_knock::Response::new(
        version,
        template_response(template)?,
    ))
}

/// The checks a `send_join`/`send_leave`/`send_knock` event passes before it is
/// treated as any PDU: a member event of this room about its own sender,
/// a user of the calling server, with the membership the endpoint is for.
fn check_membership_event(
    object: &CanonicalJsonObject,
    origin: &ServerName,
    room: &RoomId,
    membership: &str,
) -> Result<()> {
    let text = |key: &str| match object.get(key) {
        Some(CanonicalJsonValue::String(value)) => Some(value.as_str()),
        _ => None,
    };
    if text("type") != Some("m.room.member") {
        return Err(Error::bad_json("Not a member event"));
    }
    if text("room_id") != Some(room.as_str()) {
        return Err(Error::bad_json("The event is for another room"));
    }
    let sender = text("sender").ok_or_else(|| Error::bad_json("No sender"))?;
    if text("state_key") != Some(sender) {
        return Err(Error::bad_json("The state key must be the sender"));
    }
    let sender = UserId::parse(sender).map_err(|_| Error::bad_json("Invalid sender"))?;
    check_user_of(origin, &sender)?;
    let given = match object.get("content") {
        Some(CanonicalJsonValue::Object(content)) => match content.get("membership") {
            Some(CanonicalJsonValue::String(m)) => Some(m.as_str()),
            _ => None,
        },
        _ => None,
    };
    if given != Some(membership) {
        return Err(Error::bad_json(format!(
            "The membership must be {membership}"
        )));
    }
    Ok(())
}

/// The local user a restricted join names as its authoriser, if any.
fn authorised_here(s: &Services, object: &CanonicalJsonObject) -> bool {
    let Some(CanonicalJsonValue::Object(content)) = object.get("content") else {
        return false;
    };
    match content.get("join_authorised_via_users_server") {
        Some(CanonicalJsonValue::String(user)) => {
            UserId::parse(user).is_ok_and(|u| u.server_name() == s.server_name)
        }
        _ => false,
    }
}

/// Checks, appends and relays a member event a server sent for its user.
/// Returns the event id and whether this server added its signature.
async fn accept_membership(
    s: &Arc<Services>,
    origin: &ServerName,
    room: &RoomId,
    event_id: &EventId,
    pdu: &RawJsonValue,
    membership: &str,
) -> Result<(OwnedEventId, bool)> {
    let version = version_of_room_here(s, room, origin)?;
    let mut object = pdu_check::parse(pdu)?;
    check_membership_event(&object, origin, room, membership)?;
    let signs_here = membership == "join" && authorised_here(s, &object);
    if signs_here {
        let rules = rules_of(&version)?;
        ruma::signatures::sign_event(
            s.server_name.as_str(),
            s.signing_key.key_pair(),
            &mut object,
            &rules.redaction,
        )
        .map_err(|e| Error::bad_json(format!("Cannot sign the join: {e}")))?;
    }
    let remote = pdu_check::verified(s, &version, object).await?;
    if remote.event_id() != event_id {
        return Err(Error::bad_json("The event id does not match the event"));
    }
    let Appended {
        event_id,
        verdict,
        reason,
    } = s.rooms.append_remote(room, remote).await?;
    if !verdict.is_accepted() {
        return Err(Error::forbidden(format!(
            "The event was refused: {}",
            reason.unwrap_or_default()
        )));
    }
    s.federation
        .outbox
        .relay(s, room, &event_id, origin)
        .await?;
    Ok((event_id, signs_here))
}

async fn join(s: Arc<Services>, req: Ruma<send_join::Request>) -> Result<send_join::Response> {
    let Ruma { body, caller, .. } = req;
    let answer = join_answer(s, &caller.0, &body.room_id, &body.event_id, &body.pdu).await?;
    Ok(send_join::Response::new(answer))
}

/// Takes another server's join event; answers the room's state and auth
/// chain at it (the body of `send_join` v1 and v2).
pub(super) async fn join_answer(
    s: Arc<Services>,
    origin: &ServerName,
    room: &RoomId,
    event_id: &EventId,
    pdu: &RawJsonValue,
) -> Result<send_join::RoomState> {
    let (event_id, signed_here) =
        accept_membership(&s, origin, room, event_id, pdu, "join").await?;
    let services = s.clone();
    let room_id = room.to_owned();
    crate::blocking::off_async(move || {
        let s = services;
        let short = s.rooms.timeline_event_in(&room_id, &event_id)?;
        let state = s.rooms.state_before_event(&room_id, &event_id)?;
        let mut chain_of = state.clone();
        chain_of.push(short);
        let chain = s.rooms.auth_chain_union(&chain_of)?;
        let mut answer = send_join::RoomState::new();
        answer.state = state
            .iter()
            .map(|short| signed_raw(&s, *short))
            .collect::<Result<_>>()?;
        answer.auth_chain = chain
            .iter()
            .map(|short| signed_raw(&s, *short))
            .collect::<Result<_>>()?;
        answer.servers_in_room = Some(
            s.rooms
                .servers_in_room(&room_id)?
                .into_iter()
                .map(|server| server.to_string())
                .collect(),
        );
        if signed_here {
            answer.event = Some(signed_raw(&s, short)?);
        }
        Ok(answer)
    })
    .await
}

async fn leave(s: Arc<Services>, req: Ruma<send_leave::Request>) -> Result<send_leave::Response> {
    let Ruma { body, caller, .. } = req;
    leave_taken(&s, &caller.0, &body.room_id, &body.event_id, &body.pdu).await?;
    Ok(send_leave::Response::new())
}

/// Takes another server's leave event (`send_leave` v1 and v2).
pub(super) async fn leave_taken(
    s: &Arc<Services>,
    origin: &ServerName,
    room: &RoomId,
    event_id: &EventId,
    pdu: &RawJsonValue,
) -> Result<()> {
    accept_membership(s, origin, room, event_id, pdu, "leave").await?;
    Ok(())
}

async fn knock(s: Arc<Services>, req: Ruma<send_knock::Request>) -> Result<send_knock::Response> {
    let Ruma { body, caller, .. } = req;
    let room = &body.room_id;
    accept_membership(&s, &caller.0, room, &body.event_id, &body.pdu, "knock").await?;
    let (_, record) = s.rooms.record_of(room)?;
    let stripped = super::invites::stripped_state_pdus(&s, record.state)?;
    Ok(send_knock::Response::new(stripped))
}
