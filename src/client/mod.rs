//! Client-server API handlers, one area per file, and their routes.

pub mod account;
pub mod admin;
pub mod cross_signing;
pub mod devices;
pub mod directory;
pub mod discovery;
pub mod guests;
pub mod key_backup;
pub mod keys;
pub mod media;
pub mod media_async;
pub mod membership;
pub mod notifications;
pub mod openid;
pub mod peek_room;
pub mod peeking;
pub mod presence;
pub mod profile;
pub mod push_rules;
pub mod pushers;
pub mod receipts;
pub mod refresh;
pub mod relations;
pub mod reports;
pub mod room_context;
pub mod room_create;
pub mod room_events;
pub mod room_history;
pub mod room_initial_sync;
pub mod room_summary;
pub mod room_upgrade;
pub mod search;
pub mod spaces;
pub mod threepid;
pub mod url_preview;
pub mod user_data;
pub mod user_directory;
pub mod voip;

use std::sync::Arc;

use axum::Router;

use crate::services::Services;

const V3: &str = "/_matrix/client/v3";

/// A client-server API v3 path.
pub(crate) fn v3(path: &str) -> String {
    format!("{V3}{path}")
}

pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .merge(discovery::routes())
        .merge(account::routes())
        .merge(devices::routes())
        .merge(room_create::routes())
        .merge(membership::routes())
        .merge(room_events::routes())
        .merge(room_history::routes())
        .merge(peeking::routes())
        .merge(peek_room::routes())
        .merge(room_initial_sync::routes())
        .merge(room_context::routes())
        .merge(relations::routes())
        .merge(receipts::routes())
        .merge(directory::routes())
        .merge(crate::sync::routes())
        .merge(crate::sliding_sync::routes())
        .merge(user_data::routes())
        .merge(notifications::routes())
        .merge(pushers::routes())
        .merge(push_rules::routes())
        .merge(presence::routes())
        .merge(key_backup::routes())
        .merge(keys::routes())
        .merge(cross_signing::routes())
        .merge(media::routes())
        .merge(media_async::routes())
        .merge(url_preview::routes())
        .merge(profile::routes())
        .merge(openid::routes())
        .merge(user_directory::routes())
        .merge(voip::routes())
        .merge(threepid::routes())
        .merge(reports::routes())
        .merge(admin::routes())
        .merge(room_summary::routes())
        .merge(room_upgrade::routes())
        .merge(search::routes())
        .merge(spaces::routes())
}
