//! Third-party identifiers (email, phone) and third-party networks: this
//! server keeps neither, so lists are empty, validation tokens are refused
//! with the error the spec gives each endpoint for it, and adding or
//! binding an identifier fails as an unvalidated session does
//! (`M_THREEPID_AUTH_FAILED`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::Router;
use ruma::api::client::account::{
    add_3pid, bind_3pid, delete_3pid, get_3pids, request_3pid_management_token_via_email,
    request_3pid_management_token_via_msisdn, request_password_change_token_via_email,
    request_password_change_token_via_msisdn, request_registration_token_via_email,
    request_registration_token_via_msisdn, unbind_3pid, ThirdPartyIdRemovalStatus,
};
use ruma::api::client::thirdparty::{
    get_location_for_protocol, get_location_for_room_alias, get_protocol, get_protocols,
    get_user_for_protocol, get_user_for_user_id,
};
use ruma::api::{IncomingRequest, OutgoingResponse};

use crate::error::{Error, Result};
use crate::http::authenticate::Authenticate;
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .reading(threepids)
        .reading(
            refused::<request_3pid_management_token_via_email::v3::Request, MediumNotSupported>,
        )
        .reading(
            refused::<request_3pid_management_token_via_msisdn::v3::Request, MediumNotSupported>,
        )
        .reading(refused::<request_registration_token_via_email::v3::Request, Denied>)
        .reading(refused::<request_registration_token_via_msisdn::v3::Request, Denied>)
        .reading(refused::<request_password_change_token_via_email::v3::Request, NotFound>)
        .reading(refused::<request_password_change_token_via_msisdn::v3::Request, NotFound>)
        .reading(unvalidated::<add_3pid::v3::Request>)
        .reading(unvalidated::<bind_3pid::v3::Request>)
        .reading(delete)
        .reading(unbind)
        .reading(protocols)
        .reading(protocol)
        .reading(locations)
        .reading(locations_by_alias)
        .reading(users)
        .reading(users_by_id)
}

fn threepids(_: Arc<Services>, _: Ruma<get_3pids::v3::Request>) -> Result<get_3pids::v3::Response> {
    Ok(get_3pids::v3::Response::new(Vec::new()))
}

/// Why a token to validate an identifier is refused: this server
/// validates none.
trait Refusal {
    fn error() -> Error;
}

/// Adding an identifier to an account: the medium is not supported.
struct MediumNotSupported;
impl Refusal for MediumNotSupported {
    fn error() -> Error {
        Error::new(
            StatusCode::BAD_REQUEST,
            "M_THREEPID_MEDIUM_NOT_SUPPORTED",
            "Third-party identifiers are not supported on this server",
        )
    }
}

/// Registering with an identifier: it is not allowed as a contact option.
struct Denied;
impl Refusal for Denied {
    fn error() -> Error {
        Error::new(
            StatusCode::FORBIDDEN,
            "M_THREEPID_DENIED",
            "Third-party identifiers are not allowed on this server",
        )
    }
}

/// Resetting a password by an identifier: no account has it.
struct NotFound;
impl Refusal for NotFound {
    fn error() -> Error {
        Error::new(
            StatusCode::BAD_REQUEST,
            "M_THREEPID_NOT_FOUND",
            "No account has this third-party identifier",
        )
    }
}

/// A token to validate an identifier, refused as `W` says.
fn refused<R, W: Refusal>(_: Arc<Services>, _: Ruma<R>) -> Result<R::OutgoingResponse>
where
    R: IncomingRequest,
    R::Authentication: Authenticate,
    R::OutgoingResponse: OutgoingResponse,
{
    Err(W::error())
}

/// Adding or binding an identifier names a validation session: none
/// exists here.
fn unvalidated<R>(_: Arc<Services>, _: Ruma<R>) -> Result<R::OutgoingResponse>
where
    R: IncomingRequest,
    R::Authentication: Authenticate,
{
    Err(Error::new(
        StatusCode::BAD_REQUEST,
        "M_THREEPID_AUTH_FAILED",
        "No validated third-party identifier session",
    ))
}

/// Nothing to remove; no identity server was told anything.
fn delete(
    _: Arc<Services>,
    _: Ruma<delete_3pid::v3::Request>,
) -> Result<delete_3pid::v3::Response> {
    Ok(delete_3pid::v3::Response::new(
        ThirdPartyIdRemovalStatus::NoSupport,
    ))
}

fn unbind(
    _: Arc<Services>,
    _: Ruma<unbind_3pid::v3::Request>,
) -> Result<unbind_3pid::v3::Response> {
    Ok(unbind_3pid::v3::Response::new(
        ThirdPartyIdRemovalStatus::NoSupport,
    ))
}

/// No bridges (application services) are registered: no protocols.
fn protocols(
    _: Arc<Services>,
    _: Ruma<get_protocols::v3::Request>,
) -> Result<get_protocols::v3::Response> {
    Ok(get_protocols::v3::Response::new(BTreeMap::new()))
}

fn protocol(
    _: Arc<Services>,
    _: Ruma<get_protocol::v3::Request>,
) -> Result<get_protocol::v3::Response> {
    Err(Error::not_found("Unknown protocol"))
}

fn locations(
    _: Arc<Services>,
    _: Ruma<get_location_for_protocol::v3::Request>,
) -> Result<get_location_for_protocol::v3::Response> {
    Ok(get_location_for_protocol::v3::Response::new(Vec::new()))
}

fn locations_by_alias(
    _: Arc<Services>,
    _: Ruma<get_location_for_room_alias::v3::Request>,
) -> Result<get_location_for_room_alias::v3::Response> {
    Ok(get_location_for_room_alias::v3::Response::new(Vec::new()))
}

fn users(
    _: Arc<Services>,
    _: Ruma<get_user_for_protocol::v3::Request>,
) -> Result<get_user_for_protocol::v3::Response> {
    Ok(get_user_for_protocol::v3::Response::new(Vec::new()))
}

fn users_by_id(
    _: Arc<Services>,
    _: Ruma<get_user_for_user_id::v3::Request>,
) -> Result<get_user_for_user_id::v3::Response> {
    Ok(get_user_for_user_id::v3::Response::new(Vec::new()))
}
