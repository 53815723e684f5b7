//! Reports of events, rooms and users (`/rooms/{id}/report[/{eventId}]`,
//! `/users/{id}/report`), kept for admins, who read those of rooms and
//! events at Synapse's `/_synapse/admin/v1/event_reports`; and
//! `/admin/whois`, a user's devices and where they were last seen.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use matrixos_storage::records::ReportRecord;
use ruma::api::client::admin::get_user_info;
use ruma::api::client::reporting::report_user;
use ruma::api::client::room::{report_content, report_room};
use ruma::{MilliSecondsSinceUnixEpoch, UserId};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::http::extract::Auth;
use crate::services::accounts::now_ms;
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .endpoint(report_event)
        .endpoint(report_whole_room)
        .endpoint(report_user)
        .reading(whois)
        .route("/_synapse/admin/v1/event_reports", get(event_reports))
}

/// A report by `reporter`, received now, of nothing yet: the caller names
/// the room, event or user.
fn report_by(reporter: &UserId, reason: Option<String>) -> ReportRecord {
    ReportRecord {
        room_id: None,
        reported_user: None,
        event_id: None,
        user_id: reporter.to_string(),
        reason,
        received_ts: now_ms(),
    }
}

/// An event the reporter can see in a room they are joined to (else 404:
/// whether it exists is not told).
async fn report_event(
    s: Arc<Services>,
    req: Ruma<report_content::v3::Request>,
) -> Result<report_content::v3::Response> {
    let (caller, b) = (&req.caller, &req.body);
    // Every report is kept: as many as the sender may send messages.
    s.send_limiter.check(&caller.user_id)?;
    let not_found = || {
        Error::not_found("Unable to report event: it does not exist or you aren't able to see it")
    };
    if !s.rooms.is_joined(&caller.user_id, &b.room_id)? {
        return Err(not_found());
    }
    let reader = s
        .rooms
        .reader(&caller.user_id, &b.room_id)
        .map_err(|_| not_found())?;
    let (short, pdu) = s.rooms.pdu(&b.event_id)?.ok_or_else(not_found)?;
    if !reader.can_see(short, &pdu)? {
        return Err(not_found());
    }
    s.reports
        .add(ReportRecord {
            room_id: Some(b.room_id.to_string()),
            event_id: Some(b.event_id.to_string()),
            ..report_by(&caller.user_id, b.reason.clone())
        })
        .await?;
    Ok(report_content::v3::Response::new())
}

/// A room this server knows (else 404).
async fn report_whole_room(
    s: Arc<Services>,
    req: Ruma<report_room::v3::Request>,
) -> Result<report_room::v3::Response> {
    let (caller, b) = (&req.caller, &req.body);
    s.send_limiter.check(&caller.user_id)?;
    if s.rooms.short_room(&b.room_id)?.is_none() {
        return Err(Error::not_found("Room not found"));
    }
    s.reports
        .add(ReportRecord {
            room_id: Some(b.room_id.to_string()),
            ..report_by(&caller.user_id, Some(b.reason.clone()))
        })
        .await?;
    Ok(report_room::v3::Response::new())
}

/// A user of this server who exists, or of another server (whose
/// existence this server cannot tell); else 404.
async fn report_user(
    s: Arc<Services>,
    req: Ruma<report_user::v3::Request>,
) -> Result<report_user::v3::Response> {
    let (caller, b) = (&req.caller, &req.body);
    s.send_limiter.check(&caller.user_id)?;
    if s.accounts.is_local(&b.user_id) && !s.accounts.exists(&b.user_id)? {
        return Err(Error::not_found("User not found"));
    }
    s.reports
        .add(ReportRecord {
            reported_user: Some(b.user_id.to_string()),
            ..report_by(&caller.user_id, Some(b.reason.clone()))
        })
        .await?;
    Ok(report_user::v3::Response::new())
}

#[derive(Deserialize)]
struct ReportsPage {
    #[serde(default)]
    from: usize,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

/// Admins only: the reports of rooms and events, newest first, `limit` from offset `from`.
async fn event_reports(
    State(s): State<Arc<Services>>,
    Auth(caller): Auth,
    Query(page): Query<ReportsPage>,
) -> Result<Json<Value>> {
    s.accounts.require_admin(&caller.user_id)?;
    // Reports of users are kept but not listed here (Synapse's listing is
    // of rooms and events).
    let all: Vec<_> = s
        .reports
        .all()?
        .into_iter()
        .filter(|(_, r)| r.room_id.is_some())
        .collect();
    let total = all.len();
    let limit = page.limit.min(1000);
    let reports: Vec<Value> = all
        .into_iter()
        .skip(page.from)
        .take(limit)
        .map(|(id, r)| {
            json!({
                "id": id, "received_ts": r.received_ts, "room_id": r.room_id,
                "event_id": r.event_id, "user_id": r.user_id, "reason": r.reason,
            })
        })
        .collect();
    let mut answer = json!({ "event_reports": reports, "total": total });
    if page.from + limit < total {
        answer["next_token"] = json!(page.from + limit);
    }
    Ok(Json(answer))
}

/// A user's devices with where they were last seen: admins for anyone,
/// everyone for themselves.
fn whois(
    s: Arc<Services>,
    req: Ruma<get_user_info::v3::Request>,
) -> Result<get_user_info::v3::Response> {
    let user = &req.body.user_id;
    if *user != req.caller.user_id {
        s.accounts.require_admin(&req.caller.user_id)?;
    }
    let mut devices = BTreeMap::new();
    for (id, record) in s.accounts.devices(user)? {
        let mut connection = get_user_info::v3::ConnectionInfo::new();
        connection.ip = record.last_seen_ip;
        connection.last_seen = record
            .last_seen_ts
            .and_then(|ts| ruma::UInt::new(ts).map(MilliSecondsSinceUnixEpoch));
        let mut session = get_user_info::v3::SessionInfo::new();
        session.connections = vec![connection];
        let mut device = get_user_info::v3::DeviceInfo::new();
        device.sessions = vec![session];
        devices.insert(id.to_string(), device);
    }
    let mut response = get_user_info::v3::Response::new();
    response.user_id = Some(user.clone());
    response.devices = devices;
    Ok(response)
}
