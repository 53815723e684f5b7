//! `/directory/room/{alias}`, `/rooms/{id}/aliases`, `/directory/list/room`
//! and `/publicRooms`.

use std::sync::Arc;

use axum::Router;
use ruma::api::client::alias::{create_alias, delete_alias, get_alias};
use ruma::api::client::directory::{
    get_public_rooms, get_public_rooms_filtered, get_room_visibility, set_room_visibility,
};
use ruma::api::client::room::{aliases, Visibility};
use ruma::api::federation::directory as federation_directory;
use ruma::api::federation::query::get_room_information::v1 as room_information;
use ruma::{RoomAliasId, ServerName};

use crate::error::{Error, Result};
use crate::federation::client::{Bounds, DEFAULT_TIMEOUT};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::public_rooms::{page_answer, public_rooms};
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .endpoint(get_alias)
        .endpoint(put_alias)
        .endpoint(delete_alias)
        .endpoint(room_aliases)
        .endpoint(get_visibility)
        .merge(crate::http::body_check::before_parsing(
            Router::new().endpoint(set_visibility),
            visibility_defaults_to_public,
        ))
        .endpoint(get_public_rooms)
        .endpoint(post_public_rooms)
}

/// Aliases of other servers are created and deleted there.
fn check_local(s: &Services, alias: &RoomAliasId) -> Result<()> {
    if alias.server_name() != s.server_name {
        return Err(Error::invalid_param("Room alias is not on this server"));
    }
    Ok(())
}

async fn get_alias(
    s: Arc<Services>,
    req: Ruma<get_alias::v3::Request>,
) -> Result<get_alias::v3::Response> {
    let alias = req.body.room_alias;
    if alias.server_name() != s.server_name {
        let server = alias.server_name().to_owned();
        let request = room_information::Request::new(alias);
        let remote = s.federation.client.send(&server, request).await?;
        return Ok(get_alias::v3::Response::new(remote.room_id, remote.servers));
    }
    let room = s
        .rooms
        .alias_target(&alias)?
        .ok_or_else(|| Error::not_found("Room alias not found"))?;
    let servers = s.rooms.servers_in_room(&room)?;
    Ok(get_alias::v3::Response::new(room, servers))
}

async fn put_alias(
    s: Arc<Services>,
    req: Ruma<create_alias::v3::Request>,
) -> Result<create_alias::v3::Response> {
    let (alias, room, caller) = (&req.body.room_alias, &req.body.room_id, &req.caller);
    check_local(&s, alias)?;
    if s.rooms.short_room(room)?.is_none() {
        return Err(Error::not_found("Unknown room"));
    }
    // Only members may name a room (Synapse checks the same): an alias is
    // public, and whoever made it may delete it again.
    if !s.rooms.is_joined(&caller.user_id, room)? {
        return Err(Error::forbidden("You are not in this room"));
    }
    s.rooms.set_alias(alias, room, &caller.user_id).await?;
    Ok(create_alias::v3::Response::new())
}

async fn delete_alias(
    s: Arc<Services>,
    req: Ruma<delete_alias::v3::Request>,
) -> Result<delete_alias::v3::Response> {
    let (alias, caller) = (&req.body.room_alias, &req.caller.user_id);
    check_local(&s, alias)?;
    let record = s
        .rooms
        .alias(alias)?
        .ok_or_else(|| Error::not_found("Room alias not found"))?;
    let admin = s.accounts.get(caller)?.is_some_and(|u| u.admin);
    let may = record.creator == *caller || admin || {
        let (_, room) = s.rooms.record_of(&record.room_id)?;
        s.rooms.has_level(&room, caller, "state_default", 50)?
    };
    if !may {
        return Err(Error::forbidden("You may not delete this alias"));
    }
    s.rooms.delete_alias(alias, &record).await?;
    Ok(delete_alias::v3::Response::new())
}

async fn room_aliases(
    s: Arc<Services>,
    req: Ruma<aliases::v3::Request>,
) -> Result<aliases::v3::Response> {
    let room = &req.body.room_id;
    s.rooms
        .reader(&req.caller.user_id, room)?
        .readable_state()?;
    Ok(aliases::v3::Response::new(s.rooms.aliases_of(room)?))
}

async fn get_visibility(
    s: Arc<Services>,
    req: Ruma<get_room_visibility::v3::Request>,
) -> Result<get_room_visibility::v3::Response> {
    let room = &req.body.room_id;
    s.rooms.record_of(room)?;
    let visibility = if s.rooms.is_published(room)? {
        Visibility::Public
    } else {
        Visibility::Private
    };
    Ok(get_room_visibility::v3::Response::new(visibility))
}

/// A directory visibility request without `visibility` publishes the
/// room, as Synapse does; ruma would refuse it.
fn visibility_defaults_to_public(body: &[u8]) -> Result<Option<Vec<u8>>> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body) {
        Ok(mut map) if !map.contains_key("visibility") => {
            map.insert("visibility".into(), "public".into());
            Ok(Some(serde_json::to_vec(&map)?))
        }
        // Present, or not a JSON object: the extractor answers.
        _ => Ok(None),
    }
}

async fn set_visibility(
    s: Arc<Services>,
    req: Ruma<set_room_visibility::v3::Request>,
) -> Result<set_room_visibility::v3::Response> {
    let (room, caller) = (&req.body.room_id, &req.caller.user_id);
    let (_, record) = s.rooms.record_of(room)?;
    let public = match req.body.visibility {
        Visibility::Public => true,
        Visibility::Private => false,
        _ => return Err(Error::invalid_param("visibility must be public or private")),
    };
    if !s.rooms.is_joined(caller, room)?
        || !s.rooms.has_level(&record, caller, "state_default", 50)?
    {
        return Err(Error::forbidden(
            "You may not change this room's visibility",
        ));
    }
    s.rooms.set_published(room, public).await?;
    Ok(set_room_visibility::v3::Response::new())
}

/// Another server's directory page may be long (a client may ask for no
/// limit), and only signed-in callers ask for one.
const REMOTE_DIRECTORY_BOUNDS: Bounds = Bounds {
    max_response: 8 * 1024 * 1024,
    timeout: DEFAULT_TIMEOUT,
};

/// Whether `server` names another server's directory; asking another
/// server is done only for a signed-in caller.
fn remote_directory<'a>(
    s: &Services,
    server: Option<&'a ServerName>,
    token: Option<&str>,
) -> Result<Option<&'a ServerName>> {
    let Some(server) = server.filter(|server| *server != s.server_name) else {
        return Ok(None);
    };
    let token = token.ok_or_else(Error::missing_token)?;
    s.accounts.authenticate(token)?;
    Ok(Some(server))
}

async fn get_public_rooms(
    s: Arc<Services>,
    req: Ruma<get_public_rooms::v3::Request>,
) -> Result<get_public_rooms::v3::Response> {
    let body = req.body;
    let out = get_public_rooms::v3::Response::new(Vec::new());
    if let Some(server) = remote_directory(&s, body.server.as_deref(), req.caller.as_deref())? {
        let mut request = federation_directory::get_public_rooms::v1::Request::new();
        request.limit = body.limit;
        request.since = body.since;
        let remote = s
            .federation
            .client
            .send_bounded(server, request, REMOTE_DIRECTORY_BOUNDS)
            .await?;
        return Ok(page_answer!(out, remote));
    }
    let page = public_rooms(&s, body.limit, body.since.as_deref(), None)?;
    Ok(page_answer!(out, page))
}

async fn post_public_rooms(
    s: Arc<Services>,
    req: Ruma<get_public_rooms_filtered::v3::Request>,
) -> Result<get_public_rooms_filtered::v3::Response> {
    let body = req.body;
    let out = get_public_rooms_filtered::v3::Response::new();
    if let Some(server) = body
        .server
        .as_deref()
        .filter(|server| *server != s.server_name)
    {
        let mut request = federation_directory::get_public_rooms_filtered::v1::Request::new();
        request.limit = body.limit;
        request.since = body.since;
        request.filter = body.filter;
        let remote = s
            .federation
            .client
            .send_bounded(server, request, REMOTE_DIRECTORY_BOUNDS)
            .await?;
        return Ok(page_answer!(out, remote));
    }
    let term = body.filter.generic_search_term.as_deref();
    let page = public_rooms(&s, body.limit, body.since.as_deref(), term)?;
    Ok(page_answer!(out, page))
}
