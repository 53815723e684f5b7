//! An app's data API, `/_matrixos/app-data/<user>/<slug>/<key>`: what the
//! page's `window.MatrixOS.readData/writeData` bridge calls, stored as
//! `data/<slug>/<key>.json` in the owner's home, each write a commit.
//!
//! The page is sandboxed (an opaque origin), so the bridge's fetches are
//! cross-origin requests with `Origin: null`: the server's CORS layer
//! answers them (any origin, no credentials), and what authenticates them is
//! the app's capability in a header, which opens this app's data and
//! nothing else. The owner's access token works too, but only in the
//! `Authorization` header: a token in a URL ends up in logs and history.

use std::sync::Arc;

use crate::http::body_guard::RawBody;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, StatusCode};
use matrixos_kernel::tools::blocking;
use ruma::OwnedUserId;
use serde_json::Value;

use super::app_token::{check_names, is_app_token, owner_of, APP_TOKEN_HEADER};
use crate::error::{Error, Result};
use crate::http::auth::bearer_token;
use crate::services::Services;

type S = State<Arc<Services>>;

/// The most one key holds, as sent and as stored.
const MAX_DATA_BYTES: usize = 256 * 1024;

/// The app's capability, or the owner's access token in a header.
fn data_access(
    s: &Services,
    headers: &HeaderMap,
    user: &str,
    slug: &str,
    key: &str,
) -> Result<OwnedUserId> {
    check_names(s, user, slug)?;
    let key_ok = (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !key_ok {
        return Err(Error::invalid_param(
            "Data keys are 1-64 letters, digits, - or _",
        ));
    }
    if let Some(token) = headers.get(APP_TOKEN_HEADER) {
        let token = token.to_str().map_err(|_| Error::unknown_token())?;
        if !is_app_token(s, user, slug, token)? {
            return Err(Error::unknown_token());
        }
        return owner_of(s, user);
    }
    let token = bearer_token(headers)?.ok_or_else(|| {
        Error::new(
            StatusCode::UNAUTHORIZED,
            "M_MISSING_TOKEN",
            "The app data API takes its token in a header",
        )
    })?;
    let caller = s.accounts.authenticate(&token)?;
    let owner = owner_of(s, user)?;
    if caller.user_id != owner {
        return Err(Error::forbidden("App data is only open to its owner"));
    }
    Ok(owner)
}

pub async fn read_data(
    State(s): S,
    headers: HeaderMap,
    Path((user, slug, key)): Path<(String, String, String)>,
) -> Result<Response> {
    let owner = data_access(&s, &headers, &user, &slug, &key)?;
    let home = s.ai.home(&owner).await?;
    let path = format!("data/{slug}/{key}.json");
    let text = blocking(&home, move |h| h.read(&path))
        .await
        .map_err(|_| Error::not_found("No data under this key"))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

pub async fn write_data(
    State(s): S,
    headers: HeaderMap,
    Path((user, slug, key)): Path<(String, String, String)>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let owner = data_access(&s, &headers, &user, &slug, &key)?;
    if body.len() > MAX_DATA_BYTES {
        return Err(too_large());
    }
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| Error::not_json(format!("Content not JSON: {e}")))?;
    let text = stored_text(&value)?;
    let home = s.ai.home(&owner).await?;
    let path = format!("data/{slug}/{key}.json");
    let message = format!("App {slug}: save {key}");
    blocking(&home, move |h| h.write(&path, &text, &message))
        .await
        .map_err(Error::internal)?;
    Ok((StatusCode::OK, axum::Json(serde_json::json!({}))).into_response())
}

/// The file a value is stored as: indented for people reading the home,
/// compact when indenting would take it past the limit. Re-serialised JSON
/// can be longer than what was sent (indentation, `1e2` written `100.0`),
/// so the limit is checked again here, on what is written.
fn stored_text(value: &Value) -> Result<String> {
    let pretty = serde_json::to_string_pretty(value)? + "\n";
    if pretty.len() <= MAX_DATA_BYTES {
        return Ok(pretty);
    }
    let compact = serde_json::to_string(value)? + "\n";
    if compact.len() <= MAX_DATA_BYTES {
        return Ok(compact);
    }
    Err(too_large())
}

fn too_large() -> Error {
    Error::too_large("App data is limited to 256 KiB per key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_is_indented_compact_or_refused() {
        let small = serde_json::json!({ "a": [1, 2] });
        assert!(stored_text(&small).expect("small").contains("\n  "));
        // 60,000 numbers: 120 KB compact, 300 KB indented.
        let wide = Value::Array(vec![serde_json::json!(1); 60_000]);
        let text = stored_text(&wide).expect("wide");
        assert!(text.len() <= MAX_DATA_BYTES && !text.contains("\n  "));
        // `1e2` is three bytes sent and five stored.
        let grows: Value =
            serde_json::from_str(&format!("[{}1e2]", "1e2,".repeat(60_000))).expect("json");
        let refused = stored_text(&grows).expect_err("over the limit once stored");
        assert_eq!(refused.errcode, "M_TOO_LARGE");
    }
}
