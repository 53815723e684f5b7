//! `/devices` and `/delete_devices`.

use std::sync::Arc;

use axum::Router;
use matrixos_storage::Batch;
use ruma::api::client::device::{
    delete_device, delete_devices as delete_many_devices, get_device, get_devices, update_device,
    Device,
};
use ruma::{MilliSecondsSinceUnixEpoch, OwnedDeviceId, UInt, UserId};

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::http::uia_request::UiaRequest;
use crate::services::accounts::DeviceRecord;
use crate::services::Wake;
use crate::services::{uia, Services};

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .endpoint(list)
        .endpoint(get)
        .endpoint(update)
        .endpoint(delete)
        .endpoint(delete_many)
}

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
        crate::sliding_sync::connection::forget_device(&mut batch, user, device);
        crate::services::peeks::Peeks::forget_device(&mut batch, user, device);
    }
    let wake = Wake::sharers(&s.store.db, user)?;
    s.store.commit(batch, positions, wake).await?;
    for device in devices {
        crate::federation::device_lists::send_update(s, user, device, None).await?;
    }
    Ok(())
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

/// A device as the client-server API shows it.
fn device(id: OwnedDeviceId, d: DeviceRecord) -> Device {
    let mut out = Device::new(id);
    out.display_name = d.display_name;
    out.last_seen_ip = d.last_seen_ip;
    out.last_seen_ts = d
        .last_seen_ts
        .and_then(UInt::new)
        .map(MilliSecondsSinceUnixEpoch);
    out
}

async fn list(
    s: Arc<Services>,
    req: Ruma<get_devices::v3::Request>,
) -> Result<get_devices::v3::Response> {
    let devices = s
        .accounts
        .devices(&req.caller.user_id)?
        .into_iter()
        .map(|(id, d)| device(id, d))
        .collect();
    Ok(get_devices::v3::Response::new(devices))
}

async fn get(
    s: Arc<Services>,
    req: Ruma<get_device::v3::Request>,
) -> Result<get_device::v3::Response> {
    let id = req.body.device_id;
    let record = s
        .accounts
        .device(&req.caller.user_id, &id)?
        .ok_or_else(|| Error::not_found("No such device"))?;
    Ok(get_device::v3::Response::new(device(id, record)))
}

async fn update(
    s: Arc<Services>,
    req: Ruma<update_device::v3::Request>,
) -> Result<update_device::v3::Response> {
    let body = req.body;
    if let Some(name) = &body.display_name {
        check_device_name(name)?;
    }
    s.accounts
        .update_device(&req.caller.user_id, &body.device_id, body.display_name)
        .await?;
    s.keys.note_device_list_change(&req.caller.user_id).await?;
    Ok(update_device::v3::Response::new())
}

async fn delete(
    s: Arc<Services>,
    req: UiaRequest<delete_device::v3::Request>,
) -> Result<delete_device::v3::Response> {
    let (req, auth) = req.parsed()?;
    let user = req.caller.user_id;
    let id = req.body.device_id;
    if s.accounts.device(&user, &id)?.is_none() {
        return Err(Error::not_found("No such device"));
    }
    uia::require_password(&s, auth.as_ref(), &user).await?;
    delete_devices(&s, &user, &[id]).await?;
    Ok(delete_device::v3::Response::new())
}

async fn delete_many(
    s: Arc<Services>,
    req: UiaRequest<delete_many_devices::v3::Request>,
) -> Result<delete_many_devices::v3::Response> {
    let (req, auth) = req.parsed()?;
    let user = req.caller.user_id;
    uia::require_password(&s, auth.as_ref(), &user).await?;
    delete_devices(&s, &user, &req.body.devices).await?;
    Ok(delete_many_devices::v3::Response::new())
}
