//! `POST /createRoom`.

use std::sync::Arc;

use axum::Router;
use ruma::api::client::room::{create_room, Visibility};
use ruma::events::StateEventType;
use ruma::serde::Raw;
use ruma::{RoomAliasId, RoomVersionId, UserId};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::rooms::create::{CreateRoom, Preset};
use crate::rooms::send::EventDraft;
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    crate::http::body_check::before_parsing(Router::new().endpoint(create), room_version_as_synapse)
}

/// Synapse's answer on a `room_version` ruma cannot take as a room version
/// id at all (empty, too long, odd characters), where ruma's is a
/// malformed-body error: this server does not support it. A version that
/// parses is the handler's to judge.
fn room_version_as_synapse(body: &[u8]) -> Result<Option<Vec<u8>>> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return Ok(None);
    };
    match body.get("room_version") {
        Some(Value::String(version)) if RoomVersionId::try_from(version.as_str()).is_err() => Err(
            Error::unsupported_room_version("Your homeserver does not support this room version"),
        ),
        _ => Ok(None),
    }
}

type Request = create_room::v3::Request;

/// The preset asked for; without one, public rooms are public chats and
/// every other room a private chat.
fn preset(req: &Request) -> Result<Preset> {
    use create_room::v3::RoomPreset;
    Ok(match &req.preset {
        Some(RoomPreset::PrivateChat) => Preset::PrivateChat,
        Some(RoomPreset::TrustedPrivateChat) => Preset::TrustedPrivateChat,
        Some(RoomPreset::PublicChat) => Preset::PublicChat,
        Some(other) => {
            return Err(Error::invalid_param(format!(
                "Unknown preset {}",
                other.as_str()
            )))
        }
        None if req.visibility == Visibility::Public => Preset::PublicChat,
        None => Preset::PrivateChat,
    })
}

/// An object field given as raw JSON (`creation_content`,
/// `power_level_content_override`), kept as sent.
fn object<T>(field: &str, raw: Option<&Raw<T>>) -> Result<Option<Map<String, Value>>> {
    raw.map(|raw| {
        serde_json::from_str(raw.json().get())
            .map_err(|_| Error::bad_json(format!("{field} must be an object")))
    })
    .transpose()
}

/// One `initial_state` entry: a type, a state key (empty when left out)
/// and content that is an object, kept as sent.
#[derive(Deserialize)]
struct InitialState {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    state_key: String,
    content: Map<String, Value>,
}

fn initial_state<T>(list: &[Raw<T>]) -> Result<Vec<EventDraft>> {
    list.iter()
        .map(|raw| {
            let event: InitialState = serde_json::from_str(raw.json().get()).map_err(|e| {
                Error::bad_json(format!(
                    "initial_state events need a type and object content: {e}"
                ))
            })?;
            Ok(EventDraft::state(
                event.kind.into(),
                event.state_key,
                Value::Object(event.content),
            ))
        })
        .collect()
}

fn options(s: &Services, creator: &UserId, req: Request) -> Result<CreateRoom> {
    let preset = preset(&req)?;
    let version = match req.room_version {
        Some(version) => version,
        None => RoomVersionId::try_from(s.config.default_room_version.as_str())
            .map_err(|_| Error::unsupported_room_version("Invalid room version"))?,
    };
    let alias = req
        .room_alias_name
        .map(|local| {
            RoomAliasId::parse(format!("#{local}:{}", s.server_name))
                .map_err(|_| Error::invalid_param("Invalid room alias"))
        })
        .transpose()?;
    Ok(CreateRoom {
        version,
        preset,
        name: req.name,
        topic: req.topic,
        alias,
        invite: req.invite,
        is_direct: req.is_direct,
        creation_content: object("creation_content", req.creation_content.as_ref())?
            .unwrap_or_default(),
        power_level_override: object(
            "power_level_content_override",
            req.power_level_content_override.as_ref(),
        )?,
        initial_state: initial_state(&req.initial_state)?,
        creator_profile: crate::services::membership::profile_content(s, creator)?,
    })
}

async fn create(
    s: Arc<Services>,
    req: Ruma<create_room::v3::Request>,
) -> Result<create_room::v3::Response> {
    let creator = req.caller.user_id;
    let public = req.body.visibility == Visibility::Public;
    let opts = options(&s, &creator, req.body)?;
    let remote: Vec<_> = opts
        .invite
        .iter()
        .filter(|u| u.server_name() != s.server_name)
        .cloned()
        .collect();
    let is_direct = opts.is_direct;
    let room_id = s.rooms.create_room(&creator, opts).await?;
    for invitee in remote {
        let mut content = json!({ "membership": "invite" });
        if is_direct {
            content["is_direct"] = json!(true);
        }
        let draft = EventDraft::state(StateEventType::RoomMember, invitee.as_str(), content);
        if let Err(e) =
            crate::federation::invites::invite_remote(&s, &creator, &room_id, &invitee, draft).await
        {
            tracing::info!(room = %room_id, %invitee, error = %e, "invite at room creation failed");
        }
    }
    if public {
        s.rooms.set_published(&room_id, true).await?;
    }
    tracing::info!(room = %room_id, creator = %creator, "room created");
    Ok(create_room::v3::Response::new(room_id))
}
