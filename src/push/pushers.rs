//! Pushers (`/pushers`): where to send a user's notifications when they are
//! away, registered by their apps. Only `http` pushers (a push gateway such
//! as Sygnal) are offered.

use std::collections::HashSet;

use matrixos_storage::tables::PUSHERS;
use matrixos_storage::typed::Parts;
use matrixos_storage::{Batch, Db};
use parking_lot::RwLock;
use ruma::{DeviceId, OwnedUserId, UserId};
use serde_json::Value;

use crate::error::{Error, Result};

/// The path every push gateway serves.
pub const NOTIFY_PATH: &str = "/_matrix/push/v1/notify";

pub use matrixos_storage::records::Pusher;

fn user_prefix(user: &UserId) -> Vec<u8> {
    Parts::prefix(&[user.as_str()])
}

fn key(user: &UserId, app_id: &str, pushkey: &str) -> [String; 3] {
    [user.to_string(), app_id.to_owned(), pushkey.to_owned()]
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
        for item in PUSHERS.scan_prefix(db, b"") {
            let (parts, _) = item?;
            if let Some(Ok(user)) = parts.first().map(UserId::parse) {
                users.insert(user);
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
        for item in PUSHERS.scan_prefix(db, &prefix) {
            out.push(item?.1);
        }
        Ok(out)
    }

    /// Adds the change to `batch`. Setting a pusher without `append` takes
    /// its app id and pushkey away from every other user.
    pub fn apply(&self, db: &Db, batch: &mut Batch, user: &UserId, change: Change) -> Result<()> {
        match change {
            Change::Delete { app_id, pushkey } => {
                PUSHERS.delete(batch, &key(user, &app_id, &pushkey));
            }
            Change::Set { pusher, append } => {
                if !append {
                    for item in PUSHERS.scan_prefix(db, b"") {
                        let (parts, other) = item?;
                        if other.app_id == pusher.app_id
                            && other.pushkey == pusher.pushkey
                            && parts.first().map(String::as_str) != Some(user.as_str())
                        {
                            PUSHERS.delete(batch, &parts);
                        }
                    }
                }
                PUSHERS.put(batch, &key(user, &pusher.app_id, &pusher.pushkey), &pusher);
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
                PUSHERS.delete(batch, &key(user, &pusher.app_id, &pusher.pushkey));
            }
        }
        Ok(())
    }

    /// Removes a pusher a gateway rejected.
    pub fn delete_into(&self, batch: &mut Batch, user: &UserId, app_id: &str, pushkey: &str) {
        PUSHERS.delete(batch, &key(user, app_id, pushkey));
    }
}
