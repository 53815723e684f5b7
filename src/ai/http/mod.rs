//! Matrix OS's own endpoints: apps, the usage ledger, AI administration.

mod admin;
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
            get(apps::read_data).put(apps::write_data),
        )
        .route("/_matrixos/v1/usage", get(usage::usage))
        .route(
            "/_matrixos/admin/v1/ai/{user_id}",
            get(admin::get_ai).put(admin::set_ai),
        )
}
