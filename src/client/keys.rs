//! `/keys/upload`, `/keys/query`, `/keys/claim`, `/keys/changes`, `/sendToDevice`.

use axum::routing::{get, post, put};
use axum::Router;
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use ruma::{OwnedDeviceId, OwnedUserId, UserId};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::http::extract::{Auth, JsonBody};
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route(&super::v3("/keys/upload"), post(upload))
        .route(&super::v3("/keys/query"), post(query))
        .route(&super::v3("/keys/claim"), post(claim))
        .route(&super::v3("/keys/changes"), get(changes))
        .route(
            &super::v3("/sendToDevice/{event_type}/{txn_id}"),
            put(send_to_device),
        )
}

type S = State<Arc<Services>>;

fn object_map(body: &Value, field: &str) -> Result<BTreeMap<String, Value>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => Ok(m.clone().into_iter().collect()),
        Some(_) => Err(Error::bad_json(format!("{field} must be an object"))),
    }
}

pub async fn upload(
    State(s): S,
    Auth(caller): Auth,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let device_keys = body.get("device_keys").filter(|v| !v.is_null()).cloned();
    let counts = s
        .keys
        .upload(
            &caller.user_id,
            &caller.device_id,
            device_keys,
            object_map(&body, "one_time_keys")?,
            object_map(&body, "fallback_keys")?,
        )
        .await?;
    Ok(Json(json!({ "one_time_key_counts": counts })))
}

fn parse_user(u: &str) -> Result<OwnedUserId> {
    UserId::parse(u).map_err(|_| Error::invalid_param(format!("Invalid user id {u}")))
}

pub async fn query(
    State(s): S,
    Auth(caller): Auth,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let wanted = object_map(&body, "device_keys")?;
    let mut device_keys = Map::new();
    let mut cross_signing = super::cross_signing::QueryKeys::default();
    let mut failures = Map::new();
    for (user, devices) in wanted {
        let user = parse_user(&user)?;
        if !s.accounts.is_local(&user) {
            failures.insert(
                user.server_name().to_string(),
                json!({ "status": 503, "message": "Federation is not available yet" }),
            );
            continue;
        }
        let only: Vec<OwnedDeviceId> = devices
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .map(|d| d.into())
                    .collect()
            })
            .unwrap_or_default();
        let names = s
            .accounts
            .devices(&user)?
            .into_iter()
            .map(|(id, d)| (id, d.display_name))
            .collect();
        let mut keys = s.keys.query(&user, &only, &names)?;
        cross_signing.add(&s, &caller.user_id, &user, &mut keys)?;
        device_keys.insert(user.to_string(), serde_json::to_value(keys)?);
    }
    Ok(Json(json!({
        "device_keys": device_keys,
        "failures": failures,
        "master_keys": cross_signing.master_keys,
        "self_signing_keys": cross_signing.self_signing_keys,
        "user_signing_keys": cross_signing.user_signing_keys,
    })))
}

pub async fn claim(
    State(s): S,
    Auth(_caller): Auth,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let mut requests = Vec::new();
    for (user, devices) in object_map(&body, "one_time_keys")? {
        let user = parse_user(&user)?;
        let devices = devices
            .as_object()
            .ok_or_else(|| Error::bad_json("one_time_keys entries must be objects"))?;
        for (device, algorithm) in devices {
            let algorithm = algorithm
                .as_str()
                .ok_or_else(|| Error::bad_json("algorithm must be a string"))?;
            requests.push((
                user.clone(),
                OwnedDeviceId::from(device.as_str()),
                algorithm.to_owned(),
            ));
        }
    }
    let claimed = s.keys.claim(&requests).await?;
    Ok(Json(json!({ "one_time_keys": claimed, "failures": {} })))
}

pub async fn changes(
    State(s): S,
    Auth(caller): Auth,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<Value>> {
    let get = |name: &str| -> Result<u64> {
        q.iter()
            .find(|(k, _)| k == name)
            .ok_or_else(|| Error::missing_param(format!("Missing {name}")))?
            .1
            .parse()
            .map_err(|_| Error::invalid_param(format!("Invalid {name}")))
    };
    let (from, to) = (get("from")?, get("to")?);
    let mut changed = Vec::new();
    for user in s.keys.changed_users(from, to)? {
        if s.rooms.share_a_room(&caller.user_id, &user)? {
            changed.push(user);
        }
    }
    Ok(Json(json!({ "changed": changed, "left": [] })))
}

pub async fn send_to_device(
    State(s): S,
    Auth(caller): Auth,
    Path((kind, txn)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let mut messages = Vec::new();
    for (user, devices) in object_map(&body, "messages")? {
        let user = parse_user(&user)?;
        let devices = devices
            .as_object()
            .ok_or_else(|| Error::bad_json("messages entries must be objects"))?;
        // Federation is not built: another server's users are unreachable,
        // and keeping their messages here would keep them forever.
        if !s.accounts.is_local(&user) {
            continue;
        }
        for (device, content) in devices {
            messages.push((user.clone(), device.clone(), content.clone()));
        }
    }
    let accounts = &s.accounts;
    s.keys
        .send_to_device(
            &caller.user_id,
            &caller.device_id,
            &txn,
            &kind,
            messages,
            |u| accounts.device_ids(u),
        )
        .await?;
    Ok(Json(json!({})))
}
