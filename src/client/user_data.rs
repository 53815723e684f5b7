//! Account data, room tags and filters.

use std::sync::Arc;

use axum::Router;
use matrixos_storage::tables::FILTERS;
use matrixos_storage::Batch;
use ruma::api::client::config::{
    get_global_account_data, get_room_account_data, set_global_account_data, set_room_account_data,
};
use ruma::api::client::filter::{create_filter, get_filter, FilterDefinition};
use ruma::api::client::tag::{create_tag, delete_tag, get_tags};
use ruma::events::tag::{TagInfo, TagName, Tags};
use ruma::serde::Raw;
use ruma::{OwnedUserId, RoomId, UserId};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::http::Caller;
use crate::services::Services;
use crate::services::Wake;
use crate::sync::filter::Filter;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .endpoint(create_filter)
        .endpoint(get_filter)
        .endpoint(get_global)
        .endpoint(put_global)
        .endpoint(get_room)
        .endpoint(put_room)
        .endpoint(get_tags)
        .endpoint(put_tag)
        .endpoint(delete_tag)
}

/// The user named in the path, who must be the caller.
fn own_user(caller: Caller, user: OwnedUserId) -> Result<OwnedUserId> {
    if user != caller.user_id {
        return Err(Error::forbidden("Cannot access another user's data"));
    }
    Ok(user)
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

/// Account data content as sent, for the store.
fn content_of<T>(raw: &Raw<T>) -> Result<Value> {
    raw.deserialize_as_unchecked()
        .map_err(|e| Error::bad_json(format!("Invalid content: {e}")))
}

/// Stored account data content, for a response.
fn stored_content<T>(content: Option<Value>) -> Result<Raw<T>> {
    let content = content.ok_or_else(|| Error::not_found("Account data not found"))?;
    Ok(Raw::from_json(serde_json::value::to_raw_value(&content)?))
}

async fn put_global(
    s: Arc<Services>,
    req: Ruma<set_global_account_data::v3::Request>,
) -> Result<set_global_account_data::v3::Response> {
    let body = req.body;
    let user = own_user(req.caller, body.user_id)?;
    let kind = body.event_type.to_string();
    check_settable(&kind)?;
    s.account_data
        .set(&user, None, &kind, &content_of(&body.data)?)
        .await?;
    Ok(set_global_account_data::v3::Response::new())
}

async fn get_global(
    s: Arc<Services>,
    req: Ruma<get_global_account_data::v3::Request>,
) -> Result<get_global_account_data::v3::Response> {
    let body = req.body;
    let user = own_user(req.caller, body.user_id)?;
    let content = s
        .account_data
        .get(&user, None, &body.event_type.to_string())?;
    Ok(get_global_account_data::v3::Response::new(stored_content(
        content,
    )?))
}

async fn put_room(
    s: Arc<Services>,
    req: Ruma<set_room_account_data::v3::Request>,
) -> Result<set_room_account_data::v3::Response> {
    let body = req.body;
    let user = own_user(req.caller, body.user_id)?;
    let kind = body.event_type.to_string();
    check_settable(&kind)?;
    s.account_data
        .set(&user, Some(&body.room_id), &kind, &content_of(&body.data)?)
        .await?;
    Ok(set_room_account_data::v3::Response::new())
}

async fn get_room(
    s: Arc<Services>,
    req: Ruma<get_room_account_data::v3::Request>,
) -> Result<get_room_account_data::v3::Response> {
    let body = req.body;
    let user = own_user(req.caller, body.user_id)?;
    let content = s
        .account_data
        .get(&user, Some(&body.room_id), &body.event_type.to_string())?;
    Ok(get_room_account_data::v3::Response::new(stored_content(
        content,
    )?))
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

async fn get_tags(
    s: Arc<Services>,
    req: Ruma<get_tags::v3::Request>,
) -> Result<get_tags::v3::Response> {
    let body = req.body;
    let user = own_user(req.caller, body.user_id)?;
    let content = tag_content(&s, &user, &body.room_id)?;
    // Tags whose information is not what the spec says are left out.
    let tags: Tags = tags_in(&content)
        .into_iter()
        .filter_map(|(name, info)| Some((TagName::from(name), serde_json::from_value(info).ok()?)))
        .collect();
    Ok(get_tags::v3::Response::new(tags))
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

async fn put_tag(
    s: Arc<Services>,
    req: Ruma<create_tag::v3::Request>,
) -> Result<create_tag::v3::Response> {
    let body = req.body;
    let user = own_user(req.caller, body.user_id)?;
    let info: Value = serde_json::to_value::<&TagInfo>(&body.tag_info)?;
    update_tags(&s, &user, &body.room_id, |tags| {
        tags.insert(body.tag, info);
    })
    .await?;
    Ok(create_tag::v3::Response::new())
}

async fn delete_tag(
    s: Arc<Services>,
    req: Ruma<delete_tag::v3::Request>,
) -> Result<delete_tag::v3::Response> {
    let body = req.body;
    let user = own_user(req.caller, body.user_id)?;
    update_tags(&s, &user, &body.room_id, |tags| {
        tags.remove(&body.tag);
    })
    .await?;
    Ok(delete_tag::v3::Response::new())
}

fn filter_key(user: &UserId, id: &str) -> [String; 2] {
    [user.to_string(), id.to_owned()]
}

pub fn stored_filter(s: &Services, user: &UserId, id: &str) -> Result<Option<Value>> {
    Ok(FILTERS.get(&s.store.db, &filter_key(user, id))?)
}

async fn create_filter(
    s: Arc<Services>,
    req: Ruma<create_filter::v3::Request>,
) -> Result<create_filter::v3::Response> {
    let body = req.body;
    let user = own_user(req.caller, body.user_id)?;
    let filter = serde_json::to_value(&body.filter)?;
    // What /sync will read it as.
    Filter::from_json(&filter)?;
    let id = crate::random::random_string(10);
    let mut batch = Batch::new();
    FILTERS.put(&mut batch, &filter_key(&user, &id), &filter);
    s.store.commit(batch, vec![], Wake::none()).await?;
    Ok(create_filter::v3::Response::new(id))
}

async fn get_filter(
    s: Arc<Services>,
    req: Ruma<get_filter::v3::Request>,
) -> Result<get_filter::v3::Response> {
    let body = req.body;
    let user = own_user(req.caller, body.user_id)?;
    let filter = stored_filter(&s, &user, &body.filter_id)?
        .ok_or_else(|| Error::not_found("Filter not found"))?;
    let filter: FilterDefinition = serde_json::from_value(filter)?;
    Ok(get_filter::v3::Response::new(filter))
}
