//! `/versions`, `/.well-known/matrix/*`, `/capabilities`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
// The display name and avatar capabilities are deprecated for
// `m.profile_fields`; clients of older versions still read them.
use ruma::api::client::discovery::discover_support::{self, Contact, ContactRole};
#[allow(deprecated)]
use ruma::api::client::discovery::get_capabilities::v3::{
    Capabilities, ChangePasswordCapability, GetLoginTokenCapability, ProfileFieldsCapability,
    RoomVersionStability, RoomVersionsCapability, SetAvatarUrlCapability, SetDisplayNameCapability,
    ThirdPartyIdChangesCapability,
};
use ruma::api::client::discovery::{discover_homeserver, get_capabilities, get_supported_versions};
use ruma::api::federation::discovery::discover_homeserver as discover_server;
use ruma::{RoomVersionId, ServerName};

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::rooms::create::SUPPORTED_VERSIONS;
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .endpoint(versions)
        .endpoint(well_known_client)
        .endpoint(well_known_server)
        .endpoint(well_known_support)
        .endpoint(capabilities)
}

const SPEC_VERSIONS: [&str; 17] = [
    "r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10",
    "v1.11", "v1.12", "v1.13", "v1.14", "v1.15", "v1.16",
];

async fn versions(
    s: Arc<Services>,
    _: Ruma<get_supported_versions::Request>,
) -> Result<get_supported_versions::Response> {
    let mut response =
        get_supported_versions::Response::new(SPEC_VERSIONS.map(str::to_owned).to_vec());
    if s.config.sliding_sync {
        response
            .unstable_features
            .insert("org.matrix.simplified_msc3575".to_owned(), true);
    }
    // Peeking via `/sync`.
    response
        .unstable_features
        .insert("org.matrix.msc2753".to_owned(), true);
    Ok(response)
}

async fn well_known_client(
    s: Arc<Services>,
    _: Ruma<discover_homeserver::Request>,
) -> Result<discover_homeserver::Response> {
    Ok(discover_homeserver::Response::new(
        discover_homeserver::HomeserverInfo::new(s.config.base_url()),
    ))
}

async fn well_known_server(
    s: Arc<Services>,
    _: Ruma<discover_server::Request>,
) -> Result<discover_server::Response> {
    // A server name with a port is already where peers connect.
    if s.server_name.port().is_some() {
        return Ok(discover_server::Response::new(s.server_name.clone()));
    }
    let port = s.config.federation_listen.map_or(8448, |a| a.port());
    let server = ServerName::parse(format!("{}:{port}", s.server_name))
        .map_err(|e| Error::internal(format!("server name: {e}")))?;
    Ok(discover_server::Response::new(server))
}

/// `/.well-known/matrix/support` (v1.10): who runs the server, from the
/// configuration; 404 when it names no one, as Synapse answers.
async fn well_known_support(
    s: Arc<Services>,
    _: Ruma<discover_support::Request>,
) -> Result<discover_support::Response> {
    let contacts: Vec<Contact> = s
        .config
        .admin_contact_email
        .iter()
        .map(|email| Contact::with_email_address(ContactRole::Admin, email.clone()))
        .collect();
    if contacts.is_empty() && s.config.support_page.is_none() {
        return Err(Error::not_found("No support information is configured"));
    }
    let mut out = discover_support::Response::with_contacts(contacts);
    out.support_page = s.config.support_page.clone();
    Ok(out)
}

fn room_version(version: &str) -> Result<RoomVersionId> {
    RoomVersionId::try_from(version)
        .map_err(|e| Error::internal(format!("room version {version}: {e}")))
}

#[allow(deprecated)]
async fn capabilities(
    s: Arc<Services>,
    _: Ruma<get_capabilities::v3::Request>,
) -> Result<get_capabilities::v3::Response> {
    let available = SUPPORTED_VERSIONS
        .iter()
        .map(|v| Ok((room_version(v)?, RoomVersionStability::Stable)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    let mut caps = Capabilities::new();
    caps.change_password = ChangePasswordCapability::new(true);
    caps.room_versions =
        RoomVersionsCapability::new(room_version(&s.config.default_room_version)?, available);
    caps.set_displayname = SetDisplayNameCapability::new(true);
    caps.set_avatar_url = SetAvatarUrlCapability::new(true);
    caps.profile_fields = Some(ProfileFieldsCapability::new(true));
    caps.thirdparty_id_changes = ThirdPartyIdChangesCapability::new(false);
    caps.get_login_token = GetLoginTokenCapability::new(false);
    Ok(get_capabilities::v3::Response::new(caps))
}
