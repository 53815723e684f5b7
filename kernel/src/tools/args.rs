//! Reading tool arguments and running home operations off the async
//! threads.

use std::sync::Arc;

use serde_json::Value;

use crate::home::{Home, HomeResult};

pub fn required<'a>(input: &'a Value, name: &str) -> Result<&'a str, String> {
    input[name]
        .as_str()
        .ok_or_else(|| format!("The argument {name} (a string) is missing."))
}

pub fn optional<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input[name].as_str().filter(|s| !s.is_empty())
}

pub fn limit(input: &Value, default: usize, max: usize) -> usize {
    input["limit"]
        .as_u64()
        .map_or(default, |n| (n as usize).clamp(1, max))
}

/// Runs a git or file operation on a blocking thread.
pub async fn blocking<T: Send + 'static>(
    home: &Arc<Home>,
    op: impl FnOnce(&Home) -> HomeResult<T> + Send + 'static,
) -> Result<T, String> {
    let home = home.clone();
    tokio::task::spawn_blocking(move || op(&home))
        .await
        .map_err(|e| format!("the operation stopped: {e}"))?
        .map_err(|e| e.to_string())
}

/// "Committed as abc1234." or "Nothing changed."
pub fn committed(commit: Option<String>) -> String {
    match commit {
        Some(id) => format!("Committed as {}.", &id[..id.len().min(10)]),
        None => "Nothing changed.".into(),
    }
}
