//! Matrix OS's own endpoints: apps and their links, the home's files, the
//! usage ledger, AI administration.

mod admin;
mod app_data;
mod app_links;
mod app_token;
mod apps;
mod files;
mod usage;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::services::Services;

pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route("/_matrixos/apps/{user}/{slug}/", get(apps::page))
        .route("/_matrixos/apps/{user}/{slug}/{*file}", get(apps::file))
        .route(
            "/_matrixos/app-data/{user}/{slug}/{key}",
            get(app_data::read_data).put(app_data::write_data),
        )
        .route("/_matrixos/v1/apps", get(app_links::list))
        .route(
            "/_matrixos/v1/apps/{user}/{slug}/open",
            get(app_links::open),
        )
        .route("/_matrixos/v1/files", get(files::list))
        .route(
            "/_matrixos/v1/files/content",
            get(files::read).put(files::write),
        )
        .route("/_matrixos/v1/files/history", get(files::history))
        .route("/_matrixos/v1/files/diff", get(files::diff))
        .route("/_matrixos/v1/files/restore", post(files::restore))
        .route("/_matrixos/v1/usage", get(usage::usage))
        .route("/_matrixos/v1/ai/live", get(crate::ai::live::stream))
        .route(
            "/_matrixos/admin/v1/ai/{user_id}",
            get(admin::get_ai).put(admin::set_ai),
        )
}
