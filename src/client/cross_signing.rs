//! `/keys/device_signing/upload`, `/keys/signatures/upload`, and the
//! cross-signing part of the `/keys/query` answer. Element bootstraps
//! cross-signing through these on a device's first login.

use axum::routing::post;
use axum::Router;
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use matrixos_e2ee::cross_signing::{KeySet, KeyUsage};
use ruma::{OwnedDeviceId, UserId};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::http::extract::{Auth, JsonBody};
use crate::services::{uia, Services};

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route(
            &super::v3("/keys/device_signing/upload"),
            post(upload_signing_keys),
        )
        .route(
            &super::v3("/keys/signatures/upload"),
            post(upload_signatures),
        )
}

type S = State<Arc<Services>>;

pub async fn upload_signing_keys(
    State(s): S,
    Auth(caller): Auth,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let mut upload = KeySet::default();
    for usage in KeyUsage::ALL {
        let field = usage.upload_field();
        match body.get(field) {
            None | Some(Value::Null) => {}
            Some(key @ Value::Object(_)) => upload.set(usage, key.clone()),
            Some(_) => return Err(Error::bad_json(format!("{field} must be an object"))),
        }
    }
    let (services, user, flows) = (&*s, &caller.user_id, [vec!["m.login.password"]]);
    let authorize = || uia::require(services, Some(&body), &flows, Some(user));
    s.cross_signing
        .upload(&s.keys, user, upload, authorize)
        .await?;
    Ok(Json(json!({})))
}

pub async fn upload_signatures(
    State(s): S,
    Auth(caller): Auth,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let users = body
        .as_object()
        .ok_or_else(|| Error::bad_json("Body must be an object"))?;
    let mut signed = Vec::new();
    for (user, keys) in users {
        let user = UserId::parse(user)
            .map_err(|_| Error::invalid_param(format!("Invalid user id {user}")))?;
        let keys = keys
            .as_object()
            .ok_or_else(|| Error::invalid_param("Signed keys must be objects"))?;
        for (name, object) in keys {
            if !object.is_object() {
                return Err(Error::invalid_param("Signed keys must be objects"));
            }
            signed.push((user.clone(), name.clone(), object.clone()));
        }
    }
    let failures = s
        .cross_signing
        .upload_signatures(&s.keys, &caller.user_id, signed)
        .await?;
    Ok(Json(json!({ "failures": failures })))
}

/// The cross-signing fields of a `/keys/query` answer, filled user by user.
#[derive(Default)]
pub struct QueryKeys {
    pub master_keys: Map<String, Value>,
    pub self_signing_keys: Map<String, Value>,
    pub user_signing_keys: Map<String, Value>,
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
            field.insert(user.to_string(), key.clone());
        }
        Ok(())
    }
}
