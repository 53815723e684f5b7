//! Users through Synapse's admin API: the list (`/v2/users`), one user
//! (`/v2/users/{id}`), deactivation, a password reset and the admin flag.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use http::StatusCode;
use ruma::{OwnedUserId, UserId};
use serde_json::{json, Value};

use super::params::{page_of, sort_rows, Params, SortKey};
use super::Admin;
use crate::error::{Error, Result};
use crate::http::extract::{opt_bool, req_str, JsonBody};
use crate::services::accounts::UserRecord;
use crate::services::Services;

type S = State<Arc<Services>>;

/// Synapse's default page of users.
const DEFAULT_LIMIT: usize = 100;

/// What `/v2/users` sorts by (`order_by`), the default first.
const ORDERS: [&str; 12] = [
    "name",
    "is_guest",
    "admin",
    "user_type",
    "deactivated",
    "shadow_banned",
    "displayname",
    "avatar_url",
    "creation_ts",
    "last_seen_ts",
    "locked",
    "approved",
];

/// A user id from the path; 400 `M_INVALID_PARAM` when it is not one.
fn parse_user(raw: &str) -> Result<OwnedUserId> {
    UserId::parse(raw).map_err(|_| Error::invalid_param(format!("Invalid user id: {raw}")))
}

/// A user of this server named in the path: 400 with Synapse's
/// `not_local` for another server's user, 404 for one that does not exist.
fn local_user(s: &Services, raw: &str, not_local: &str) -> Result<(OwnedUserId, UserRecord)> {
    let user = parse_user(raw)?;
    if !s.accounts.is_local(&user) {
        return Err(Error::new(StatusCode::BAD_REQUEST, "M_UNKNOWN", not_local));
    }
    let record = s
        .accounts
        .get(&user)?
        .ok_or_else(|| Error::not_found("User not found"))?;
    Ok((user, record))
}

/// An account with what the listing shows of it.
struct Row {
    user: OwnedUserId,
    record: UserRecord,
    last_seen_ts: Option<u64>,
}

impl Row {
    fn of(s: &Services, user: OwnedUserId, record: UserRecord) -> Result<Self> {
        let last_seen_ts = s
            .accounts
            .devices(&user)?
            .into_iter()
            .filter_map(|(_, d)| d.last_seen_ts)
            .max();
        Ok(Self {
            user,
            record,
            last_seen_ts,
        })
    }

    /// Synapse's user types: the AI users this server runs are its bots.
    fn user_type(&self) -> Option<&'static str> {
        crate::ai::is_ai_user(&self.user).then_some("bot")
    }

    /// The fields both the listing and the details show.
    fn common(&self) -> Value {
        let r = &self.record;
        json!({
            "name": self.user,
            "user_type": self.user_type(),
            "is_guest": r.guest,
            "admin": r.admin,
            "deactivated": r.deactivated,
            "shadow_banned": false,
            "displayname": r.displayname,
            "avatar_url": r.avatar_url,
            "last_seen_ts": self.last_seen_ts,
            "locked": false,
            "approved": true,
            "erased": r.erased_at.is_some(),
        })
    }

    /// As `/v2/users` lists it (creation time in milliseconds).
    fn listed(&self) -> Value {
        let mut out = self.common();
        out["creation_ts"] = json!(self.record.created_ms);
        out
    }

    /// As `/v2/users/{id}` shows it (creation time in seconds, as Synapse
    /// stores it; no third-party ids or external ids are kept here).
    fn details(&self) -> Value {
        let mut out = self.common();
        let extra = json!({
            "creation_ts": self.record.created_ms / 1000,
            "threepids": [],
            "external_ids": [],
            "appservice_id": null,
            "consent_server_notice_sent": null,
            "consent_version": null,
            "consent_ts": null,
            "suspended": false,
        });
        if let (Some(out), Value::Object(extra)) = (out.as_object_mut(), extra) {
            out.extend(extra);
        }
        out
    }

    fn sort_key(&self, order: &str) -> Option<SortKey> {
        let r = &self.record;
        Some(match order {
            "is_guest" => r.guest.into(),
            "admin" => r.admin.into(),
            "user_type" => self.user_type()?.into(),
            "deactivated" => r.deactivated.into(),
            "shadow_banned" | "locked" => false.into(),
            "approved" => true.into(),
            "displayname" => r.displayname.as_deref()?.into(),
            "avatar_url" => r.avatar_url.as_deref()?.into(),
            "creation_ts" => r.created_ms.into(),
            "last_seen_ts" => self.last_seen_ts?.into(),
            _ => self.user.as_str().into(),
        })
    }
}

/// What `/v2/users` filters by.
struct Filter {
    name: Option<String>,
    user_id: Option<String>,
    guests: bool,
    deactivated: bool,
    admins: Option<bool>,
}

impl Filter {
    fn from(q: &Params) -> Result<Self> {
        Ok(Self {
            name: q.str("name").map(str::to_lowercase),
            user_id: q.str("user_id").map(str::to_lowercase),
            guests: q.bool("guests")?.unwrap_or(true),
            deactivated: q.bool("deactivated")?.unwrap_or(false),
            admins: q.bool("admins")?,
        })
    }

    fn keeps(&self, row: &Row) -> bool {
        let r = &row.record;
        let named = match (&self.name, &self.user_id) {
            // `name` is the localpart or the display name; with it,
            // `user_id` is ignored.
            (Some(name), _) => {
                row.user.localpart().to_lowercase().contains(name)
                    || r.displayname
                        .as_deref()
                        .is_some_and(|d| d.to_lowercase().contains(name))
            }
            (None, Some(id)) => row.user.as_str().to_lowercase().contains(id),
            (None, None) => true,
        };
        named
            && (self.guests || !r.guest)
            && (self.deactivated || !r.deactivated)
            && self.admins.is_none_or(|a| a == r.admin)
    }
}

/// `GET /_synapse/admin/v2/users`: this server's users, filtered, sorted
/// and in pages (`next_token` while more remain).
pub async fn list(
    State(s): S,
    Admin(_): Admin,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>> {
    let q = Params(query);
    let (from, limit) = q.page(DEFAULT_LIMIT)?;
    let order = q.one_of("order_by", &ORDERS)?;
    let backwards = q.backwards()?;
    let filter = Filter::from(&q)?;
    let mut rows = Vec::new();
    for user in s.accounts.all_users()? {
        let Some(record) = s.accounts.get(&user)? else {
            continue;
        };
        let row = Row::of(&s, user, record)?;
        if filter.keeps(&row) {
            rows.push(row);
        }
    }
    sort_rows(
        &mut rows,
        |r| r.sort_key(order),
        |r| r.user.to_string(),
        true,
        backwards,
    );
    let (users, more) = page_of(&rows, from, limit, Row::listed);
    let mut answer = json!({ "users": users, "total": rows.len() });
    if more {
        answer["next_token"] = json!((from + limit).to_string());
    }
    Ok(Json(answer))
}

/// `GET /_synapse/admin/v2/users/{user_id}`: one of this server's users.
pub async fn query(State(s): S, Admin(_): Admin, Path(user): Path<String>) -> Result<Json<Value>> {
    let (user, record) = local_user(&s, &user, "Can only look up local users")?;
    Ok(Json(Row::of(&s, user, record)?.details()))
}

/// `POST /_synapse/admin/v1/deactivate/{user_id}` (`{"erase": bool}`):
/// the same deactivation as the user's own.
pub async fn deactivate(
    State(s): S,
    Admin(admin): Admin,
    Path(user): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let (user, _) = local_user(&s, &user, "Can only deactivate local users")?;
    let erase = match body.get("erase") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(erase)) => *erase,
        Some(_) => return Err(Error::bad_json("Param 'erase' must be a boolean, if given")),
    };
    crate::client::account::deactivate_account(&s, &user, erase).await?;
    tracing::info!(user = %user, admin = %admin.user_id, erase, "account deactivated by an admin");
    // No third-party ids are kept here, so none failed to unbind.
    Ok(Json(json!({ "id_server_unbind_result": "success" })))
}

/// `POST /_synapse/admin/v1/reset_password/{user_id}`
/// (`{"new_password", "logout_devices": true}`): the new password, and
/// with `logout_devices` every device logged out (but the admin's own,
/// when they reset their own password).
pub async fn reset_password(
    State(s): S,
    Admin(admin): Admin,
    Path(user): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let user = parse_user(&user)?;
    let password = req_str(&body, "new_password")?;
    let logout_devices = opt_bool(&body, "logout_devices")?.unwrap_or(true);
    if !s.accounts.is_local(&user) || !s.accounts.exists(&user)? {
        return Err(Error::not_found("User not found"));
    }
    if password.len() > 512 {
        return Err(Error::invalid_param("Password too long"));
    }
    s.accounts.set_password(&user, password).await?;
    if logout_devices {
        let devices: Vec<_> = s
            .accounts
            .device_ids(&user)?
            .into_iter()
            .filter(|d| user != admin.user_id || *d != admin.device_id)
            .collect();
        crate::client::devices::delete_devices(&s, &user, &devices).await?;
    }
    tracing::info!(user = %user, admin = %admin.user_id, "password reset by an admin");
    Ok(Json(json!({})))
}

const ONLY_LOCAL_ADMINS: &str = "Only local users can be admins of this homeserver";

/// `GET /_synapse/admin/v1/users/{user_id}/admin`: `{"admin": bool}`.
pub async fn get_admin(
    State(s): S,
    Admin(_): Admin,
    Path(user): Path<String>,
) -> Result<Json<Value>> {
    let (_, record) = local_user(&s, &user, ONLY_LOCAL_ADMINS)?;
    Ok(Json(json!({ "admin": record.admin })))
}

/// `PUT /_synapse/admin/v1/users/{user_id}/admin` (`{"admin": bool}`):
/// grants or revokes server admin; nobody demotes themselves.
pub async fn set_admin(
    State(s): S,
    Admin(admin): Admin,
    Path(user): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let (user, _) = local_user(&s, &user, ONLY_LOCAL_ADMINS)?;
    let make_admin = match body.get("admin") {
        None => return Err(Error::missing_param("Missing params: ['admin']")),
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Error::bad_json("'admin' must be a boolean")),
    };
    if user == admin.user_id && !make_admin {
        return Err(Error::new(
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "You may not demote yourself.",
        ));
    }
    s.accounts.set_admin(&user, make_admin).await?;
    tracing::info!(user = %user, admin = %admin.user_id, make_admin, "server admin flag set");
    Ok(Json(json!({})))
}
