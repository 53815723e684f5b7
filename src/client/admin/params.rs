//! Query parameters as Synapse's admin API reads them: offsets and limits,
//! booleans spelled `true`/`false`, one of a set of values, and a
//! direction; anything else is 400 `M_INVALID_PARAM`.

use std::cmp::Ordering;

use crate::error::{Error, Result};
use crate::http::extract::query_param;

/// The most entries one page of a listing holds, whatever the limit asked.
pub const MAX_LIMIT: usize = 1000;

/// A request's query, by name.
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn str(&self, name: &str) -> Option<&str> {
        query_param(&self.0, name)
    }

    /// A non-negative integer (`from`, `limit`), `default` when absent.
    pub fn count(&self, name: &str, default: usize) -> Result<usize> {
        match self.str(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                Error::invalid_param(format!(
                    "Query parameter {name} must be a string representing a positive integer."
                ))
            }),
        }
    }

    /// The page's offset and size (`from`, `limit`), the size bounded.
    pub fn page(&self, default_limit: usize) -> Result<(usize, usize)> {
        let from = self.count("from", 0)?;
        let limit = self.count("limit", default_limit)?.min(MAX_LIMIT);
        Ok((from, limit))
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>> {
        match self.str(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(Error::invalid_param(format!(
                "Boolean query parameter '{name}' must be one of ['true', 'false']"
            ))),
        }
    }

    /// One of `allowed` (the first when absent).
    pub fn one_of<'a>(&self, name: &str, allowed: &[&'a str]) -> Result<&'a str> {
        match self.str(name) {
            None => Ok(allowed[0]),
            Some(v) => allowed.iter().find(|a| **a == v).copied().ok_or_else(|| {
                Error::invalid_param(format!(
                    "Query parameter '{name}' must be one of [{}]",
                    allowed.join(", ")
                ))
            }),
        }
    }

    /// Whether `dir` asks for the reverse order (`b`).
    pub fn backwards(&self) -> Result<bool> {
        Ok(self.one_of("dir", &["f", "b"])? == "b")
    }
}

/// Sorts `rows` by `key` (absent values last, as SQL's `NULLS LAST`),
/// ascending or not, ties broken by `tie` ascending; reversed with `dir=b`.
pub fn sort_rows<T, K: Ord>(
    rows: &mut [T],
    key: impl Fn(&T) -> Option<K>,
    tie: impl Fn(&T) -> String,
    ascending: bool,
    backwards: bool,
) {
    let ascending = ascending != backwards;
    rows.sort_by(|a, b| {
        let by_key = match (key(a), key(b)) {
            (Some(x), Some(y)) if ascending => x.cmp(&y),
            (Some(x), Some(y)) => y.cmp(&x),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        by_key.then_with(|| tie(a).cmp(&tie(b)))
    });
}

/// A value a listing sorts by: a number (booleans as 0 and 1) or a text.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
pub enum SortKey {
    Num(u64),
    Text(String),
}

impl From<bool> for SortKey {
    fn from(b: bool) -> Self {
        SortKey::Num(b.into())
    }
}

impl From<u64> for SortKey {
    fn from(n: u64) -> Self {
        SortKey::Num(n)
    }
}

impl From<&str> for SortKey {
    fn from(s: &str) -> Self {
        SortKey::Text(s.to_owned())
    }
}

/// The rows from `from`, at most `limit`, as JSON, and whether more
/// remain after them.
pub fn page_of<T>(
    rows: &[T],
    from: usize,
    limit: usize,
    to_json: impl Fn(&T) -> serde_json::Value,
) -> (Vec<serde_json::Value>, bool) {
    let page = rows.iter().skip(from).take(limit).map(to_json).collect();
    (page, from.saturating_add(limit) < rows.len())
}
