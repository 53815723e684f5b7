//! Client-server API handlers, one area per file, and their routes.

pub mod account;
pub mod cross_signing;
pub mod devices;
pub mod directory;
pub mod discovery;
pub mod key_backup;
pub mod keys;
pub mod media;
pub mod membership;
pub mod notifications;
pub mod presence;
pub mod profile;
pub mod push_rules;
pub mod pushers;
pub mod receipts;
pub mod room_context;
pub mod room_create;
pub mod room_events;
pub mod room_history;
pub mod user_data;

use std::sync::Arc;

use axum::routing::{get, post, put};
use axum::Router;

use crate::services::Services;

const V3: &str = "/_matrix/client/v3";

fn v3(path: &str) -> String {
    format!("{V3}{path}")
}

pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route("/_matrix/client/versions", get(discovery::versions))
        .route(
            "/.well-known/matrix/client",
            get(discovery::well_known_client),
        )
        .route(
            "/.well-known/matrix/server",
            get(discovery::well_known_server),
        )
        .route(&v3("/capabilities"), get(discovery::capabilities))
        .route(&v3("/register"), post(account::register))
        .route(&v3("/register/available"), get(account::available))
        .route(
            "/_matrix/client/v1/register/m.login.registration_token/validity",
            get(account::token_validity),
        )
        .route(
            &v3("/login"),
            get(account::login_flows).post(account::login),
        )
        .route(&v3("/logout"), post(account::logout))
        .route(&v3("/logout/all"), post(account::logout_all))
        .route(&v3("/account/whoami"), get(account::whoami))
        .route(&v3("/account/password"), post(account::change_password))
        .route(&v3("/account/deactivate"), post(account::deactivate))
        .route(
            "/_synapse/admin/v1/register",
            get(account::admin_register_nonce).post(account::admin_register),
        )
        .route(&v3("/devices"), get(devices::list))
        .route(
            &v3("/devices/{device}"),
            get(devices::get)
                .put(devices::update)
                .delete(devices::delete),
        )
        .route(&v3("/delete_devices"), post(devices::delete_many))
        .route(&v3("/profile/{user}"), get(profile::get_profile))
        .route(
            &v3("/profile/{user}/{field}"),
            get(profile::get_field).put(profile::set_field),
        )
        .route(&v3("/createRoom"), post(room_create::create_room))
        .route(&v3("/join/{room}"), post(membership::join))
        .route(&v3("/knock/{room}"), post(membership::knock))
        .route(&v3("/joined_rooms"), get(membership::joined_rooms))
        .route(&v3("/rooms/{room}/join"), post(membership::join))
        .route(&v3("/rooms/{room}/leave"), post(membership::leave))
        .route(&v3("/rooms/{room}/invite"), post(membership::invite))
        .route(&v3("/rooms/{room}/kick"), post(membership::kick))
        .route(&v3("/rooms/{room}/ban"), post(membership::ban))
        .route(&v3("/rooms/{room}/unban"), post(membership::unban))
        .route(&v3("/rooms/{room}/forget"), post(membership::forget))
        .route(
            &v3("/rooms/{room}/send/{kind}/{txn}"),
            put(room_events::send),
        )
        .route(&v3("/rooms/{room}/state"), get(room_events::get_state))
        .route(
            &v3("/rooms/{room}/state/{kind}"),
            get(room_events::get_state_event_empty_key).put(room_events::put_state_empty_key),
        )
        .route(
            &v3("/rooms/{room}/state/{kind}/"),
            get(room_events::get_state_event_empty_key).put(room_events::put_state_empty_key),
        )
        .route(
            &v3("/rooms/{room}/state/{kind}/{key}"),
            get(room_events::get_state_event).put(room_events::put_state),
        )
        .route(
            &v3("/rooms/{room}/event/{event}"),
            get(room_events::get_event),
        )
        .route(
            &v3("/rooms/{room}/redact/{event}/{txn}"),
            put(room_events::redact),
        )
        .route(&v3("/rooms/{room}/messages"), get(room_history::messages))
        .route(&v3("/rooms/{room}/members"), get(room_history::members))
        .route(
            &v3("/rooms/{room}/context/{event}"),
            get(room_context::context),
        )
        .route(
            "/_matrix/client/v1/rooms/{room}/timestamp_to_event",
            get(room_context::timestamp_to_event),
        )
        .route(
            &v3("/rooms/{room}/joined_members"),
            get(room_history::joined_members),
        )
        .route(
            &v3("/rooms/{room}/receipt/{kind}/{event}"),
            post(receipts::receipt),
        )
        .route(
            &v3("/rooms/{room}/read_markers"),
            post(receipts::read_markers),
        )
        .route(&v3("/rooms/{room}/typing/{user}"), put(receipts::typing))
        .route(
            &v3("/directory/room/{alias}"),
            get(directory::get_alias)
                .put(directory::put_alias)
                .delete(directory::delete_alias),
        )
        .route(&v3("/rooms/{room}/aliases"), get(directory::room_aliases))
        .route(
            &v3("/directory/list/room/{room}"),
            get(directory::get_visibility).put(directory::set_visibility),
        )
        .route(
            &v3("/publicRooms"),
            get(directory::get_public_rooms).post(directory::post_public_rooms),
        )
        .route(&v3("/sync"), get(crate::sync::sync))
        .route(&v3("/user/{user}/filter"), post(user_data::create_filter))
        .route(&v3("/user/{user}/filter/{id}"), get(user_data::get_filter))
        .route(
            &v3("/user/{user}/account_data/{kind}"),
            get(user_data::get_global).put(user_data::put_global),
        )
        .route(
            &v3("/user/{user}/rooms/{room}/account_data/{kind}"),
            get(user_data::get_room).put(user_data::put_room),
        )
        .route(
            &v3("/user/{user}/rooms/{room}/tags"),
            get(user_data::get_tags),
        )
        .route(
            &v3("/user/{user}/rooms/{room}/tags/{tag}"),
            put(user_data::put_tag).delete(user_data::delete_tag),
        )
        .route(&v3("/notifications"), get(notifications::list))
        .route(&v3("/pushers"), get(pushers::list))
        .route(&v3("/pushers/set"), post(pushers::set))
        .route(&v3("/pushrules/"), get(push_rules::get_all))
        .route(&v3("/pushrules"), get(push_rules::get_all))
        .route(&v3("/pushrules/{scope}/"), get(push_rules::get_scope))
        .route(
            &v3("/pushrules/{scope}/{kind}/{id}"),
            get(push_rules::get_rule)
                .put(push_rules::put_rule)
                .delete(push_rules::delete_rule),
        )
        .route(
            &v3("/pushrules/{scope}/{kind}/{id}/{attr}"),
            get(push_rules::get_attribute).put(push_rules::set_attribute),
        )
        .route(
            &v3("/presence/{user}/status"),
            get(presence::get).put(presence::set),
        )
        .route(
            &v3("/room_keys/version"),
            get(key_backup::current_version).post(key_backup::create_version),
        )
        .route(
            &v3("/room_keys/version/{version}"),
            get(key_backup::get_version)
                .put(key_backup::update_version)
                .delete(key_backup::delete_version),
        )
        .route(
            &v3("/room_keys/keys"),
            get(key_backup::get_all)
                .put(key_backup::put_all)
                .delete(key_backup::delete_all),
        )
        .route(
            &v3("/room_keys/keys/{room}"),
            get(key_backup::get_room)
                .put(key_backup::put_room)
                .delete(key_backup::delete_room),
        )
        .route(
            &v3("/room_keys/keys/{room}/{session}"),
            get(key_backup::get_session)
                .put(key_backup::put_session)
                .delete(key_backup::delete_session),
        )
        .route(&v3("/keys/upload"), post(keys::upload))
        .route(&v3("/keys/query"), post(keys::query))
        .route(&v3("/keys/claim"), post(keys::claim))
        .route(&v3("/keys/changes"), get(keys::changes))
        .route(
            &v3("/keys/device_signing/upload"),
            post(cross_signing::upload_signing_keys),
        )
        .route(
            &v3("/keys/signatures/upload"),
            post(cross_signing::upload_signatures),
        )
        .route(&v3("/sendToDevice/{kind}/{txn}"), put(keys::send_to_device))
        .merge(media_routes())
}

/// The content repository, at its authenticated paths and the older ones.
fn media_routes() -> Router<Arc<Services>> {
    const V1: &str = "/_matrix/client/v1/media";
    const LEGACY: &str = "/_matrix/media/v3";
    Router::new()
        .route(&format!("{V1}/config"), get(media::config))
        .route(&format!("{LEGACY}/config"), get(media::config))
        .route(&format!("{LEGACY}/upload"), post(media::upload))
        .route(
            &format!("{V1}/download/{{server}}/{{id}}"),
            get(media::download),
        )
        .route(
            &format!("{V1}/download/{{server}}/{{id}}/{{name}}"),
            get(media::download_named),
        )
        .route(
            &format!("{LEGACY}/download/{{server}}/{{id}}"),
            get(media::legacy_download),
        )
        .route(
            &format!("{LEGACY}/download/{{server}}/{{id}}/{{name}}"),
            get(media::legacy_download_named),
        )
        .route(
            &format!("{V1}/thumbnail/{{server}}/{{id}}"),
            get(media::thumbnail),
        )
        .route(
            &format!("{LEGACY}/thumbnail/{{server}}/{{id}}"),
            get(media::legacy_thumbnail),
        )
}
