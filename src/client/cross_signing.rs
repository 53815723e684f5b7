//! `/keys/device_signing/upload`, `/keys/signatures/upload`, and the
//! cross-signing part of the `/keys/query` answer. Element bootstraps
//! cross-signing through these on a device's first login.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use matrixos_e2ee::cross_signing::{KeySet, KeyUsage};
use ruma::api::client::keys::{upload_signatures, upload_signing_keys};
use ruma::encryption::CrossSigningKey;
use ruma::serde::Raw;
use ruma::{OwnedDeviceId, OwnedUserId, UserId};
use serde_json::Value;

use super::keys::{json_of, raw_of};
use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::http::uia_request::UiaRequest;
use crate::services::{uia, Services};

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .endpoint(upload_signing_keys)
        .endpoint(upload_signatures)
}

async fn upload_signing_keys(
    s: Arc<Services>,
    req: UiaRequest<upload_signing_keys::v3::Request>,
) -> Result<upload_signing_keys::v3::Response> {
    let (req, auth) = req.parsed()?;
    let body = req.body;
    let mut upload = KeySet::default();
    for (usage, key) in [
        (KeyUsage::Master, &body.master_key),
        (KeyUsage::SelfSigning, &body.self_signing_key),
        (KeyUsage::UserSigning, &body.user_signing_key),
    ] {
        if let Some(key) = key {
            let key = json_of(key)?;
            if !key.is_object() {
                let field = usage.upload_field();
                return Err(Error::bad_json(format!("{field} must be an object")));
            }
            upload.set(usage, key);
        }
    }
    let (services, user) = (&*s, &req.caller.user_id);
    let authorize = || uia::require_password(services, auth.as_ref(), user);
    s.cross_signing
        .upload(&s.keys, user, upload, authorize)
        .await?;
    crate::federation::device_lists::send_signing_key_update(&s, user).await?;
    Ok(upload_signing_keys::v3::Response::new())
}

async fn upload_signatures(
    s: Arc<Services>,
    req: Ruma<upload_signatures::v3::Request>,
) -> Result<upload_signatures::v3::Response> {
    let mut signed = Vec::new();
    for (user, keys) in req.body.signed_keys {
        for (name, object) in keys.iter() {
            let object: Value = serde_json::from_str(object.get())?;
            if !object.is_object() {
                return Err(Error::invalid_param("Signed keys must be objects"));
            }
            signed.push((user.clone(), name.to_owned(), object));
        }
    }
    let failures = s
        .cross_signing
        .upload_signatures(&s.keys, &req.caller.user_id, signed)
        .await?;
    let mut out = upload_signatures::v3::Response::new();
    for (user, refused) in failures {
        let refused = refused
            .into_iter()
            .map(|(name, failure)| Ok((name, serde_json::from_value(failure)?)))
            .collect::<Result<_>>()?;
        out.failures.insert(user, refused);
    }
    Ok(out)
}

/// Cross-signing keys by user, as `/keys/query` answers them.
pub type KeysByUser = BTreeMap<OwnedUserId, Raw<CrossSigningKey>>;

/// The cross-signing fields of a `/keys/query` answer, filled user by user.
#[derive(Default)]
pub struct QueryKeys {
    pub master_keys: KeysByUser,
    pub self_signing_keys: KeysByUser,
    pub user_signing_keys: KeysByUser,
}

impl QueryKeys {
    /// Adds `user`'s cross-signing keys as `viewer` may see them, and the
    /// signatures added to `user`'s device keys.
    pub fn add(
        &mut self,
        s: &Services,
        viewer: &UserId,
        user: &UserId,
        devices: &mut BTreeMap<OwnedDeviceId, Value>,
    ) -> Result<()> {
        s.cross_signing.add_device_signatures(user, devices)?;
        let keys = s.cross_signing.keys_for(user, viewer)?;
        for (usage, key) in keys.iter() {
            let field = match usage {
                KeyUsage::Master => &mut self.master_keys,
                KeyUsage::SelfSigning => &mut self.self_signing_keys,
                KeyUsage::UserSigning => &mut self.user_signing_keys,
            };
            field.insert(user.to_owned(), raw_of(key)?);
        }
        Ok(())
    }
}
