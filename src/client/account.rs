//! Registration, login, logout, whoami, password change, deactivation.

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::routing::{get, on, MethodFilter};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use ruma::api::client::account::register::RegistrationKind;
use ruma::api::client::account::{
    change_password, check_registration_token_validity, deactivate, get_username_availability,
    register, whoami, ThirdPartyIdRemovalStatus,
};
use ruma::api::client::session::get_login_types::v3::{LoginType, PasswordLoginType};
use ruma::api::client::session::login::v3::{DiscoveryInfo, HomeserverInfo, LoginInfo, Password};
use ruma::api::client::session::{get_login_types, login, logout, logout_all};
use ruma::api::client::uiaa::UserIdentifier;
use ruma::api::path_builder::PathBuilder;
use ruma::api::Metadata;
use ruma::{OwnedDeviceId, OwnedUserId, UserId};
use serde_json::{json, Value};

use super::devices::{check_device_id, check_device_name};
use crate::config::RegistrationMode;
use crate::error::{Error, Result};
use crate::http::body_guard::read_body_of;
use crate::http::endpoint::{ParsedRequest, Reply, ResponseOf, Ruma, TypedRoutes};
use crate::http::extract::{opt_bool, opt_str, req_str, JsonBody};
use crate::http::ratelimit::{self, AddressLimit, Quota};
use crate::http::uia_request::UiaRequest;
use crate::http::Caller;
use crate::services::access_tokens::{Session, TokenKind};
use crate::services::accounts::check_not_reserved;
use crate::services::{uia, Services};

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    let router = Router::new()
        .endpoint(available)
        .endpoint(login_flows)
        .endpoint(logout)
        .endpoint(logout_all)
        .endpoint(whoami)
        .endpoint(change_password)
        .endpoint(deactivate)
        .route(
            "/_synapse/admin/v1/register",
            get(admin_register_nonce).post(admin_register),
        );
    let router = limited::<ratelimit::Register, _, _, _>(router, None, register);
    let router = limited::<ratelimit::Login, _, _, _>(router, Some(check_login_type), login);
    let router = limited::<ratelimit::Login, _, _, _>(router, None, super::refresh::refresh);
    limited::<ratelimit::TokenValidity, _, _, _>(router, None, token_validity)
}

/// Registers `handler` at endpoint `R`'s paths behind the per-address
/// quota `L`. The token is spent before the body is read, so a client over
/// its limit costs no buffering or parsing (which is why the quota cannot
/// wait for the handler); `check`, if given, then sees the raw body before
/// ruma parses it.
fn limited<L, E, H, F>(
    router: Router<Arc<Services>>,
    check: Option<BodyCheck>,
    handler: H,
) -> Router<Arc<Services>>
where
    L: AddressLimit + Send + Sync + 'static,
    E: ParsedRequest,
    H: Fn(Arc<Services>, E) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<ResponseOf<E>>> + Send + 'static,
{
    let method = E::Endpoint::METHOD;
    let filter = MethodFilter::try_from(method).expect("endpoints use standard methods");
    E::Endpoint::PATH_BUILDER
        .all_paths()
        .fold(router, |router, path| {
            let handler = handler.clone();
            router.route(
                path,
                on(
                    filter,
                    move |State(s): State<Arc<Services>>, _: Quota<L>, request: Request| {
                        let handler = handler.clone();
                        async move { Reply(parse_and_run(s, check, request, handler).await) }
                    },
                ),
            )
        })
}

/// A look at a request's raw body before ruma parses it.
type BodyCheck = fn(&[u8]) -> Result<()>;

async fn parse_and_run<E, H, F>(
    s: Arc<Services>,
    check: Option<BodyCheck>,
    request: Request,
    handler: H,
) -> Result<ResponseOf<E>>
where
    E: ParsedRequest,
    H: Fn(Arc<Services>, E) -> F,
    F: Future<Output = Result<ResponseOf<E>>>,
{
    let request = match check {
        Some(check) => {
            let (parts, body) = request.into_parts();
            let bytes = read_body_of(&parts, body).await?;
            check(&bytes)?;
            Request::from_parts(parts, Body::from(bytes))
        }
        None => request,
    };
    let req = E::from_request(request, &s).await?;
    handler(s, req).await
}

/// A `/login` body's `type`, checked before ruma parses the body: ruma's
/// parser panics on a body without one and calls a non-string one
/// missing. Bodies that are not JSON objects are left to the extractor.
fn check_login_type(body: &[u8]) -> Result<()> {
    let login_type = if body.trim_ascii().is_empty() {
        None
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(mut body)) => body.remove("type"),
            _ => return Ok(()),
        }
    };
    match login_type {
        None => Err(Error::missing_param("Missing 'type'")),
        Some(Value::String(_)) => Ok(()),
        Some(_) => Err(Error::bad_json("'type' must be a string")),
    }
}

/// `POST /register`.
async fn register(
    s: Arc<Services>,
    req: UiaRequest<register::v3::Request>,
) -> Result<register::v3::Response> {
    let (req, auth) = req.parsed()?;
    let body = req.body;
    match body.kind {
        RegistrationKind::User => {}
        RegistrationKind::Guest if s.config.allow_guest_access => {
            let device = NewDevice::new(None, body.initial_device_display_name)?;
            return super::guests::register(&s, device, req.ip).await;
        }
        RegistrationKind::Guest => return Err(Error::guest_access_forbidden()),
        _ => return Err(Error::invalid_param("kind must be user or guest")),
    }
    let flows: Vec<Vec<&str>> = match s.config.registration_mode() {
        RegistrationMode::Closed => return Err(Error::forbidden("Registration is disabled")),
        RegistrationMode::Open => vec![vec!["m.login.dummy"]],
        RegistrationMode::Token => vec![vec!["m.login.registration_token"]],
    };
    let localpart = match &body.username {
        Some(name) => name.to_lowercase(),
        None => crate::random::random_string(12).to_lowercase(),
    };
    let user = s.accounts.user_id(&localpart)?;
    check_not_reserved(&localpart)?;
    // A guest taking its own id with its token becomes a full account.
    let upgrade = s.accounts.exists(&user)?;
    match &body.guest_access_token {
        Some(token) if upgrade => super::guests::check_upgrade(&s, token, &user)?,
        _ if upgrade => return Err(Error::user_in_use()),
        _ => {}
    }
    let password = body.password.as_deref();
    if password.is_some_and(|p| p.len() > 512) {
        return Err(Error::invalid_param("Password too long"));
    }
    let device = NewDevice::new(body.device_id, body.initial_device_display_name)?;
    uia::require(&s, auth.as_ref(), &flows, None).await?;
    if upgrade {
        super::guests::upgrade(&s, &user, password).await?;
    } else {
        crate::ai::provision::register_person(&s, &user, password, false).await?;
    }
    tracing::info!(user = %user, upgrade, "registered");
    let mut out = register::v3::Response::new(user.clone());
    if !body.inhibit_login {
        let lifetime = body
            .refresh_token
            .then(|| s.config.refreshable_token_lifetime());
        let kind = TokenKind::of(lifetime);
        let session = open_session(&s, &user, device, Some(req.ip.to_string()), kind).await?;
        out.device_id = Some(session.device_id);
        out.access_token = Some(session.access_token);
        out.refresh_token = session.refresh_token;
        out.expires_in = session.expires_in;
    }
    Ok(out)
}

/// The device a login or registration asks for, checked before anything
/// is written.
pub(super) struct NewDevice {
    id: Option<OwnedDeviceId>,
    display_name: Option<String>,
}

impl NewDevice {
    pub(super) fn new(id: Option<OwnedDeviceId>, display_name: Option<String>) -> Result<Self> {
        if let Some(id) = &id {
            check_device_id(id.as_str())?;
        }
        if let Some(name) = &display_name {
            check_device_name(name)?;
        }
        Ok(Self { id, display_name })
    }
}

/// Logs `user` in on a new (or the named) device: its id and tokens of
/// the kind asked for.
pub(super) async fn open_session(
    s: &Services,
    user: &UserId,
    device: NewDevice,
    ip: Option<String>,
    kind: TokenKind,
) -> Result<Session> {
    let known = match &device.id {
        Some(id) => s.accounts.device(user, id)?.is_some(),
        None => false,
    };
    let session = s
        .accounts
        .login_device(user, device.id, device.display_name, ip, kind)
        .await?;
    if !known {
        // Those who share a room with the user (and the user's other
        // devices) learn of the new device, as Synapse tells them.
        s.keys.note_device_list_change(user).await?;
    }
    let guest = matches!(kind, TokenKind::Guest);
    if !guest {
        if let Err(e) = crate::ai::provision::on_login(s, user).await {
            tracing::warn!(user = %user, error = %e, "AI user set-up at login failed");
        }
    }
    Ok(session)
}

async fn available(
    s: Arc<Services>,
    req: Ruma<get_username_availability::v3::Request>,
) -> Result<get_username_availability::v3::Response> {
    let name = req.body.username.to_lowercase();
    let user = s.accounts.user_id(&name)?;
    check_not_reserved(&name)?;
    if s.accounts.exists(&user)? {
        return Err(Error::user_in_use());
    }
    Ok(get_username_availability::v3::Response::new(true))
}

/// `GET /v1/register/m.login.registration_token/validity`, rate-limited per
/// address so that tokens cannot be guessed at the server's speed.
async fn token_validity(
    s: Arc<Services>,
    req: Ruma<check_registration_token_validity::v1::Request>,
) -> Result<check_registration_token_validity::v1::Response> {
    if s.config.registration_mode() != RegistrationMode::Token {
        return Err(Error::forbidden("Registration tokens are not in use"));
    }
    let valid = s.config.registration_token.as_deref() == Some(req.body.token.as_str());
    Ok(check_registration_token_validity::v1::Response::new(valid))
}

async fn login_flows(
    _: Arc<Services>,
    _: Ruma<get_login_types::v3::Request>,
) -> Result<get_login_types::v3::Response> {
    Ok(get_login_types::v3::Response::new(vec![
        LoginType::Password(PasswordLoginType::new()),
    ]))
}

/// Resolves the login identifier to a local user id.
fn login_user(s: &Services, login: &Password) -> Result<OwnedUserId> {
    #[allow(deprecated)]
    let named = match (&login.identifier, &login.user) {
        (Some(UserIdentifier::Matrix(id)), _) => &id.user,
        (Some(_), _) => {
            return Err(Error::new(
                http::StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                "Unsupported identifier type",
            ))
        }
        (None, Some(user)) => user,
        (None, None) => return Err(Error::missing_param("Missing 'user'")),
    };
    let invalid = || Error::forbidden("Invalid username or password");
    let user = if named.starts_with('@') {
        UserId::parse(named.to_lowercase()).map_err(|_| invalid())?
    } else {
        s.accounts
            .user_id(&named.to_lowercase())
            .map_err(|_| invalid())?
    };
    if !s.accounts.is_local(&user) {
        return Err(invalid());
    }
    Ok(user)
}

/// `POST /login`.
async fn login(s: Arc<Services>, req: Ruma<login::v3::Request>) -> Result<login::v3::Response> {
    let body = req.body;
    let LoginInfo::Password(login) = &body.login_info else {
        return Err(Error::new(
            http::StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            format!("Unknown login type {}", body.login_info.login_type()),
        ));
    };
    let user = login_user(&s, login)?;
    let device = NewDevice::new(body.device_id, body.initial_device_display_name)?;
    if !s.accounts.check_password(&user, &login.password).await? {
        return Err(Error::forbidden("Invalid username or password"));
    }
    let lifetime = body
        .refresh_token
        .then(|| s.config.refreshable_token_lifetime());
    let kind = TokenKind::of(lifetime);
    let session = open_session(&s, &user, device, Some(req.ip.to_string()), kind).await?;
    let mut out = login::v3::Response::new(user, session.access_token, session.device_id);
    out.refresh_token = session.refresh_token;
    out.expires_in = session.expires_in;
    #[allow(deprecated)]
    {
        out.home_server = Some(s.server_name.clone());
    }
    out.well_known = Some(DiscoveryInfo::new(HomeserverInfo::new(s.config.base_url())));
    Ok(out)
}

async fn whoami(_: Arc<Services>, req: Ruma<whoami::v3::Request>) -> Result<whoami::v3::Response> {
    let mut out = whoami::v3::Response::new(req.caller.user_id, req.caller.guest);
    out.device_id = Some(req.caller.device_id);
    Ok(out)
}

async fn logout(s: Arc<Services>, req: Ruma<logout::v3::Request>) -> Result<logout::v3::Response> {
    let caller = req.caller;
    super::devices::delete_devices(&s, &caller.user_id, std::slice::from_ref(&caller.device_id))
        .await?;
    Ok(logout::v3::Response::new())
}

async fn logout_all(
    s: Arc<Services>,
    req: Ruma<logout_all::v3::Request>,
) -> Result<logout_all::v3::Response> {
    let user = req.caller.user_id;
    let all = s.accounts.device_ids(&user)?;
    super::devices::delete_devices(&s, &user, &all).await?;
    Ok(logout_all::v3::Response::new())
}

/// The caller of an endpoint whose token ruma makes optional (UIA could
/// stand in for it) but which this server only offers to signed-in users.
fn signed_in(caller: Option<Caller>) -> Result<Caller> {
    caller.ok_or_else(Error::missing_token)
}

async fn change_password(
    s: Arc<Services>,
    req: UiaRequest<change_password::v3::Request>,
) -> Result<change_password::v3::Response> {
    // Synapse refuses a malformed body first, but asks for the password
    // before it looks for a missing new one.
    let body = match req.body {
        Err(e) if e.errcode != "M_MISSING_PARAM" => return Err(e),
        body => body,
    };
    let caller = signed_in(req.caller)?;
    uia::require_password(&s, req.auth.as_ref(), &caller.user_id).await?;
    let body = body?;
    s.accounts
        .set_password(&caller.user_id, &body.new_password)
        .await?;
    if body.logout_devices {
        let others: Vec<_> = s
            .accounts
            .device_ids(&caller.user_id)?
            .into_iter()
            .filter(|d| *d != caller.device_id)
            .collect();
        super::devices::delete_devices(&s, &caller.user_id, &others).await?;
    }
    Ok(change_password::v3::Response::new())
}

async fn deactivate(
    s: Arc<Services>,
    req: UiaRequest<deactivate::v3::Request>,
) -> Result<deactivate::v3::Response> {
    let (req, auth) = req.parsed()?;
    let user = signed_in(req.caller)?.user_id;
    uia::require_password(&s, auth.as_ref(), &user).await?;
    deactivate_account(&s, &user, req.body.erase).await?;
    Ok(deactivate::v3::Response::new(
        ThirdPartyIdRemovalStatus::NoSupport,
    ))
}

/// Deactivates a local account for good (by its owner, or by an admin
/// through Synapse's admin API): with `erase`, its profile and the
/// content of its events for later joiners first; then out of every room,
/// its account data purged, its AI switched off, every device and token
/// gone.
pub(crate) async fn deactivate_account(s: &Services, user: &UserId, erase: bool) -> Result<()> {
    if erase {
        // Before the leaves, which would carry the profile otherwise.
        s.accounts.erase(user, s.store.position()).await?;
        tracing::info!(user = %user, "account content erased");
    }
    // Out of every room: joined ones left, invites declined, knocks
    // withdrawn (through the room's server when this one is not in it).
    for (room, membership) in s.rooms.rooms_of(user)? {
        if !matches!(membership.membership.as_str(), "join" | "invite" | "knock") {
            continue;
        }
        if let Err(e) = crate::services::membership::leave_room(s, user, &room, None).await {
            tracing::warn!(room = %room, error = %e, "could not leave room while deactivating");
        }
    }
    s.accounts.mark_deactivated(user).await?;
    s.account_data.purge(user).await?;
    crate::ai::provision::switch_off_with_owner(s, user).await?;
    let all = s.accounts.device_ids(user)?;
    super::devices::delete_devices(s, user, &all).await
}

type S = State<Arc<Services>>;

/// `GET /_synapse/admin/v1/register`: a nonce for shared-secret registration.
pub async fn admin_register_nonce(State(s): S) -> Result<Json<Value>> {
    if s.config.registration_shared_secret.is_none() {
        return Err(Error::forbidden(
            "Shared secret registration is not enabled",
        ));
    }
    let nonce = crate::random::random_string(32);
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
    let device = NewDevice::new(
        opt_str(&body, "device_id")?.map(Into::into),
        opt_str(&body, "initial_device_display_name")?.map(str::to_owned),
    )?;
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
    let session = open_session(&s, &user, device, None, TokenKind::Lasting).await?;
    Ok(Json(json!({
        "user_id": user,
        "access_token": session.access_token,
        "device_id": session.device_id,
        "home_server": s.server_name,
        "well_known": { "m.homeserver": { "base_url": s.config.base_url() } },
    })))
}
