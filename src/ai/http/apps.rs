//! Apps at `/_matrixos/apps/<user>/<slug>/`, for their owner only.
//!
//! An app is HTML its owner's AI wrote, served from the client API's
//! origin, so it is fenced in twice. Its Content-Security-Policy lets it
//! reach nothing but its own data API, and sandboxes it (`sandbox
//! allow-scripts allow-forms`): the page gets an opaque origin even when
//! opened directly, so its scripts cannot read another page's storage or
//! DOM on this origin. And it never holds its owner's access token: the
//! page gets `window.MatrixOS.readData/writeData`, a bridge to
//! `/_matrixos/app-data/<user>/<slug>/<key>` (see `app_data.rs`) carrying a
//! capability for this app alone. A page opened with `?access_token=` (a
//! navigation cannot send a header) is redirected to the same address with
//! the capability instead, so the token leaves the address bar before any
//! of the app's scripts can read it.
//!
//! A person's browser following such a link with no token (from Element,
//! say) gets the desktop's sign-in page instead of a JSON error, and then
//! the app, opened with its capability (`app_links.rs`); someone else's
//! browser gets a refusal page (`crate::desktop`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use matrixos_kernel::tools::blocking;
use ruma::OwnedUserId;

use super::app_token::{
    app_token, check_names, is_app_token, owner_of, require_owner, APP_TOKEN_PARAM,
};
use crate::error::{Error, Result};
use crate::http::auth::token_in_query;
use crate::http::extract::MaybeAuth;
use crate::services::Services;

type S = State<Arc<Services>>;

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

/// The desktop's look for every app: readable type, themed controls,
/// light and dark, a layout that fits a phone. Every rule has zero
/// specificity (`:where`), so an app's own styles always win.
const APP_THEME: &str = include_str!("app_theme.css");

/// What goes first in an app page's head: the theme, and a viewport for
/// phones unless the page sets one.
fn page_head(html: &str) -> String {
    let viewport = if html.contains("name=\"viewport\"") || html.contains("name=viewport") {
        ""
    } else {
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    };
    format!("{viewport}<style>{APP_THEME}</style>")
}

fn with_headers(mut response: Response, csp: &str) -> Response {
    crate::http::page_headers::fence(response.headers_mut(), csp, "no-store");
    response
}

/// The page may load only inline code and data URLs, talk only to its own
/// data API, and runs sandboxed in an opaque origin.
fn csp(data_api: &str) -> String {
    format!(
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
         img-src data: blob:; font-src data:; media-src data: blob:; connect-src {data_api}; \
         base-uri 'none'; form-action 'none'; sandbox allow-scripts allow-forms"
    )
}

pub async fn page(
    State(s): S,
    caller: Result<MaybeAuth, Error>,
    headers: HeaderMap,
    uri: Uri,
    Path((user, slug)): Path<(String, String)>,
) -> Result<Response> {
    let result = match caller {
        Ok(caller) => {
            serve(
                &s,
                AppRequest::new(&caller, &headers, &uri, &user, &slug),
                "index.html",
            )
            .await
        }
        Err(e) => Err(e),
    };
    for_people(&headers, result)
}

pub async fn file(
    State(s): S,
    caller: Result<MaybeAuth, Error>,
    headers: HeaderMap,
    uri: Uri,
    Path((user, slug, file)): Path<(String, String, String)>,
) -> Result<Response> {
    let file = if file.is_empty() { "index.html" } else { &file };
    let result = match caller {
        Ok(caller) => {
            serve(
                &s,
                AppRequest::new(&caller, &headers, &uri, &user, &slug),
                file,
            )
            .await
        }
        Err(e) => Err(e),
    };
    for_people(&headers, result)
}

/// A person's browser that followed a link gets a page instead of a
/// Matrix error: the desktop's sign-in page when it brought no token (it
/// signs in, fetches the app's capability with the token in a header and
/// opens the app with that), a refusal when the token is someone else's.
/// API clients keep their JSON errors.
fn for_people(headers: &HeaderMap, result: Result<Response>) -> Result<Response> {
    match result {
        Err(e) if crate::desktop::wants_page(headers) => Ok(crate::desktop::page_for(&e)),
        other => other,
    }
}

/// A request for one of an app's files.
struct AppRequest<'a> {
    caller: &'a MaybeAuth,
    headers: &'a HeaderMap,
    uri: &'a Uri,
    user: &'a str,
    slug: &'a str,
}

impl<'a> AppRequest<'a> {
    fn new(
        caller: &'a MaybeAuth,
        headers: &'a HeaderMap,
        uri: &'a Uri,
        user: &'a str,
        slug: &'a str,
    ) -> Self {
        Self {
            caller,
            headers,
            uri,
            user,
            slug,
        }
    }
}

/// Who may see the page, or where to send a request that put the owner's
/// access token in the address.
enum Access {
    Owner(OwnedUserId),
    Relocate(String),
}

/// The app's capability in the query, or the owner's access token. An
/// access token in the address is never answered with the page.
fn access(s: &Services, r: &AppRequest<'_>) -> Result<Access> {
    let query = r.uri.query().unwrap_or("");
    let capability = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == APP_TOKEN_PARAM)
        .map(|(_, v)| v.into_owned());
    let owner = match capability {
        Some(given) if is_app_token(s, r.user, r.slug, &given)? => owner_of(s, r.user)?,
        Some(_) => return Err(Error::unknown_token()),
        None => require_owner(s, r.caller, r.user)?,
    };
    if token_in_query(r.uri).is_some() {
        let token = app_token(s, r.user, r.slug)?;
        let location = format!("{}?{APP_TOKEN_PARAM}={token}", r.uri.path());
        return Ok(Access::Relocate(location));
    }
    Ok(Access::Owner(owner))
}

fn relocate(location: &str) -> Result<Response> {
    let location =
        HeaderValue::from_str(location).map_err(|e| Error::internal(format!("location: {e}")))?;
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location);
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn serve(s: &Services, r: AppRequest<'_>, file: &str) -> Result<Response> {
    check_names(s, r.user, r.slug)?;
    let owner = match access(s, &r)? {
        Access::Owner(owner) => owner,
        Access::Relocate(location) => return relocate(&location),
    };
    let home = s.ai.home(&owner).await?;
    let path = format!("apps/{}/{file}", r.slug);
    let bytes = blocking(&home, move |h| {
        let full = h.resolve(&path)?;
        if !full.is_file() {
            return Err(matrixos_kernel::home::HomeError::NotFound(path));
        }
        Ok(std::fs::read(full)?)
    })
    .await
    .map_err(|_| Error::not_found("No such app or file"))?;
    let data_api = format!(
        "{}/_matrixos/app-data/{}/{}/",
        origin(s, r.headers),
        r.user,
        r.slug
    );
    let body = if file == "index.html" {
        let script = bridge_script(r.user, r.slug, &app_token(s, r.user, r.slug)?);
        let html = String::from_utf8_lossy(&bytes);
        let head = format!("{}{script}", page_head(&html));
        match html.find("<head>") {
            Some(i) => format!("{}{head}{}", &html[..i + 6], &html[i + 6..]),
            None => format!("{head}{html}"),
        }
        .into_bytes()
    } else {
        bytes
    };
    let response = ([(header::CONTENT_TYPE, content_type(file))], body).into_response();
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
