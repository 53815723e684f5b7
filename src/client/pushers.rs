//! `GET /pushers` and `POST /pushers/set`.

use std::sync::Arc;

use axum::Router;
use matrixos_storage::Batch;
use ruma::api::client::push::{get_pushers, set_pusher, Pusher};

use crate::error::Result;
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::push::pushers::parse_change;
use crate::services::Services;
use crate::services::Wake;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new().endpoint(list).endpoint(set)
}

async fn list(
    s: Arc<Services>,
    req: Ruma<get_pushers::v3::Request>,
) -> Result<get_pushers::v3::Response> {
    let pushers = s
        .push
        .pushers
        .list(&s.store.db, &req.caller.user_id)?
        .iter()
        .map(|p| serde_json::from_value::<Pusher>(p.client_json()))
        .collect::<serde_json::Result<_>>()?;
    Ok(get_pushers::v3::Response::new(pushers))
}

/// The pusher service checks what ruma parsed (limits, the gateway URL) on
/// the request as ruma writes it back.
async fn set(
    s: Arc<Services>,
    req: Ruma<set_pusher::v3::Request>,
) -> Result<set_pusher::v3::Response> {
    let caller = req.caller;
    let now_s = crate::services::accounts::now_ms() / 1000;
    let body = serde_json::to_value(&req.body.action)?;
    let change = parse_change(&body, &caller.device_id, now_s)?;
    let mut batch = Batch::new();
    s.push
        .pushers
        .apply(&s.store.db, &mut batch, &caller.user_id, change)?;
    s.store.commit(batch, vec![], Wake::none()).await?;
    Ok(set_pusher::v3::Response::new())
}
