//! Registration, login, logout, whoami, password change, deactivation.

use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use hmac::{Hmac, Mac};
use ruma::{OwnedDeviceId, UserId};
use serde_json::{json, Value};

use super::devices::{check_device_id, check_device_name};
use crate::config::RegistrationMode;
use crate::error::{Error, Result};
use crate::http::extract::{opt_bool, opt_str, req_str, Auth, JsonBody};
use crate::http::ratelimit::{self, Quota};
use crate::services::accounts::check_not_reserved;
use crate::services::{uia, Services};

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route(&super::v3("/register"), post(register))
        .route(&super::v3("/register/available"), get(available))
        .route(
            "/_matrix/client/v1/register/m.login.registration_token/validity",
            get(token_validity),
        )
        .route(&super::v3("/login"), get(login_flows).post(login))
        .route(&super::v3("/logout"), post(logout))
        .route(&super::v3("/logout/all"), post(logout_all))
        .route(&super::v3("/account/whoami"), get(whoami))
        .route(&super::v3("/account/password"), post(change_password))
        .route(&super::v3("/account/deactivate"), post(deactivate))
        .route(
            "/_synapse/admin/v1/register",
            get(admin_register_nonce).post(admin_register),
        )
}

type S = State<Arc<Services>>;

/// `POST /register`. The rate limit is spent before the body is read.
pub async fn register(
    State(s): S,
    quota: Quota<ratelimit::Register>,
    Query(q): Query<Vec<(String, String)>>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let ip = quota.ip;
    let kind = q
        .iter()
        .find(|(k, _)| k == "kind")
        .map(|(_, v)| v.as_str())
        .unwrap_or("user");
    if kind == "guest" {
        return Err(Error::guest_access_forbidden());
    }
    if kind != "user" {
        return Err(Error::invalid_param("kind must be user or guest"));
    }
    let flows: Vec<Vec<&str>> = match s.config.registration_mode() {
        RegistrationMode::Closed => return Err(Error::forbidden("Registration is disabled")),
        RegistrationMode::Open => vec![vec!["m.login.dummy"]],
        RegistrationMode::Token => vec![vec!["m.login.registration_token"]],
    };
    let localpart = match opt_str(&body, "username")? {
        Some(name) => name.to_lowercase(),
        None => crate::services::accounts::random_string(12).to_lowercase(),
    };
    let user = s.accounts.user_id(&localpart)?;
    check_not_reserved(&localpart)?;
    if s.accounts.exists(&user)? {
        return Err(Error::user_in_use());
    }
    let password = opt_str(&body, "password")?;
    if password.is_some_and(|p| p.len() > 512) {
        return Err(Error::invalid_param("Password too long"));
    }
    let device = NewDevice::from_body(&body)?;
    let inhibit = opt_bool(&body, "inhibit_login")?.unwrap_or(false);
    uia::require(&s, Some(&body), &flows, None).await?;
    crate::ai::provision::register_person(&s, &user, password, false).await?;
    tracing::info!(user = %user, "registered");
    finish_login(&s, &user, device, inhibit, Some(ip.to_string())).await
}

/// The device a login or registration asks for, checked before anything
/// is written.
struct NewDevice {
    id: Option<OwnedDeviceId>,
    display_name: Option<String>,
}

impl NewDevice {
    fn from_body(body: &Value) -> Result<Self> {
        let id = opt_str(body, "device_id")?;
        if let Some(id) = id {
            check_device_id(id)?;
        }
        let display_name = opt_str(body, "initial_device_display_name")?;
        if let Some(name) = display_name {
            check_device_name(name)?;
        }
        Ok(Self {
            id: id.map(Into::into),
            display_name: display_name.map(str::to_owned),
        })
    }
}

async fn finish_login(
    s: &Services,
    user: &UserId,
    device: NewDevice,
    inhibit: bool,
    ip: Option<String>,
) -> Result<Json<Value>> {
    if inhibit {
        return Ok(Json(
            json!({ "user_id": user, "home_server": s.server_name }),
        ));
    }
    let (device_id, token) = s
        .accounts
        .login_device(user, device.id, device.display_name, ip)
        .await?;
    if let Err(e) = crate::ai::provision::on_login(s, user).await {
        tracing::warn!(user = %user, error = %e, "AI user set-up at login failed");
    }
    Ok(Json(json!({
        "user_id": user,
        "access_token": token,
        "device_id": device_id,
        "home_server": s.server_name,
        "well_known": { "m.homeserver": { "base_url": s.config.base_url() } },
    })))
}

pub async fn available(State(s): S, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>> {
    let name = q
        .iter()
        .find(|(k, _)| k == "username")
        .map(|(_, v)| v.to_lowercase())
        .ok_or_else(|| Error::missing_param("Missing username"))?;
    let user = s.accounts.user_id(&name)?;
    check_not_reserved(&name)?;
    if s.accounts.exists(&user)? {
        return Err(Error::user_in_use());
    }
    Ok(Json(json!({ "available": true })))
}

/// `GET /v1/register/m.login.registration_token/validity`, rate-limited per
/// address so that tokens cannot be guessed at the server's speed.
pub async fn token_validity(
    State(s): S,
    _quota: Quota<ratelimit::TokenValidity>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<Value>> {
    if s.config.registration_mode() != RegistrationMode::Token {
        return Err(Error::forbidden("Registration tokens are not in use"));
    }
    let token = q
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| Error::missing_param("Missing token"))?;
    let valid = s.config.registration_token.as_deref() == Some(token);
    Ok(Json(json!({ "valid": valid })))
}

pub async fn login_flows() -> Json<Value> {
    Json(json!({ "flows": [{ "type": "m.login.password" }] }))
}

/// Resolves the login identifier to a local user id.
fn login_user(s: &Services, body: &Value) -> Result<ruma::OwnedUserId> {
    let named = match body.get("identifier") {
        Some(id) => {
            match opt_str(id, "type")? {
                Some("m.id.user") => {}
                Some(_) => {
                    return Err(Error::new(
                        http::StatusCode::BAD_REQUEST,
                        "M_UNKNOWN",
                        "Unsupported identifier type",
                    ))
                }
                None => return Err(Error::missing_param("identifier.type is required")),
            }
            req_str(id, "user")?
        }
        None => req_str(body, "user")?,
    };
    let user = if named.starts_with('@') {
        UserId::parse(named.to_lowercase())
            .map_err(|_| Error::forbidden("Invalid username or password"))?
    } else {
        s.accounts
            .user_id(&named.to_lowercase())
            .map_err(|_| Error::forbidden("Invalid username or password"))?
    };
    if !s.accounts.is_local(&user) {
        return Err(Error::forbidden("Invalid username or password"));
    }
    Ok(user)
}

/// `POST /login`. The rate limit is spent before the body is read.
pub async fn login(
    State(s): S,
    quota: Quota<ratelimit::Login>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let ip = quota.ip;
    match req_str(&body, "type")? {
        "m.login.password" => {}
        other => {
            return Err(Error::new(
                http::StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                format!("Unknown login type {other}"),
            ))
        }
    }
    let user = login_user(&s, &body)?;
    let password = req_str(&body, "password")?;
    let device = NewDevice::from_body(&body)?;
    if !s.accounts.check_password(&user, password).await? {
        return Err(Error::forbidden("Invalid username or password"));
    }
    finish_login(&s, &user, device, false, Some(ip.to_string())).await
}

pub async fn whoami(State(s): S, Auth(caller): Auth) -> Result<Json<Value>> {
    let _ = &s;
    Ok(Json(
        json!({ "user_id": caller.user_id, "device_id": caller.device_id, "is_guest": false }),
    ))
}

pub async fn logout(State(s): S, Auth(caller): Auth) -> Result<Json<Value>> {
    super::devices::delete_devices(&s, &caller.user_id, std::slice::from_ref(&caller.device_id))
        .await?;
    Ok(Json(json!({})))
}

pub async fn logout_all(State(s): S, Auth(caller): Auth) -> Result<Json<Value>> {
    let all = s.accounts.device_ids(&caller.user_id)?;
    super::devices::delete_devices(&s, &caller.user_id, &all).await?;
    Ok(Json(json!({})))
}

pub async fn change_password(
    State(s): S,
    Auth(caller): Auth,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    uia::require_password(&s, &body, &caller.user_id).await?;
    let new = req_str(&body, "new_password")?;
    s.accounts.set_password(&caller.user_id, new).await?;
    if opt_bool(&body, "logout_devices")?.unwrap_or(true) {
        let others: Vec<_> = s
            .accounts
            .device_ids(&caller.user_id)?
            .into_iter()
            .filter(|d| *d != caller.device_id)
            .collect();
        super::devices::delete_devices(&s, &caller.user_id, &others).await?;
    }
    Ok(Json(json!({})))
}

pub async fn deactivate(
    State(s): S,
    Auth(caller): Auth,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    uia::require_password(&s, &body, &caller.user_id).await?;
    for room in s.rooms.joined_rooms(&caller.user_id)? {
        let leave = crate::rooms::send::EventDraft::state(
            ruma::events::StateEventType::RoomMember,
            caller.user_id.as_str(),
            json!({ "membership": "leave" }),
        );
        if let Err(e) = s.rooms.send(&caller.user_id, &room, leave, None).await {
            tracing::warn!(room = %room, error = %e, "could not leave room while deactivating");
        }
    }
    s.accounts.mark_deactivated(&caller.user_id).await?;
    crate::ai::provision::switch_off_with_owner(&s, &caller.user_id).await?;
    let all = s.accounts.device_ids(&caller.user_id)?;
    super::devices::delete_devices(&s, &caller.user_id, &all).await?;
    Ok(Json(json!({ "id_server_unbind_result": "no-support" })))
}

/// `GET /_synapse/admin/v1/register`: a nonce for shared-secret registration.
pub async fn admin_register_nonce(State(s): S) -> Result<Json<Value>> {
    if s.config.registration_shared_secret.is_none() {
        return Err(Error::forbidden(
            "Shared secret registration is not enabled",
        ));
    }
    let nonce = crate::services::accounts::random_string(32);
    s.uia.remember_nonce(&nonce);
    Ok(Json(json!({ "nonce": nonce })))
}

/// `POST /_synapse/admin/v1/register`: HMAC-SHA1 over
/// nonce\0username\0password\0(admin|notadmin) with the shared secret.
pub async fn admin_register(State(s): S, JsonBody(body): JsonBody) -> Result<Json<Value>> {
    let Some(secret) = &s.config.registration_shared_secret else {
        return Err(Error::forbidden(
            "Shared secret registration is not enabled",
        ));
    };
    let nonce = req_str(&body, "nonce")?;
    let username = req_str(&body, "username")?;
    let password = req_str(&body, "password")?;
    let admin = opt_bool(&body, "admin")?.unwrap_or(false);
    let device = NewDevice::from_body(&body)?;
    let given =
        hex::decode(req_str(&body, "mac")?).map_err(|_| Error::forbidden("HMAC incorrect"))?;
    if !s.uia.take_nonce(nonce) {
        return Err(Error::invalid_param("Unrecognised nonce"));
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes())
        .map_err(|_| Error::internal("hmac key"))?;
    mac.update(nonce.as_bytes());
    mac.update(b"\0");
    mac.update(username.as_bytes());
    mac.update(b"\0");
    mac.update(password.as_bytes());
    mac.update(b"\0");
    mac.update(if admin {
        b"admin" as &[u8]
    } else {
        b"notadmin"
    });
    mac.verify_slice(&given)
        .map_err(|_| Error::forbidden("HMAC incorrect"))?;
    let user = s.accounts.user_id(&username.to_lowercase())?;
    check_not_reserved(user.localpart())?;
    if s.accounts.exists(&user)? {
        return Err(Error::user_in_use());
    }
    crate::ai::provision::register_person(&s, &user, Some(password), admin).await?;
    finish_login(&s, &user, device, false, None).await
}
