//! `GET /_matrixos/v1/usage`: the owner's AI runs, totalled per day, per
//! room and per model, and listed one by one (newest first).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use matrixos_kernel::RunRecord;
use serde::Serialize;
use serde_json::{json, Value};

use crate::ai::records;
use crate::error::{Error, Result};
use crate::http::extract::Auth;
use crate::services::Services;

/// Runs listed individually in one answer.
const MAX_LISTED: usize = 200;
/// Runs read to build the totals.
const MAX_SCANNED: usize = 100_000;

#[derive(Default, Serialize)]
struct Totals {
    runs: u64,
    errors: u64,
    tokens_in: u64,
    tokens_out: u64,
    cost_usd: f64,
    tool_calls: u64,
}

impl Totals {
    fn add(&mut self, r: &RunRecord) {
        self.runs += 1;
        self.errors += u64::from(r.error.is_some());
        self.tokens_in += r.tokens_in;
        self.tokens_out += r.tokens_out;
        self.cost_usd += r.cost_usd;
        self.tool_calls += r.tools.len() as u64;
    }
}

/// Totals per room or per model, the costliest first, each with its key
/// under `name`.
fn grouped(groups: BTreeMap<&str, Totals>, name: &str) -> Vec<Value> {
    let mut groups: Vec<(&str, Totals)> = groups.into_iter().collect();
    groups.sort_by(|a, b| {
        b.1.cost_usd
            .total_cmp(&a.1.cost_usd)
            .then(b.1.runs.cmp(&a.1.runs))
    });
    groups
        .into_iter()
        .map(|(key, t)| {
            let mut v = serde_json::to_value(t).unwrap_or_default();
            v[name] = json!(key);
            v
        })
        .collect()
}

pub async fn usage(
    State(s): State<Arc<Services>>,
    Auth(caller): Auth,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<Value>> {
    let days: i64 = match q.iter().find(|(k, _)| k == "days") {
        Some((_, v)) => v
            .parse()
            .ok()
            .filter(|d| (1..=3650).contains(d))
            .ok_or_else(|| Error::invalid_param("days must be 1 to 3650"))?,
        None => 30,
    };
    let since = chrono::Utc::now().timestamp_millis() - days * 86_400_000;
    let owner = caller.user_id.to_string();
    let db = s.clone();
    let runs = tokio::task::spawn_blocking(move || {
        records::runs(&db.store.db, &owner, since, MAX_SCANNED)
    })
    .await
    .map_err(|e| Error::internal(e.to_string()))??;
    let mut totals = Totals::default();
    let mut per_day: BTreeMap<String, Totals> = BTreeMap::new();
    let mut per_room: BTreeMap<&str, Totals> = BTreeMap::new();
    let mut per_model: BTreeMap<&str, Totals> = BTreeMap::new();
    for run in &runs {
        totals.add(run);
        per_room.entry(&run.room).or_default().add(run);
        per_model.entry(&run.model).or_default().add(run);
        let day = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(run.started_ms)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        per_day.entry(day).or_default().add(run);
    }
    let days: Vec<Value> = per_day
        .into_iter()
        .rev()
        .map(|(date, t)| {
            let mut v = serde_json::to_value(t).unwrap_or_default();
            v["date"] = json!(date);
            v
        })
        .collect();
    let per_room = grouped(per_room, "room");
    let per_model = grouped(per_model, "model");
    Ok(Json(json!({
        "user_id": caller.user_id,
        "totals": totals,
        "days": days,
        "per_room": per_room,
        "per_model": per_model,
        "runs": runs.iter().take(MAX_LISTED).collect::<Vec<_>>(),
    })))
}
