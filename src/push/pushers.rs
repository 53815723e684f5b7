//! Pushers (`/pushers`): where to send a user's notifications when they are
//! away, registered by their apps. Only `http` pushers (a push gateway such
//! as Sygnal) are offered.

use std::collections::HashSet;

use matrixos_storage::{keys, Batch, Db, Table};
use parking_lot::RwLock;
use ruma::{DeviceId, OwnedUserId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// The path every push gateway serves.
pub const NOTIFY_PATH: &str = "/_matrix/push/v1/notify";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pusher {
    pub app_id: String,
    pub pushkey: String,
    pub kind: String,
    pub app_display_name: String,
    pub device_display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_tag: Option<String>,
    pub lang: String,
    pub data: Value,
    /// When the pushkey was set, in seconds.
    #[serde(default)]
    pub pushkey_ts: u64,
    /// The device that registered it: the pusher goes when the device goes.
    #[serde(default)]
    pub device_id: String,
}

impl Pusher {
    /// The gateway URL of an `http` pusher.
    pub fn url(&self) -> Option<&str> {
        self.data.get("url").and_then(Value::as_str)
    }

    /// Whether the gateway wants only ids, not contents.
    pub fn event_id_only(&self) -> bool {
        self.data.get("format").and_then(Value::as_str) == Some("event_id_only")
    }

    /// What `GET /pushers` shows (no device id).
    pub fn client_json(&self) -> Value {
        let mut out = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(obj) = out.as_object_mut() {
            obj.remove("device_id");
            obj.remove("pushkey_ts");
        }
        out
    }
}

fn user_prefix(user: &UserId) -> Vec<u8> {
    keys::prefix(&[user.as_bytes()])
}

fn key(user: &UserId, app_id: &str, pushkey: &str) -> Vec<u8> {
    keys::join(&[user.as_bytes(), app_id.as_bytes(), pushkey.as_bytes()])
}

fn str_field<'a>(body: &'a Value, field: &str, max: usize) -> Result<&'a str> {
    let value = body
        .get(field)
        .ok_or_else(|| Error::missing_param(format!("Missing '{field}'")))?
        .as_str()
        .ok_or_else(|| Error::bad_json(format!("'{field}' must be a string")))?;
    if value.len() > max {
        return Err(Error::invalid_param(format!("'{field}' is too long")));
    }
    Ok(value)
}

/// What `POST /pushers/set` asks for.
pub enum Change {
    Set { pusher: Pusher, append: bool },
    Delete { app_id: String, pushkey: String },
}

/// Reads and checks a `/pushers/set` body.
pub fn parse_change(body: &Value, device: &DeviceId, now_s: u64) -> Result<Change> {
    let app_id = str_field(body, "app_id", 64)?.to_owned();
    let pushkey = str_field(body, "pushkey", 512)?.to_owned();
    let kind = match body.get("kind") {
        Some(Value::Null) => return Ok(Change::Delete { app_id, pushkey }),
        Some(Value::String(k)) => k.clone(),
        Some(_) => return Err(Error::bad_json("'kind' must be a string or null")),
        None => return Err(Error::missing_param("Missing 'kind'")),
    };
    if kind != "http" {
        return Err(Error::invalid_param("Only http pushers are supported"));
    }
    let data = body
        .get("data")
        .filter(|d| d.is_object())
        .cloned()
        .ok_or_else(|| Error::missing_param("Missing 'data'"))?;
    let url = data
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::missing_param("An http pusher needs data.url"))?;
    let parsed = url::Url::parse(url).map_err(|_| Error::invalid_param("data.url is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.path() != NOTIFY_PATH {
        return Err(Error::invalid_param(format!(
            "data.url must be an http(s) URL ending in {NOTIFY_PATH}"
        )));
    }
    let append = match body.get("append") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Error::bad_json("'append' must be a boolean")),
    };
    let profile_tag = match body.get("profile_tag") {
        None | Some(Value::Null) => None,
        Some(_) => Some(str_field(body, "profile_tag", 256)?.to_owned()),
    };
    Ok(Change::Set {
        pusher: Pusher {
            app_id,
            pushkey,
            kind,
            app_display_name: str_field(body, "app_display_name", 256)?.to_owned(),
            device_display_name: str_field(body, "device_display_name", 256)?.to_owned(),
            profile_tag,
            lang: str_field(body, "lang", 64)?.to_owned(),
            data,
            pushkey_ts: now_s,
            device_id: device.to_string(),
        },
        append,
    })
}

/// The stored pushers, and which users may have one (so that events for
/// everyone else never touch the table).
pub struct Pushers {
    with_pushers: RwLock<HashSet<OwnedUserId>>,
}

impl Pushers {
    /// Reads who has pushers.
    pub fn load(db: &Db) -> Result<Self> {
        let mut users = HashSet::new();
        for item in db.scan_prefix(Table::Pushers, b"") {
            let (k, _) = item?;
            if let Some(user) = keys::split(&k).first() {
                if let Ok(user) = UserId::parse(String::from_utf8_lossy(user).as_ref()) {
                    users.insert(user);
                }
            }
        }
        Ok(Self {
            with_pushers: RwLock::new(users),
        })
    }

    pub fn may_have(&self, user: &UserId) -> bool {
        self.with_pushers.read().contains(user)
    }

    pub fn list(&self, db: &Db, user: &UserId) -> Result<Vec<Pusher>> {
        let prefix = user_prefix(user);
        let mut out = Vec::new();
        for item in db.scan_prefix(Table::Pushers, &prefix) {
            let (_, v) = item?;
            out.push(serde_json::from_slice(&v)?);
        }
        Ok(out)
    }

    /// Adds the change to `batch`. Setting a pusher without `append` takes
    /// its app id and pushkey away from every other user.
    pub fn apply(&self, db: &Db, batch: &mut Batch, user: &UserId, change: Change) -> Result<()> {
        match change {
            Change::Delete { app_id, pushkey } => {
                batch.delete(Table::Pushers, key(user, &app_id, &pushkey));
            }
            Change::Set { pusher, append } => {
                if !append {
                    for item in db.scan_prefix(Table::Pushers, b"") {
                        let (k, v) = item?;
                        let other: Pusher = serde_json::from_slice(&v)?;
                        if other.app_id == pusher.app_id
                            && other.pushkey == pusher.pushkey
                            && !k.starts_with(&user_prefix(user))
                        {
                            batch.delete(Table::Pushers, k.to_vec());
                        }
                    }
                }
                batch.put(
                    Table::Pushers,
                    key(user, &pusher.app_id, &pusher.pushkey),
                    serde_json::to_vec(&pusher)?,
                );
                self.with_pushers.write().insert(user.to_owned());
            }
        }
        Ok(())
    }

    /// Adds to `batch` the removal of the pushers the devices registered.
    pub fn delete_for_devices_into(
        &self,
        db: &Db,
        batch: &mut Batch,
        user: &UserId,
        devices: &[ruma::OwnedDeviceId],
    ) -> Result<()> {
        for pusher in self.list(db, user)? {
            if devices.iter().any(|d| d.as_str() == pusher.device_id) {
                batch.delete(Table::Pushers, key(user, &pusher.app_id, &pusher.pushkey));
            }
        }
        Ok(())
    }

    /// Removes a pusher a gateway rejected.
    pub fn delete_into(&self, batch: &mut Batch, user: &UserId, app_id: &str, pushkey: &str) {
        batch.delete(Table::Pushers, key(user, app_id, pushkey));
    }
}
