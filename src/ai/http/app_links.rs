//! The addresses a person's apps open at, for clients holding the owner's
//! access token in a header (the web desktop, the sign-in page of an app
//! link): `GET /_matrixos/v1/apps` lists the caller's apps, and
//! `GET /_matrixos/v1/apps/<user>/<slug>/open` gives one app's address
//! with its capability. Navigations then carry the capability, good for
//! that one app, and never the access token.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use matrixos_kernel::tools::{blocking, installed_apps};
use serde_json::{json, Value};

use super::app_token::{app_token, check_names, owner_of, APP_TOKEN_PARAM};
use crate::error::{Error, Result};
use crate::http::extract::Auth;
use crate::services::Services;

type S = State<Arc<Services>>;

/// Apps listed at most.
const MAX_APPS: usize = 500;

/// An app's page address, capability included.
fn app_url(s: &Services, user: &str, slug: &str) -> Result<String> {
    let token = app_token(s, user, slug)?;
    Ok(format!(
        "/_matrixos/apps/{user}/{slug}/?{APP_TOKEN_PARAM}={token}"
    ))
}

pub async fn list(State(s): S, Auth(caller): Auth) -> Result<Json<Value>> {
    let user = caller.user_id.localpart().to_owned();
    let home = s.ai.home(&caller.user_id).await?;
    let found = blocking(&home, |h| installed_apps(h, MAX_APPS))
        .await
        .map_err(Error::internal)?;
    let mut apps = Vec::with_capacity(found.len());
    for (slug, manifest) in found {
        let text = |key: &str| manifest[key].as_str().unwrap_or_default().to_owned();
        let name = Some(text("name"))
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| slug.clone());
        let url = app_url(&s, &user, &slug)?;
        apps.push(json!({
            "slug": slug,
            "name": name,
            "description": text("description"),
            "url": url,
        }));
    }
    Ok(Json(json!({ "apps": apps })))
}

pub async fn open(
    State(s): S,
    Auth(caller): Auth,
    Path((user, slug)): Path<(String, String)>,
) -> Result<Json<Value>> {
    check_names(&s, &user, &slug)?;
    let owner = owner_of(&s, &user)?;
    if caller.user_id != owner {
        return Err(Error::forbidden("Apps are only shown to their owner"));
    }
    let home = s.ai.home(&owner).await?;
    let index = format!("apps/{slug}/index.html");
    let exists = blocking(&home, move |h| Ok(h.resolve(&index)?.is_file()))
        .await
        .map_err(Error::internal)?;
    if !exists {
        return Err(Error::not_found("No such app"));
    }
    Ok(Json(json!({
        "url": app_url(&s, &user, &slug)?,
        "app_token": app_token(&s, &user, &slug)?,
    })))
}
