//! `GET /pushers` and `POST /pushers/set`.

use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use matrixos_storage::Batch;
use serde_json::{json, Value};

use crate::error::Result;
use crate::http::extract::{Auth, JsonBody};
use crate::push::pushers::parse_change;
use crate::services::Services;
use crate::services::Wake;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route(&super::v3("/pushers"), get(list))
        .route(&super::v3("/pushers/set"), post(set))
}

type S = State<Arc<Services>>;

pub async fn list(State(s): S, Auth(caller): Auth) -> Result<Json<Value>> {
    let pushers: Vec<Value> = s
        .push
        .pushers
        .list(&s.store.db, &caller.user_id)?
        .iter()
        .map(|p| p.client_json())
        .collect();
    Ok(Json(json!({ "pushers": pushers })))
}

pub async fn set(State(s): S, Auth(caller): Auth, JsonBody(body): JsonBody) -> Result<Json<Value>> {
    let now_s = crate::services::accounts::now_ms() / 1000;
    let change = parse_change(&body, &caller.device_id, now_s)?;
    let mut batch = Batch::new();
    s.push
        .pushers
        .apply(&s.store.db, &mut batch, &caller.user_id, change)?;
    s.store.commit(batch, vec![], Wake::none()).await?;
    Ok(Json(json!({})))
}
