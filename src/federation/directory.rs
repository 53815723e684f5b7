//! The room directory for other servers: `/publicRooms` (GET and POST) and
//! `/query/directory` (where a local alias points).

use std::sync::Arc;

use axum::Router;
use ruma::api::federation::directory::{get_public_rooms, get_public_rooms_filtered};
use ruma::api::federation::query::get_room_information::v1 as room_information;

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::public_rooms::{page_answer, public_rooms};
use crate::services::Services;

pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .reading(list)
        .reading(search)
        .reading(query_alias)
}

fn list(
    s: Arc<Services>,
    req: Ruma<get_public_rooms::v1::Request>,
) -> Result<get_public_rooms::v1::Response> {
    let page = public_rooms(&s, req.body.limit, req.body.since.as_deref(), None)?;
    Ok(page_answer!(get_public_rooms::v1::Response::new(), page))
}

fn search(
    s: Arc<Services>,
    req: Ruma<get_public_rooms_filtered::v1::Request>,
) -> Result<get_public_rooms_filtered::v1::Response> {
    let body = req.body;
    let term = body.filter.generic_search_term.as_deref();
    let page = public_rooms(&s, body.limit, body.since.as_deref(), term)?;
    Ok(page_answer!(
        get_public_rooms_filtered::v1::Response::new(),
        page
    ))
}

fn query_alias(
    s: Arc<Services>,
    req: Ruma<room_information::Request>,
) -> Result<room_information::Response> {
    let alias = &req.body.room_alias;
    if alias.server_name() != s.server_name {
        return Err(Error::invalid_param("Room alias is not on this server"));
    }
    let room = s
        .rooms
        .alias_target(alias)?
        .ok_or_else(|| Error::not_found("Room alias not found"))?;
    let servers = s.rooms.servers_in_room(&room)?;
    Ok(room_information::Response::new(room, servers))
}
