//! `GET/PUT /_matrixos/admin/v1/ai/{userId}`: a server admin switches one
//! person's AI user off or on.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use ruma::UserId;
use serde_json::{json, Value};

use crate::ai::{provision, records};
use crate::error::{Error, Result};
use crate::http::extract::{Auth, JsonBody};
use crate::services::Services;

type S = State<Arc<Services>>;

fn owner(s: &Services, user: &str) -> Result<ruma::OwnedUserId> {
    let owner = UserId::parse(user).map_err(|_| Error::invalid_param("Invalid user id"))?;
    if !s.accounts.is_local(&owner) || !s.accounts.exists(&owner)? {
        return Err(Error::not_found("No such local user"));
    }
    Ok(owner)
}

pub async fn get_ai(
    State(s): S,
    Auth(caller): Auth,
    Path(user): Path<String>,
) -> Result<Json<Value>> {
    s.accounts.require_admin(&caller.user_id)?;
    let owner = owner(&s, &user)?;
    let ai = provision::ai_user_of(&s, &owner)?;
    let record = records::get(&s.store.db, &ai)?
        .ok_or_else(|| Error::not_found("This user has no AI user"))?;
    Ok(Json(json!({
        "ai_user_id": ai,
        "enabled": record.enabled && s.ai.enabled(),
        "dm_room": record.dm_room,
    })))
}

pub async fn set_ai(
    State(s): S,
    Auth(caller): Auth,
    Path(user): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    s.accounts.require_admin(&caller.user_id)?;
    let owner = owner(&s, &user)?;
    let enabled = body["enabled"]
        .as_bool()
        .ok_or_else(|| Error::bad_json("enabled (a boolean) is required"))?;
    provision::set_enabled(&s, &owner, enabled).await?;
    tracing::info!(owner = %owner, enabled, admin = %caller.user_id, "AI user switched");
    Ok(Json(json!({ "enabled": enabled })))
}
