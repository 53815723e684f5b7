//! `/room_keys`: server-side key backup versions and the keys in them.

use axum::routing::get;
use axum::Router;
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use ruma::RoomId;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::http::extract::{query_param, req_str, Auth, JsonBody};
use crate::services::key_backup::{check_key_data, KeyUpload, Scope};
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route(
            &super::v3("/room_keys/version"),
            get(current_version).post(create_version),
        )
        .route(
            &super::v3("/room_keys/version/{version}"),
            get(get_version).put(update_version).delete(delete_version),
        )
        .route(
            &super::v3("/room_keys/keys"),
            get(get_all).put(put_all).delete(delete_all),
        )
        .route(
            &super::v3("/room_keys/keys/{room_id}"),
            get(get_room).put(put_room).delete(delete_room),
        )
        .route(
            &super::v3("/room_keys/keys/{room_id}/{session_id}"),
            get(get_session).put(put_session).delete(delete_session),
        )
}

type S = State<Arc<Services>>;
type Q = Query<Vec<(String, String)>>;

/// A version path segment or query value; anything not a version number
/// names no backup.
fn parse_version(text: &str) -> Result<u64> {
    text.parse::<u64>()
        .map_err(|_| Error::not_found("Unknown backup version"))
}

fn version_param(q: &[(String, String)]) -> Result<u64> {
    parse_version(
        query_param(q, "version").ok_or_else(|| Error::missing_param("Missing 'version'"))?,
    )
}

fn algorithm_and_auth_data(body: &Value) -> Result<(String, Value)> {
    let algorithm = req_str(body, "algorithm")?.to_owned();
    let auth_data = body
        .get("auth_data")
        .filter(|a| a.is_object())
        .cloned()
        .ok_or_else(|| Error::bad_json("'auth_data' must be an object"))?;
    Ok((algorithm, auth_data))
}

pub async fn create_version(
    State(s): S,
    Auth(caller): Auth,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let (algorithm, auth_data) = algorithm_and_auth_data(&body)?;
    let version = s
        .key_backup
        .create(&caller.user_id, &algorithm, auth_data)
        .await?;
    Ok(Json(json!({ "version": version.to_string() })))
}

async fn version_info(
    s: &Services,
    user: &ruma::UserId,
    version: Option<u64>,
) -> Result<Json<Value>> {
    let info = s
        .key_backup
        .get(user, version)?
        .ok_or_else(|| Error::not_found("No current backup version"))?;
    Ok(Json(json!({
        "algorithm": info.algorithm,
        "auth_data": info.auth_data,
        "count": s.key_backup.count(user, info.version)?,
        "etag": info.etag.to_string(),
        "version": info.version.to_string(),
    })))
}

pub async fn current_version(State(s): S, Auth(caller): Auth) -> Result<Json<Value>> {
    version_info(&s, &caller.user_id, None).await
}

pub async fn get_version(
    State(s): S,
    Auth(caller): Auth,
    Path(version): Path<String>,
) -> Result<Json<Value>> {
    version_info(&s, &caller.user_id, Some(parse_version(&version)?)).await
}

pub async fn update_version(
    State(s): S,
    Auth(caller): Auth,
    Path(version): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let number = parse_version(&version)?;
    if let Some(named) = body.get("version") {
        if named.as_str() != Some(version.as_str()) {
            return Err(Error::invalid_param("The body names another version"));
        }
    }
    let (algorithm, auth_data) = algorithm_and_auth_data(&body)?;
    s.key_backup
        .update(&caller.user_id, number, &algorithm, auth_data)
        .await?;
    Ok(Json(json!({})))
}

pub async fn delete_version(
    State(s): S,
    Auth(caller): Auth,
    Path(version): Path<String>,
) -> Result<Json<Value>> {
    s.key_backup
        .delete(&caller.user_id, parse_version(&version)?)
        .await?;
    Ok(Json(json!({})))
}

fn check_room(room: &str) -> Result<()> {
    RoomId::parse(room)
        .map(|_| ())
        .map_err(|_| Error::invalid_param("Invalid room id"))
}

/// The sessions of a `RoomKeyBackup` object as uploads for `room`.
fn sessions_of(room: &str, body: &Value, out: &mut Vec<KeyUpload>) -> Result<()> {
    check_room(room)?;
    let sessions = body
        .get("sessions")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::bad_json("'sessions' must be an object"))?;
    for (session, data) in sessions {
        check_key_data(data)?;
        out.push((room.to_owned(), session.clone(), data.clone()));
    }
    Ok(())
}

async fn store_keys(
    s: &Services,
    caller: &ruma::UserId,
    q: &[(String, String)],
    uploads: Vec<KeyUpload>,
) -> Result<Json<Value>> {
    let (count, etag) = s
        .key_backup
        .put_keys(caller, version_param(q)?, uploads)
        .await?;
    Ok(Json(json!({ "count": count, "etag": etag.to_string() })))
}

pub async fn put_all(
    State(s): S,
    Auth(caller): Auth,
    Query(q): Q,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let rooms = body
        .get("rooms")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::bad_json("'rooms' must be an object"))?;
    let mut uploads = Vec::new();
    for (room, backup) in rooms {
        sessions_of(room, backup, &mut uploads)?;
    }
    store_keys(&s, &caller.user_id, &q, uploads).await
}

pub async fn put_room(
    State(s): S,
    Auth(caller): Auth,
    Path(room): Path<String>,
    Query(q): Q,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let mut uploads = Vec::new();
    sessions_of(&room, &body, &mut uploads)?;
    store_keys(&s, &caller.user_id, &q, uploads).await
}

pub async fn put_session(
    State(s): S,
    Auth(caller): Auth,
    Path((room, session)): Path<(String, String)>,
    Query(q): Q,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    check_room(&room)?;
    check_key_data(&body)?;
    store_keys(&s, &caller.user_id, &q, vec![(room, session, body)]).await
}

/// Keys grouped as `{room: {"sessions": {session: data}}}`.
fn grouped(keys: Vec<KeyUpload>) -> BTreeMap<String, Map<String, Value>> {
    let mut rooms: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for (room, session, data) in keys {
        rooms.entry(room).or_default().insert(session, data);
    }
    rooms
}

pub async fn get_all(State(s): S, Auth(caller): Auth, Query(q): Q) -> Result<Json<Value>> {
    let keys = s
        .key_backup
        .get_keys(&caller.user_id, version_param(&q)?, &Scope::All)?;
    let rooms: Map<String, Value> = grouped(keys)
        .into_iter()
        .map(|(room, sessions)| (room, json!({ "sessions": sessions })))
        .collect();
    Ok(Json(json!({ "rooms": rooms })))
}

pub async fn get_room(
    State(s): S,
    Auth(caller): Auth,
    Path(room): Path<String>,
    Query(q): Q,
) -> Result<Json<Value>> {
    check_room(&room)?;
    let keys = s
        .key_backup
        .get_keys(&caller.user_id, version_param(&q)?, &Scope::Room(&room))?;
    let sessions = grouped(keys).remove(&room).unwrap_or_default();
    Ok(Json(json!({ "sessions": sessions })))
}

pub async fn get_session(
    State(s): S,
    Auth(caller): Auth,
    Path((room, session)): Path<(String, String)>,
    Query(q): Q,
) -> Result<Json<Value>> {
    check_room(&room)?;
    let scope = Scope::Session(&room, &session);
    let keys = s
        .key_backup
        .get_keys(&caller.user_id, version_param(&q)?, &scope)?;
    let (_, _, data) = keys
        .into_iter()
        .next()
        .ok_or_else(|| Error::not_found("No key backed up for that session"))?;
    Ok(Json(data))
}

async fn remove(
    s: &Services,
    caller: &ruma::UserId,
    q: &[(String, String)],
    scope: Scope<'_>,
) -> Result<Json<Value>> {
    let (count, etag) = s
        .key_backup
        .delete_keys(caller, version_param(q)?, &scope)
        .await?;
    Ok(Json(json!({ "count": count, "etag": etag.to_string() })))
}

pub async fn delete_all(State(s): S, Auth(caller): Auth, Query(q): Q) -> Result<Json<Value>> {
    remove(&s, &caller.user_id, &q, Scope::All).await
}

pub async fn delete_room(
    State(s): S,
    Auth(caller): Auth,
    Path(room): Path<String>,
    Query(q): Q,
) -> Result<Json<Value>> {
    check_room(&room)?;
    remove(&s, &caller.user_id, &q, Scope::Room(&room)).await
}

pub async fn delete_session(
    State(s): S,
    Auth(caller): Auth,
    Path((room, session)): Path<(String, String)>,
    Query(q): Q,
) -> Result<Json<Value>> {
    check_room(&room)?;
    remove(&s, &caller.user_id, &q, Scope::Session(&room, &session)).await
}
