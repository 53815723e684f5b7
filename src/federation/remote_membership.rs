//! A local user joins or leaves a room this server is not in, through a
//! resident server. For a join, `make_join` gives a template, this server
//! fills in the user's profile, signs it and sends it back with
//! `send_join`; the answer's state and auth chain are checked event by
//! event (keys fetched as needed) and the room is stored from that
//! snapshot in one batch. A leave (rejecting an invite) goes the same way
//! through `make_leave`/`send_leave`, and a knock through
//! `make_knock`/`send_knock` (kept with the room's stripped state); both
//! are recorded as the user's membership.

use ruma::api::federation::membership::{
    create_join_event::v2 as send_join, create_knock_event::v1 as send_knock,
    create_leave_event::v2 as send_leave, prepare_join_event::v1 as make_join,
    prepare_knock_event::v1 as make_knock, prepare_leave_event::v1 as make_leave,
};
use ruma::canonical_json::{CanonicalJsonObject, CanonicalJsonValue};
use ruma::room_version_rules::EventIdFormatVersion;
use ruma::{
    MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedServerName, RoomId, RoomVersionId, ServerName,
    UserId,
};
use serde_json::value::RawValue as RawJsonValue;

use super::client::Bounds;
use super::pdu_check::{self, rules_of};
use crate::error::{Error, Result};
use crate::random::random_string;
use crate::rooms::remote::{RemotePdu, Snapshot};
use crate::services::membership::profile_content;
use crate::services::Services;

/// Most resident servers tried for one join.
const MAX_TRIES: usize = 5;

/// The room versions this server can join.
fn supported_versions() -> Vec<RoomVersionId> {
    use RoomVersionId::*;
    vec![V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12]
}

/// Where a join by room id may go: the `via` servers, then the server in
/// the room id (room versions before 12 name one).
pub fn join_servers(room: &RoomId, via: &[OwnedServerName]) -> Vec<OwnedServerName> {
    let mut servers: Vec<OwnedServerName> = via.to_vec();
    if let Some(server) = room.server_name() {
        if !servers.iter().any(|s| s == server) {
            servers.push(server.to_owned());
        }
    }
    servers
}

/// Joins `user` to `room` through the first of `servers` that lets them.
pub async fn join(
    s: &Services,
    user: &UserId,
    room: &RoomId,
    servers: &[OwnedServerName],
    reason: Option<&str>,
) -> Result<()> {
    through_first(s, user, room, servers, Change::Join, reason).await
}

/// Knocks on `room` for `user` through the first of `servers` that takes
/// the knock.
pub async fn knock(
    s: &Services,
    user: &UserId,
    room: &RoomId,
    servers: &[OwnedServerName],
    reason: Option<&str>,
) -> Result<()> {
    through_first(s, user, room, servers, Change::Knock, reason).await
}

#[derive(Clone, Copy, Debug)]
enum Change {
    Join,
    Leave,
    Knock,
}

/// Makes the change through each of `servers` (not this one, at most
/// [`MAX_TRIES`]) until one takes it; the last failure otherwise.
async fn through_first(
    s: &Services,
    user: &UserId,
    room: &RoomId,
    servers: &[OwnedServerName],
    change: Change,
    reason: Option<&str>,
) -> Result<()> {
    let mut last = Error::not_found("No server to go through to the room");
    for server in servers
        .iter()
        .filter(|server| **server != s.server_name)
        .take(MAX_TRIES)
    {
        let attempt = match change {
            Change::Join => join_through(s, user, room, server, reason).await,
            Change::Leave => leave_through(s, user, room, server, reason).await,
            Change::Knock => knock_through(s, user, room, server, reason).await,
        };
        match attempt {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::info!(%room, %server, error = %e, ?change, "remote membership failed");
                last = e;
            }
        }
    }
    Err(last)
}

async fn join_through(
    s: &Services,
    user: &UserId,
    room: &RoomId,
    server: &ServerName,
    reason: Option<&str>,
) -> Result<()> {
    let mut request = make_join::Request::new(room.to_owned(), user.to_owned());
    request.ver = supported_versions();
    let offer = s.federation.client.send(server, request).await?;
    let version = offer.room_version.unwrap_or(RoomVersionId::V1);
    let (event, event_id) =
        signed_member_event(s, user, room, &offer.event, &version, "join", reason)?;
    let pdu = serde_json::value::to_raw_value(&event)?;
    let request = send_join::Request::new(room.to_owned(), event_id.clone(), pdu);
    let answer = s
        .federation
        .client
        .send_bounded(server, request, Bounds::ROOM_STATE)
        .await?
        .room_state;
    // A restricted join comes back with the resident server's signature.
    let join = match answer.event {
        Some(signed) => {
            let signed = pdu_check::verified(s, &version, pdu_check::parse(&signed)?).await?;
            if signed.event_id() != &event_id {
                return Err(Error::unavailable("The resident server changed the join"));
            }
            signed
        }
        None => RemotePdu::parse(&version, event)?,
    };
    let state = pdu_check::verified_of_room(s, room, &version, &answer.state).await;
    let auth_chain = pdu_check::verified_of_room(s, room, &version, &answer.auth_chain).await;
    s.rooms
        .join_from_snapshot(Snapshot {
            room_id: room.to_owned(),
            version,
            state,
            auth_chain,
            join,
        })
        .await?;
    Ok(())
}

/// The member event a resident server's template makes, checked to be
/// about this user in this room, with the user's profile (for a join) and
/// the reason added, hashed and signed here; with its id.
fn signed_member_event(
    s: &Services,
    user: &UserId,
    room: &RoomId,
    template: &RawJsonValue,
    version: &RoomVersionId,
    membership: &str,
    reason: Option<&str>,
) -> Result<(CanonicalJsonObject, OwnedEventId)> {
    let rules = rules_of(version)?;
    let mut event: CanonicalJsonObject = serde_json::from_str(template.get())
        .map_err(|e| Error::unavailable(format!("Bad make_join template: {e}")))?;
    let text = |event: &CanonicalJsonObject, key: &str| match event.get(key) {
        Some(CanonicalJsonValue::String(value)) => Some(value.clone()),
        _ => None,
    };
    let is_ours = text(&event, "type").as_deref() == Some("m.room.member")
        && text(&event, "sender").as_deref() == Some(user.as_str())
        && text(&event, "state_key").as_deref() == Some(user.as_str())
        && text(&event, "room_id").as_deref() == Some(room.as_str());
    if !is_ours {
        return Err(Error::unavailable(
            "The resident server's template is not about this user",
        ));
    }
    let mut content = match event.remove("content") {
        Some(CanonicalJsonValue::Object(content)) => content,
        _ => CanonicalJsonObject::new(),
    };
    if membership == "join" {
        for (key, value) in profile_content(s, user)? {
            if let Ok(value) = serde_json::from_value(value) {
                content.insert(key, value);
            }
        }
    }
    content.insert(
        "membership".into(),
        CanonicalJsonValue::String(membership.into()),
    );
    if let Some(reason) = reason {
        content.insert("reason".into(), CanonicalJsonValue::String(reason.into()));
    }
    event.insert("content".into(), CanonicalJsonValue::Object(content));
    for field in ["signatures", "hashes", "unsigned", "event_id", "origin"] {
        event.remove(field);
    }
    let now: u64 = MilliSecondsSinceUnixEpoch::now().get().into();
    event.insert(
        "origin_server_ts".into(),
        CanonicalJsonValue::Integer(ruma::Int::try_from(now).unwrap_or_default()),
    );
    if rules.event_id_format == EventIdFormatVersion::V1 {
        event.insert(
            "event_id".into(),
            CanonicalJsonValue::String(format!("${}:{}", random_string(24), s.server_name)),
        );
    }
    matrixos_federation::hash_and_sign_pdu(&s.server_name, &s.signing_key, &mut event, &rules)
        .map_err(|e| Error::internal(format!("signing a member event: {e}")))?;
    let event_id = matrixos_federation::event_id_for_pdu(&event, &rules)
        .map_err(|e| Error::internal(format!("naming a member event: {e}")))?;
    Ok((event, event_id))
}

/// Leaves (or rejects an invite to) a room this server is not in,
/// through the first of `servers` that takes the leave.
pub async fn leave(
    s: &Services,
    user: &UserId,
    room: &RoomId,
    servers: &[OwnedServerName],
    reason: Option<&str>,
) -> Result<()> {
    through_first(s, user, room, servers, Change::Leave, reason).await
}

async fn leave_through(
    s: &Services,
    user: &UserId,
    room: &RoomId,
    server: &ServerName,
    reason: Option<&str>,
) -> Result<()> {
    let request = make_leave::Request::new(room.to_owned(), user.to_owned());
    let offer = s.federation.client.send(server, request).await?;
    let version = offer.room_version.unwrap_or(RoomVersionId::V1);
    let (event, event_id) =
        signed_member_event(s, user, room, &offer.event, &version, "leave", reason)?;
    let pdu = serde_json::value::to_raw_value(&event)?;
    let request = send_leave::Request::new(room.to_owned(), event_id, pdu);
    s.federation.client.send(server, request).await?;
    let (pdu, stored) = RemotePdu::parse(&version, event)?.into_parts();
    s.rooms
        .record_out_of_room(room, user, pdu, stored, "leave", Vec::new())
        .await
}

async fn knock_through(
    s: &Services,
    user: &UserId,
    room: &RoomId,
    server: &ServerName,
    reason: Option<&str>,
) -> Result<()> {
    let mut request = make_knock::Request::new(room.to_owned(), user.to_owned());
    request.ver = supported_versions()
        .into_iter()
        .filter(|v| v.rules().is_some_and(|r| r.authorization.knocking))
        .collect();
    let offer = s.federation.client.send(server, request).await?;
    let version = offer.room_version;
    let (event, event_id) =
        signed_member_event(s, user, room, &offer.event, &version, "knock", reason)?;
    let pdu = serde_json::value::to_raw_value(&event)?;
    let request = send_knock::Request::new(room.to_owned(), event_id, pdu);
    let answer = s.federation.client.send(server, request).await?;
    let stripped = super::invites::stripped_forms(&answer.knock_room_state);
    let (pdu, stored) = RemotePdu::parse(&version, event)?.into_parts();
    s.rooms
        .record_out_of_room(room, user, pdu, stored, "knock", stripped)
        .await
}
