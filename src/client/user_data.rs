//! Account data, room tags and filters.

use axum::routing::{get, post, put};
use axum::Router;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use matrixos_storage::{keys, Batch, Table};
use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::http::extract::{Auth, JsonBody};
use crate::http::Caller;
use crate::services::Services;
use crate::services::Wake;
use crate::sync::filter::Filter;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route(&super::v3("/user/{user_id}/filter"), post(create_filter))
        .route(
            &super::v3("/user/{user_id}/filter/{filter_id}"),
            get(get_filter),
        )
        .route(
            &super::v3("/user/{user_id}/account_data/{event_type}"),
            get(get_global).put(put_global),
        )
        .route(
            &super::v3("/user/{user_id}/rooms/{room_id}/account_data/{event_type}"),
            get(get_room).put(put_room),
        )
        .route(
            &super::v3("/user/{user_id}/rooms/{room_id}/tags"),
            get(get_tags),
        )
        .route(
            &super::v3("/user/{user_id}/rooms/{room_id}/tags/{tag}"),
            put(put_tag).delete(delete_tag),
        )
}

type S = State<Arc<Services>>;

fn own_user(caller: &Caller, user: &str) -> Result<OwnedUserId> {
    let user = UserId::parse(user).map_err(|_| Error::invalid_param("Invalid user id"))?;
    if user != caller.user_id {
        return Err(Error::forbidden("Cannot access another user's data"));
    }
    Ok(user)
}

fn room(room: &str) -> Result<OwnedRoomId> {
    RoomId::parse(room).map_err(|_| Error::invalid_param("Invalid room id"))
}

/// Types the server manages itself and clients may not set directly.
fn check_settable(kind: &str) -> Result<()> {
    if kind == "m.fully_read" || kind == "m.push_rules" {
        return Err(Error::new(
            http::StatusCode::METHOD_NOT_ALLOWED,
            "M_BAD_JSON",
            format!("Cannot set {kind} through this API"),
        ));
    }
    Ok(())
}

pub async fn put_global(
    State(s): S,
    Auth(c): Auth,
    Path((user, kind)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let user = own_user(&c, &user)?;
    check_settable(&kind)?;
    s.account_data.set(&user, None, &kind, &body).await?;
    Ok(Json(json!({})))
}

pub async fn get_global(
    State(s): S,
    Auth(c): Auth,
    Path((user, kind)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let user = own_user(&c, &user)?;
    s.account_data
        .get(&user, None, &kind)?
        .map(Json)
        .ok_or_else(|| Error::not_found("Account data not found"))
}

pub async fn put_room(
    State(s): S,
    Auth(c): Auth,
    Path((user, r, kind)): Path<(String, String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let user = own_user(&c, &user)?;
    let room = room(&r)?;
    check_settable(&kind)?;
    s.account_data.set(&user, Some(&room), &kind, &body).await?;
    Ok(Json(json!({})))
}

pub async fn get_room(
    State(s): S,
    Auth(c): Auth,
    Path((user, r, kind)): Path<(String, String, String)>,
) -> Result<Json<Value>> {
    let user = own_user(&c, &user)?;
    let room = room(&r)?;
    s.account_data
        .get(&user, Some(&room), &kind)?
        .map(Json)
        .ok_or_else(|| Error::not_found("Account data not found"))
}

/// The room's `m.tag` account data as an object (empty if unset).
/// Clients may store anything there through the generic account-data API
/// (Synapse accepts it too), so every reader must cope with any shape.
fn tag_content(s: &Services, user: &UserId, room: &RoomId) -> Result<Map<String, Value>> {
    match s.account_data.get(user, Some(room), "m.tag")? {
        Some(Value::Object(content)) => Ok(content),
        _ => Ok(Map::new()),
    }
}

/// The tags in `m.tag` content: its `tags` object; anything else is none.
fn tags_in(content: &Map<String, Value>) -> Map<String, Value> {
    match content.get("tags") {
        Some(Value::Object(tags)) => tags.clone(),
        _ => Map::new(),
    }
}

pub async fn get_tags(
    State(s): S,
    Auth(c): Auth,
    Path((user, r)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let user = own_user(&c, &user)?;
    let content = tag_content(&s, &user, &room(&r)?)?;
    Ok(Json(json!({ "tags": tags_in(&content) })))
}

/// Rewrites the room's tags, keeping whatever else `m.tag` holds.
async fn update_tags(
    s: &Services,
    user: &UserId,
    room: &RoomId,
    change: impl FnOnce(&mut Map<String, Value>),
) -> Result<()> {
    let mut content = tag_content(s, user, room)?;
    let mut tags = tags_in(&content);
    change(&mut tags);
    content.insert("tags".to_owned(), Value::Object(tags));
    s.account_data
        .set(user, Some(room), "m.tag", &Value::Object(content))
        .await
}

pub async fn put_tag(
    State(s): S,
    Auth(c): Auth,
    Path((user, r, tag)): Path<(String, String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let user = own_user(&c, &user)?;
    let room = room(&r)?;
    update_tags(&s, &user, &room, |tags| {
        tags.insert(tag, body);
    })
    .await?;
    Ok(Json(json!({})))
}

pub async fn delete_tag(
    State(s): S,
    Auth(c): Auth,
    Path((user, r, tag)): Path<(String, String, String)>,
) -> Result<Json<Value>> {
    let user = own_user(&c, &user)?;
    let room = room(&r)?;
    update_tags(&s, &user, &room, |tags| {
        tags.remove(&tag);
    })
    .await?;
    Ok(Json(json!({})))
}

fn filter_key(user: &UserId, id: &str) -> Vec<u8> {
    keys::join(&[user.as_bytes(), id.as_bytes()])
}

pub fn stored_filter(s: &Services, user: &UserId, id: &str) -> Result<Option<Value>> {
    match s.store.db.get(Table::Filters, &filter_key(user, id))? {
        Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
        None => Ok(None),
    }
}

pub async fn create_filter(
    State(s): S,
    Auth(c): Auth,
    Path(user): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let user = own_user(&c, &user)?;
    Filter::from_json(&body)?;
    let id = crate::services::accounts::random_string(10);
    let mut batch = Batch::new();
    batch.put(
        Table::Filters,
        filter_key(&user, &id),
        serde_json::to_vec(&body)?,
    );
    s.store.commit(batch, vec![], Wake::none()).await?;
    Ok(Json(json!({ "filter_id": id })))
}

pub async fn get_filter(
    State(s): S,
    Auth(c): Auth,
    Path((user, id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let user = own_user(&c, &user)?;
    stored_filter(&s, &user, &id)?
        .map(Json)
        .ok_or_else(|| Error::not_found("Filter not found"))
}
