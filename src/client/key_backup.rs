//! `/room_keys`: server-side key backup versions and the keys in them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use ruma::api::client::backup::{
    add_backup_keys, add_backup_keys_for_room, add_backup_keys_for_session, create_backup_version,
    delete_backup_keys, delete_backup_keys_for_room, delete_backup_keys_for_session,
    delete_backup_version, get_backup_info, get_backup_keys, get_backup_keys_for_room,
    get_backup_keys_for_session, get_latest_backup_info, update_backup_version, BackupAlgorithm,
    KeyBackupData, RoomKeyBackup,
};
use ruma::serde::Raw;
use ruma::{OwnedRoomId, RoomId, UInt, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::keys::{json_of, raw_of};
use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::key_backup::{check_key_data, KeyUpload, Scope};
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .endpoint(current_version)
        .endpoint(create_version)
        .endpoint(get_version)
        .endpoint(update_version)
        .endpoint(delete_version)
        .endpoint(get_all)
        .endpoint(put_all)
        .endpoint(delete_all)
        .endpoint(get_room)
        .endpoint(put_room)
        .endpoint(delete_room)
        .endpoint(get_session)
        .endpoint(put_session)
        .endpoint(delete_session)
}

/// A version path segment or query value; anything not a version number
/// names no backup.
fn parse_version(text: &str) -> Result<u64> {
    text.parse::<u64>()
        .map_err(|_| Error::not_found("Unknown backup version"))
}

/// A backup version's body as this server checks it: any algorithm, with
/// its auth data an object (Synapse checks no more), and in an update the
/// version it names.
#[derive(Deserialize)]
struct VersionBody {
    algorithm: String,
    auth_data: Option<Value>,
    version: Option<Value>,
}

/// The algorithm and auth data of a version body.
fn version_body(raw: &Raw<BackupAlgorithm>) -> Result<(VersionBody, Value)> {
    let mut body: VersionBody = raw.deserialize_as_unchecked().map_err(|e| {
        let message = e.to_string();
        if message.starts_with("missing field") {
            Error::missing_param(message)
        } else {
            Error::bad_json(message)
        }
    })?;
    let auth_data = body
        .auth_data
        .take()
        .filter(Value::is_object)
        .ok_or_else(|| Error::bad_json("'auth_data' must be an object"))?;
    Ok((body, auth_data))
}

async fn create_version(
    s: Arc<Services>,
    req: Ruma<create_backup_version::v3::Request>,
) -> Result<create_backup_version::v3::Response> {
    let (body, auth_data) = version_body(&req.body.algorithm)?;
    let version = s
        .key_backup
        .create(&req.caller.user_id, &body.algorithm, auth_data)
        .await?;
    Ok(create_backup_version::v3::Response::new(
        version.to_string(),
    ))
}

/// The version's algorithm with its auth data, as ruma serialises it.
#[derive(Serialize)]
struct AlgorithmWithData<'a> {
    algorithm: &'a str,
    auth_data: &'a Value,
}

/// What both version reads answer: algorithm, key count, etag, version.
struct VersionInfo {
    algorithm: Raw<BackupAlgorithm>,
    count: UInt,
    etag: String,
    version: String,
}

fn version_info(s: &Services, user: &UserId, version: Option<u64>) -> Result<VersionInfo> {
    let info = s
        .key_backup
        .get(user, version)?
        .ok_or_else(|| Error::not_found("No current backup version"))?;
    Ok(VersionInfo {
        algorithm: raw_of(&AlgorithmWithData {
            algorithm: &info.algorithm,
            auth_data: &info.auth_data,
        })?,
        count: UInt::new_saturating(s.key_backup.count(user, info.version)?),
        etag: info.etag.to_string(),
        version: info.version.to_string(),
    })
}

async fn current_version(
    s: Arc<Services>,
    req: Ruma<get_latest_backup_info::v3::Request>,
) -> Result<get_latest_backup_info::v3::Response> {
    let i = version_info(&s, &req.caller.user_id, None)?;
    Ok(get_latest_backup_info::v3::Response::new(
        i.algorithm,
        i.count,
        i.etag,
        i.version,
    ))
}

async fn get_version(
    s: Arc<Services>,
    req: Ruma<get_backup_info::v3::Request>,
) -> Result<get_backup_info::v3::Response> {
    let version = parse_version(&req.body.version)?;
    let i = version_info(&s, &req.caller.user_id, Some(version))?;
    Ok(get_backup_info::v3::Response::new(
        i.algorithm,
        i.count,
        i.etag,
        i.version,
    ))
}

async fn update_version(
    s: Arc<Services>,
    req: Ruma<update_backup_version::v3::Request>,
) -> Result<update_backup_version::v3::Response> {
    let number = parse_version(&req.body.version)?;
    let (body, auth_data) = version_body(&req.body.algorithm)?;
    if let Some(named) = body.version {
        if named.as_str() != Some(req.body.version.as_str()) {
            return Err(Error::invalid_param("The body names another version"));
        }
    }
    s.key_backup
        .update(&req.caller.user_id, number, &body.algorithm, auth_data)
        .await?;
    Ok(update_backup_version::v3::Response::new())
}

async fn delete_version(
    s: Arc<Services>,
    req: Ruma<delete_backup_version::v3::Request>,
) -> Result<delete_backup_version::v3::Response> {
    let version = parse_version(&req.body.version)?;
    s.key_backup.delete(&req.caller.user_id, version).await?;
    Ok(delete_backup_version::v3::Response::new())
}

/// The sessions of one room as uploads, each checked.
fn sessions_of(
    room: &RoomId,
    sessions: &BTreeMap<String, Raw<KeyBackupData>>,
    out: &mut Vec<KeyUpload>,
) -> Result<()> {
    for (session, data) in sessions {
        let data = json_of(data)?;
        check_key_data(&data)?;
        out.push((room.to_string(), session.clone(), data));
    }
    Ok(())
}

/// The etag and key count every key upload and delete answers.
type Counted = (String, UInt);

async fn store_keys(
    s: &Services,
    caller: &UserId,
    version: &str,
    uploads: Vec<KeyUpload>,
) -> Result<Counted> {
    let (count, etag) = s
        .key_backup
        .put_keys(caller, parse_version(version)?, uploads)
        .await?;
    Ok((etag.to_string(), UInt::new_saturating(count)))
}

async fn put_all(
    s: Arc<Services>,
    req: Ruma<add_backup_keys::v3::Request>,
) -> Result<add_backup_keys::v3::Response> {
    let mut uploads = Vec::new();
    for (room, backup) in &req.body.rooms {
        sessions_of(room, &backup.sessions, &mut uploads)?;
    }
    let (etag, count) = store_keys(&s, &req.caller.user_id, &req.body.version, uploads).await?;
    Ok(add_backup_keys::v3::Response::new(etag, count))
}

async fn put_room(
    s: Arc<Services>,
    req: Ruma<add_backup_keys_for_room::v3::Request>,
) -> Result<add_backup_keys_for_room::v3::Response> {
    let mut uploads = Vec::new();
    sessions_of(&req.body.room_id, &req.body.sessions, &mut uploads)?;
    let (etag, count) = store_keys(&s, &req.caller.user_id, &req.body.version, uploads).await?;
    Ok(add_backup_keys_for_room::v3::Response::new(etag, count))
}

async fn put_session(
    s: Arc<Services>,
    req: Ruma<add_backup_keys_for_session::v3::Request>,
) -> Result<add_backup_keys_for_session::v3::Response> {
    let body = req.body;
    let sessions = BTreeMap::from([(body.session_id, body.session_data)]);
    let mut uploads = Vec::new();
    sessions_of(&body.room_id, &sessions, &mut uploads)?;
    let (etag, count) = store_keys(&s, &req.caller.user_id, &body.version, uploads).await?;
    Ok(add_backup_keys_for_session::v3::Response::new(etag, count))
}

/// The stored keys in `scope`, grouped by room, then session.
fn keys_by_room(
    s: &Services,
    caller: &UserId,
    version: &str,
    scope: Scope<'_>,
) -> Result<BTreeMap<String, BTreeMap<String, Raw<KeyBackupData>>>> {
    let keys = s
        .key_backup
        .get_keys(caller, parse_version(version)?, &scope)?;
    let mut rooms: BTreeMap<String, BTreeMap<_, _>> = BTreeMap::new();
    for (room, session, data) in keys {
        rooms
            .entry(room)
            .or_default()
            .insert(session, raw_of(&data)?);
    }
    Ok(rooms)
}

async fn get_all(
    s: Arc<Services>,
    req: Ruma<get_backup_keys::v3::Request>,
) -> Result<get_backup_keys::v3::Response> {
    let rooms = keys_by_room(&s, &req.caller.user_id, &req.body.version, Scope::All)?
        .into_iter()
        .map(|(room, sessions)| {
            let room = OwnedRoomId::try_from(room)
                .map_err(|e| Error::internal(format!("stored room id: {e}")))?;
            Ok((room, RoomKeyBackup::new(sessions)))
        })
        .collect::<Result<_>>()?;
    Ok(get_backup_keys::v3::Response::new(rooms))
}

async fn get_room(
    s: Arc<Services>,
    req: Ruma<get_backup_keys_for_room::v3::Request>,
) -> Result<get_backup_keys_for_room::v3::Response> {
    let room = req.body.room_id.as_str();
    let sessions = keys_by_room(
        &s,
        &req.caller.user_id,
        &req.body.version,
        Scope::Room(room),
    )?
    .remove(room)
    .unwrap_or_default();
    Ok(get_backup_keys_for_room::v3::Response::new(sessions))
}

async fn get_session(
    s: Arc<Services>,
    req: Ruma<get_backup_keys_for_session::v3::Request>,
) -> Result<get_backup_keys_for_session::v3::Response> {
    let (room, session) = (req.body.room_id.as_str(), req.body.session_id.as_str());
    let scope = Scope::Session(room, session);
    let data = keys_by_room(&s, &req.caller.user_id, &req.body.version, scope)?
        .remove(room)
        .and_then(|mut sessions| sessions.remove(session))
        .ok_or_else(|| Error::not_found("No key backed up for that session"))?;
    Ok(get_backup_keys_for_session::v3::Response::new(data))
}

async fn remove(s: &Services, caller: &UserId, version: &str, scope: Scope<'_>) -> Result<Counted> {
    let (count, etag) = s
        .key_backup
        .delete_keys(caller, parse_version(version)?, &scope)
        .await?;
    Ok((etag.to_string(), UInt::new_saturating(count)))
}

async fn delete_all(
    s: Arc<Services>,
    req: Ruma<delete_backup_keys::v3::Request>,
) -> Result<delete_backup_keys::v3::Response> {
    let (etag, count) = remove(&s, &req.caller.user_id, &req.body.version, Scope::All).await?;
    Ok(delete_backup_keys::v3::Response::new(etag, count))
}

async fn delete_room(
    s: Arc<Services>,
    req: Ruma<delete_backup_keys_for_room::v3::Request>,
) -> Result<delete_backup_keys_for_room::v3::Response> {
    let scope = Scope::Room(req.body.room_id.as_str());
    let (etag, count) = remove(&s, &req.caller.user_id, &req.body.version, scope).await?;
    Ok(delete_backup_keys_for_room::v3::Response::new(etag, count))
}

async fn delete_session(
    s: Arc<Services>,
    req: Ruma<delete_backup_keys_for_session::v3::Request>,
) -> Result<delete_backup_keys_for_session::v3::Response> {
    let scope = Scope::Session(req.body.room_id.as_str(), req.body.session_id.as_str());
    let (etag, count) = remove(&s, &req.caller.user_id, &req.body.version, scope).await?;
    Ok(delete_backup_keys_for_session::v3::Response::new(
        etag, count,
    ))
}
