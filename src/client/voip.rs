//! `/voip/turnServer`: the TURN servers calls may relay through, from the
//! `[turn]` config; `{}` when there are none (as Synapse answers).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use hmac::{Hmac, Mac};
use ruma::api::client::voip::get_turn_server_info;
use ruma::api::path_builder::PathBuilder;
use ruma::api::Metadata;
use serde_json::{json, Value};

use crate::config::TurnConfig;
use crate::error::{Error, Result};
use crate::http::endpoint::Ruma;
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    get_turn_server_info::v3::Request::PATH_BUILDER
        .all_paths()
        .fold(Router::new(), |router, path| {
            router.route(path, get(turn_server))
        })
}

/// Credentials for `user` from the config, at `now`; `None` without TURN.
fn credentials(turn: &TurnConfig, user: &str, now: Duration) -> Result<Option<Value>> {
    if turn.uris.is_empty() {
        return Ok(None);
    }
    let ttl = turn.user_lifetime_secs;
    let (username, password) = match (&turn.shared_secret, &turn.username, &turn.password) {
        // The TURN REST API: "expiry:user", HMAC-SHA1 of it, base64.
        (Some(secret), _, _) => {
            let username = format!("{}:{user}", now.as_secs() + ttl);
            let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret.as_bytes())
                .map_err(|e| Error::internal(format!("TURN secret: {e}")))?;
            mac.update(username.as_bytes());
            let password =
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            (username, password)
        }
        (None, Some(username), Some(password)) => (username.clone(), password.clone()),
        _ => return Ok(None),
    };
    Ok(Some(json!({
        "username": username, "password": password, "uris": turn.uris, "ttl": ttl,
    })))
}

async fn turn_server(
    State(s): State<Arc<Services>>,
    req: Ruma<get_turn_server_info::v3::Request>,
) -> Result<Json<Value>> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let answer = credentials(&s.config.turn, req.caller.user_id.as_str(), now)?;
    Ok(Json(answer.unwrap_or_else(|| json!({}))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_secret_credentials_follow_the_turn_rest_api() {
        let turn = TurnConfig {
            uris: vec!["turn:turn.example.org?transport=udp".into()],
            shared_secret: Some("s3cret".into()),
            ..TurnConfig::default()
        };
        let answer = credentials(&turn, "@a:x", Duration::from_secs(1_000))
            .unwrap()
            .unwrap();
        assert_eq!(answer["username"], "87400:@a:x");
        assert_eq!(answer["ttl"], 86_400);
        // HMAC-SHA1("s3cret", "87400:@a:x"), base64 (computed with openssl).
        assert_eq!(answer["password"], EXPECTED_PASSWORD);
        assert!(credentials(&TurnConfig::default(), "@a:x", Duration::ZERO)
            .unwrap()
            .is_none());
    }

    const EXPECTED_PASSWORD: &str = "V3pFzcvuRTnVzb3Pg5H+BkJqaGc=";
}
