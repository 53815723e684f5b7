//! `/devices` and `/delete_devices`.

use axum::routing;
use axum::Router;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use matrixos_storage::Batch;
use ruma::{OwnedDeviceId, UserId};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::http::extract::{opt_str, Auth, JsonBody};
use crate::services::accounts::DeviceRecord;
use crate::services::Wake;
use crate::services::{uia, Services};

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route(&super::v3("/devices"), routing::get(list))
        .route(
            &super::v3("/devices/{device_id}"),
            routing::get(get).put(update).delete(delete),
        )
        .route(&super::v3("/delete_devices"), routing::post(delete_many))
}

type S = State<Arc<Services>>;

/// Deletes devices, their tokens, keys and pushers in one batch.
pub async fn delete_devices(s: &Services, user: &UserId, devices: &[OwnedDeviceId]) -> Result<()> {
    let mut batch = Batch::new();
    s.accounts.delete_devices_into(&mut batch, user, devices)?;
    s.push
        .pushers
        .delete_for_devices_into(&s.store.db, &mut batch, user, devices)?;
    let mut positions = Vec::new();
    for device in devices {
        positions.push(s.keys.delete_device_keys_into(&mut batch, user, device)?);
    }
    let wake = Wake::sharers(&s.store.db, user)?;
    s.store.commit(batch, positions, wake).await
}

/// The longest device id a client may choose (Synapse's limit): it is part
/// of the key of every token, key and to-device message of the device.
const MAX_DEVICE_ID_CHARS: usize = 512;
/// The longest device name (Synapse's limit): others see it in key queries.
const MAX_DEVICE_NAME_CHARS: usize = 100;

/// A client-chosen device id over the limit is 400 `M_INVALID_PARAM`.
pub fn check_device_id(id: &str) -> Result<()> {
    if id.chars().count() > MAX_DEVICE_ID_CHARS {
        return Err(Error::invalid_param(format!(
            "device_id is longer than {MAX_DEVICE_ID_CHARS} characters"
        )));
    }
    Ok(())
}

/// A device name over the limit is 400 `M_TOO_LARGE`, as in Synapse.
pub fn check_device_name(name: &str) -> Result<()> {
    if name.chars().count() > MAX_DEVICE_NAME_CHARS {
        return Err(Error::new(
            http::StatusCode::BAD_REQUEST,
            "M_TOO_LARGE",
            format!("Device display name is longer than {MAX_DEVICE_NAME_CHARS} characters"),
        ));
    }
    Ok(())
}

fn device_json(id: &OwnedDeviceId, d: &DeviceRecord) -> Value {
    json!({
        "device_id": id,
        "display_name": d.display_name,
        "last_seen_ip": d.last_seen_ip,
        "last_seen_ts": d.last_seen_ts,
    })
}

pub async fn list(State(s): S, Auth(caller): Auth) -> Result<Json<Value>> {
    let devices: Vec<Value> = s
        .accounts
        .devices(&caller.user_id)?
        .iter()
        .map(|(id, d)| device_json(id, d))
        .collect();
    Ok(Json(json!({ "devices": devices })))
}

pub async fn get(
    State(s): S,
    Auth(caller): Auth,
    Path(device): Path<String>,
) -> Result<Json<Value>> {
    let id: OwnedDeviceId = device.into();
    let record = s
        .accounts
        .device(&caller.user_id, &id)?
        .ok_or_else(|| Error::not_found("No such device"))?;
    Ok(Json(device_json(&id, &record)))
}

pub async fn update(
    State(s): S,
    Auth(caller): Auth,
    Path(device): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let id: OwnedDeviceId = device.into();
    let name = opt_str(&body, "display_name")?.map(str::to_owned);
    if let Some(name) = &name {
        check_device_name(name)?;
    }
    s.accounts.update_device(&caller.user_id, &id, name).await?;
    Ok(Json(json!({})))
}

pub async fn delete(
    State(s): S,
    Auth(caller): Auth,
    Path(device): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let id: OwnedDeviceId = device.into();
    if s.accounts.device(&caller.user_id, &id)?.is_none() {
        return Err(Error::not_found("No such device"));
    }
    uia::require_password(&s, &body, &caller.user_id).await?;
    delete_devices(&s, &caller.user_id, &[id]).await?;
    Ok(Json(json!({})))
}

pub async fn delete_many(
    State(s): S,
    Auth(caller): Auth,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let ids: Vec<OwnedDeviceId> = body
        .get("devices")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::missing_param("Missing 'devices'"))?
        .iter()
        .map(|d| {
            d.as_str()
                .map(|d| d.into())
                .ok_or_else(|| Error::bad_json("devices must be strings"))
        })
        .collect::<Result<_>>()?;
    uia::require_password(&s, &body, &caller.user_id).await?;
    delete_devices(&s, &caller.user_id, &ids).await?;
    Ok(Json(json!({})))
}
