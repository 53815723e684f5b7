//! Apps at `/_matrixos/apps/<user>/<slug>/`, for their owner only, under a
//! Content-Security-Policy that lets the page reach nothing but its own
//! data API. The page gets `window.MatrixOS.readData/writeData`, which talk
//! to `/_matrixos/app-data/<user>/<slug>/<key>` with a token good for that
//! app's data alone (`data/<slug>/<key>.json` in the home, each write a
//! commit).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use matrixos_kernel::tools::{blocking, is_valid_slug};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::http::extract::MaybeAuth;
use crate::services::Services;

type S = State<Arc<Services>>;

const APP_TOKEN_HEADER: &str = "x-matrixos-app-token";
const MAX_DATA_BYTES: usize = 256 * 1024;

/// The token that lets one app read and write its own data.
fn app_token(s: &Services, user: &str, slug: &str) -> String {
    let secret = s.signing_key.to_pkcs8();
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(&secret).expect("HMAC takes any key length");
    mac.update(b"matrixos app data\0");
    mac.update(user.as_bytes());
    mac.update(b"\0");
    mac.update(slug.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Only valid localparts and slugs reach the file system.
fn check_names(s: &Services, user: &str, slug: &str) -> Result<()> {
    let user_ok = s.accounts.user_id(user).is_ok() && !user.contains(['/', '\'', '\\']);
    if !user_ok || !is_valid_slug(slug) {
        return Err(Error::not_found("No such app"));
    }
    Ok(())
}

/// The owner of `/apps/<user>/` must be the caller.
fn require_owner(s: &Services, caller: &MaybeAuth, user: &str) -> Result<ruma::OwnedUserId> {
    let caller = caller.0.as_ref().ok_or_else(Error::missing_token)?;
    let owner = s
        .accounts
        .user_id(user)
        .map_err(|_| Error::not_found("No such app"))?;
    if caller.user_id != owner {
        return Err(Error::forbidden("Apps are only shown to their owner"));
    }
    Ok(owner)
}

fn origin(s: &Services, headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or(if s.config.base_url().starts_with("https") {
            "https"
        } else {
            "http"
        });
    match host {
        Some(host) if !host.contains(['/', ' ', ';', '\'']) => format!("{proto}://{host}"),
        _ => s.config.base_url().trim_end_matches('/').to_owned(),
    }
}

fn bridge_script(user: &str, slug: &str, token: &str) -> String {
    format!(
        "<script>window.MatrixOS=(function(){{\
const base='/_matrixos/app-data/{user}/{slug}/';const token='{token}';\
async function call(method,key,value){{\
const r=await fetch(base+encodeURIComponent(key),{{method,headers:{{'X-MatrixOS-App-Token':token,'Content-Type':'application/json'}},\
body:value===undefined?undefined:JSON.stringify(value)}});\
if(r.status===404)return null;if(!r.ok)throw new Error('MatrixOS data: HTTP '+r.status);\
return method==='GET'?r.json():undefined;}}\
return{{app:'{slug}',readData:key=>call('GET',key),writeData:(key,value)=>call('PUT',key,value)}};}})();</script>"
    )
}

fn with_headers(mut response: Response, csp: &str) -> Response {
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn csp(data_api: &str) -> String {
    format!(
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
         img-src data: blob:; font-src data:; media-src data: blob:; connect-src {data_api}; \
         base-uri 'none'; form-action 'none'"
    )
}

pub async fn page(
    State(s): S,
    caller: MaybeAuth,
    headers: HeaderMap,
    Path((user, slug)): Path<(String, String)>,
) -> Result<Response> {
    serve(&s, &caller, &headers, &user, &slug, "index.html").await
}

pub async fn file(
    State(s): S,
    caller: MaybeAuth,
    headers: HeaderMap,
    Path((user, slug, file)): Path<(String, String, String)>,
) -> Result<Response> {
    serve(
        &s,
        &caller,
        &headers,
        &user,
        &slug,
        if file.is_empty() { "index.html" } else { &file },
    )
    .await
}

async fn serve(
    s: &Services,
    caller: &MaybeAuth,
    headers: &HeaderMap,
    user: &str,
    slug: &str,
    file: &str,
) -> Result<Response> {
    check_names(s, user, slug)?;
    let owner = require_owner(s, caller, user)?;
    let home = s.ai.home(&owner, &s.config.data_dir).await?;
    let path = format!("apps/{slug}/{file}");
    let bytes = blocking(&home, move |h| {
        let full = h.resolve(&path)?;
        if !full.is_file() {
            return Err(matrixos_kernel::home::HomeError::NotFound(path));
        }
        Ok(std::fs::read(full)?)
    })
    .await
    .map_err(|_| Error::not_found("No such app or file"))?;
    let data_api = format!("{}/_matrixos/app-data/{user}/{slug}/", origin(s, headers));
    let content_type = content_type(file);
    let body = if file == "index.html" {
        let script = bridge_script(user, slug, &app_token(s, user, slug));
        let html = String::from_utf8_lossy(&bytes);
        match html.find("<head>") {
            Some(i) => format!("{}{script}{}", &html[..i + 6], &html[i + 6..]),
            None => format!("{script}{html}"),
        }
        .into_bytes()
    } else {
        bytes
    };
    let response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    Ok(with_headers(response, &csp(&data_api)))
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

/// The app token (or the owner's own access token) for this app's data.
fn require_data_access(
    s: &Services,
    caller: &MaybeAuth,
    headers: &HeaderMap,
    user: &str,
    slug: &str,
    key: &str,
) -> Result<ruma::OwnedUserId> {
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
    if let Some(token) = headers.get(APP_TOKEN_HEADER).and_then(|h| h.to_str().ok()) {
        let expected = app_token(s, user, slug);
        if token.len() == expected.len()
            && token
                .bytes()
                .zip(expected.bytes())
                .fold(0, |acc, (a, b)| acc | (a ^ b))
                == 0
        {
            return s
                .accounts
                .user_id(user)
                .map_err(|_| Error::not_found("No such app"));
        }
        return Err(Error::unknown_token());
    }
    require_owner(s, caller, user)
}

pub async fn read_data(
    State(s): S,
    caller: MaybeAuth,
    headers: HeaderMap,
    Path((user, slug, key)): Path<(String, String, String)>,
) -> Result<Response> {
    let owner = require_data_access(&s, &caller, &headers, &user, &slug, &key)?;
    let home = s.ai.home(&owner, &s.config.data_dir).await?;
    let path = format!("data/{slug}/{key}.json");
    let text = blocking(&home, move |h| h.read(&path))
        .await
        .map_err(|_| Error::not_found("No data under this key"))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

pub async fn write_data(
    State(s): S,
    caller: MaybeAuth,
    headers: HeaderMap,
    Path((user, slug, key)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response> {
    let owner = require_data_access(&s, &caller, &headers, &user, &slug, &key)?;
    if body.len() > MAX_DATA_BYTES {
        return Err(Error::too_large("App data is limited to 256 KiB per key"));
    }
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| Error::not_json(format!("Content not JSON: {e}")))?;
    let home = s.ai.home(&owner, &s.config.data_dir).await?;
    let path = format!("data/{slug}/{key}.json");
    let message = format!("App {slug}: save {key}");
    let text = serde_json::to_string_pretty(&value)? + "\n";
    blocking(&home, move |h| h.write(&path, &text, &message))
        .await
        .map_err(Error::internal)?;
    Ok((StatusCode::OK, axum::Json(serde_json::json!({}))).into_response())
}
