//! The caller's own git home, for the web desktop's file browser and
//! editor, under `/_matrixos/v1/files`:
//!
//! - `GET  /files` lists every file (directories end in `/`);
//! - `GET  /files/content?path=` reads one;
//! - `PUT  /files/content?path=` `{content}` saves one of the person's
//!   settings files (SOUL, profiles, privacy policy), `privacy.json`
//!   validated first;
//! - `GET  /files/history?path=` lists the commits that changed a file;
//! - `GET  /files/diff?path=&rev=` shows what one commit did to it;
//! - `POST /files/restore` `{path, rev}` puts it back as it was.
//!
//! Every path goes through the kernel's `Home` functions, which refuse any
//! path leaving the home (`..`, absolute paths, `.git`, symbolic links);
//! nothing here joins a caller's string onto a directory itself. The home
//! is always the caller's own.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use matrixos_kernel::home::{Home, HomeError, HomeResult};
use matrixos_kernel::privacy::PrivacyPolicy;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::http::extract::{Auth, JsonBody};
use crate::services::Services;

type S = State<Arc<Services>>;

/// Files listed at most.
const MAX_LISTED: usize = 5000;
/// Commits listed at most per file.
const MAX_HISTORY: usize = 100;
/// The longest diff returned.
const MAX_DIFF_CHARS: usize = 64 * 1024;

/// The files the desktop's editor may save: what the person says about
/// themselves and their AI, and who may see what.
pub const EDITABLE: &[&str] = &[
    "system/soul.md",
    "system/profile.md",
    "system/ai-profile.md",
    "system/privacy.json",
];

#[derive(Deserialize)]
pub struct PathQuery {
    path: String,
    rev: Option<String>,
}

/// Runs `op` on the caller's home off the async threads, keeping the
/// kernel's error kinds (a missing file is a 404, a refused path a 400).
async fn with_home<T: Send + 'static>(
    s: &Services,
    caller: &Auth,
    op: impl FnOnce(&Home) -> HomeResult<T> + Send + 'static,
) -> Result<T> {
    let home = s.ai.home(&caller.0.user_id).await?;
    tokio::task::spawn_blocking(move || op(&home))
        .await
        .map_err(|e| Error::internal(format!("home operation stopped: {e}")))?
        .map_err(home_error)
}

fn home_error(e: HomeError) -> Error {
    match e {
        HomeError::NotFound(what) => Error::not_found(format!("{what} does not exist")),
        HomeError::InvalidPath(path) => {
            Error::invalid_param(format!("{path:?} is not a path in your home"))
        }
        HomeError::Invalid(why) => Error::invalid_param(why),
        other => Error::internal(other.to_string()),
    }
}

/// A commit id as `git log` shows it: only hex, so that a revision cannot
/// be a revspec naming some other object.
fn check_rev(rev: &str) -> Result<()> {
    if (4..=40).contains(&rev.len()) && rev.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(Error::invalid_param("rev must be a commit id"))
    }
}

fn clean(path: &str) -> String {
    path.trim().trim_start_matches("./").to_owned()
}

pub async fn list(State(s): S, caller: Auth) -> Result<Json<Value>> {
    let files = with_home(&s, &caller, |h| h.list("", MAX_LISTED)).await?;
    Ok(Json(json!({ "files": files, "editable": EDITABLE })))
}

pub async fn read(State(s): S, caller: Auth, Query(q): Query<PathQuery>) -> Result<Json<Value>> {
    let path = clean(&q.path);
    let rel = path.clone();
    let content = with_home(&s, &caller, move |h| h.read(&rel)).await?;
    Ok(Json(json!({
        "path": path,
        "content": content,
        "editable": EDITABLE.contains(&path.as_str()),
    })))
}

/// Why a privacy policy would not be used as written, if it would not.
pub fn privacy_problem(text: &str) -> Option<String> {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Some(format!("privacy.json is not JSON: {e}")),
    };
    if !value.is_object() {
        return Some("privacy.json must be a JSON object".into());
    }
    serde_json::from_value::<PrivacyPolicy>(value)
        .err()
        .map(|e| format!("privacy.json does not fit the policy format: {e}"))
}

pub async fn write(
    State(s): S,
    caller: Auth,
    Query(q): Query<PathQuery>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let path = clean(&q.path);
    if !EDITABLE.contains(&path.as_str()) {
        return Err(Error::forbidden(format!(
            "Only {} can be edited here",
            EDITABLE.join(", ")
        )));
    }
    let content = body["content"]
        .as_str()
        .ok_or_else(|| Error::bad_json("content must be a string"))?
        .to_owned();
    if path.ends_with("privacy.json") {
        if let Some(problem) = privacy_problem(&content) {
            return Err(Error::invalid_param(problem));
        }
    }
    let message = format!("Edit {path} in the desktop");
    let rel = path.clone();
    let commit = with_home(&s, &caller, move |h| h.write(&rel, &content, &message)).await?;
    Ok(Json(json!({ "path": path, "commit": commit })))
}

pub async fn history(State(s): S, caller: Auth, Query(q): Query<PathQuery>) -> Result<Json<Value>> {
    let path = clean(&q.path);
    let rel = path.clone();
    let commits = with_home(&s, &caller, move |h| h.log(Some(&rel), MAX_HISTORY)).await?;
    let commits: Vec<Value> = commits
        .into_iter()
        .map(|c| json!({ "id": c.id, "time": c.time, "message": c.message }))
        .collect();
    Ok(Json(json!({ "path": path, "commits": commits })))
}

pub async fn diff(State(s): S, caller: Auth, Query(q): Query<PathQuery>) -> Result<Json<Value>> {
    let path = clean(&q.path);
    let rev = q
        .rev
        .ok_or_else(|| Error::invalid_param("rev is required"))?;
    check_rev(&rev)?;
    let rel = path.clone();
    let diff = with_home(&s, &caller, move |h| {
        h.diff(Some(&rev), Some(&rel), MAX_DIFF_CHARS)
    })
    .await?;
    Ok(Json(json!({ "path": path, "diff": diff })))
}

pub async fn restore(State(s): S, caller: Auth, JsonBody(body): JsonBody) -> Result<Json<Value>> {
    let path = clean(
        body["path"]
            .as_str()
            .ok_or_else(|| Error::bad_json("path must be a string"))?,
    );
    let rev = body["rev"]
        .as_str()
        .ok_or_else(|| Error::bad_json("rev must be a string"))?
        .to_owned();
    check_rev(&rev)?;
    let rel = path.clone();
    let commit = with_home(&s, &caller, move |h| h.restore(&rel, &rev)).await?;
    Ok(Json(json!({ "path": path, "commit": commit })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privacy_is_checked_before_saving() {
        assert!(privacy_problem(r#"{"accept_invites_from":"owner","groups":{}}"#).is_none());
        assert!(privacy_problem("{not json").is_some());
        assert!(privacy_problem("[1]").is_some());
        assert!(privacy_problem(r#"{"accept_invites_from":"everyone"}"#).is_some());
        assert!(privacy_problem(r#"{"groups":{"friends":{"members":"bob"}}}"#).is_some());
    }

    #[test]
    fn revisions_are_commit_ids() {
        assert!(check_rev("0123abcd").is_ok());
        assert!(check_rev("HEAD").is_err());
        assert!(check_rev("abcd:../x").is_err());
        assert!(check_rev("ab").is_err());
    }
}
