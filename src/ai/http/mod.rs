//! Matrix OS's own endpoints: apps, the usage ledger, AI administration.

mod admin;
mod app_data;
mod app_token;
mod apps;
mod usage;

use std::sync::Arc;

use axum::routing::get;
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
        .route("/_matrixos/v1/usage", get(usage::usage))
        .route(
            "/_matrixos/admin/v1/ai/{user_id}",
            get(admin::get_ai).put(admin::set_ai),
        )
}
