//! Server-side key backup (`/room_keys`): versions of a user's backup, each
//! with its algorithm and public auth data, and the encrypted room keys the
//! user's clients upload into the current one. The server never sees a key
//! in the clear; it only keeps the better of two copies of a session.

use matrixos_storage::{keys, Batch, Direction, Table};
use ruma::UserId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Store;
use crate::error::{Error, Result};
use crate::services::Wake;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct VersionRecord {
    algorithm: String,
    auth_data: Value,
    /// Changes whenever the version's keys change.
    etag: u64,
    #[serde(default)]
    deleted: bool,
}

/// One backup version as clients see it.
pub struct BackupVersion {
    pub version: u64,
    pub algorithm: String,
    pub auth_data: Value,
    pub etag: u64,
}

/// Which keys an operation covers: all, one room's, or one session's.
pub enum Scope<'a> {
    All,
    Room(&'a str),
    Session(&'a str, &'a str),
}

/// A key upload: room id, session id, `KeyBackupData`.
pub type KeyUpload = (String, String, Value);

pub struct KeyBackup {
    store: Store,
    /// Serialises writes, so an etag or a key comparison is never lost.
    writes: tokio::sync::Mutex<()>,
}

fn version_prefix(user: &UserId) -> Vec<u8> {
    keys::prefix(&[user.as_bytes()])
}

fn version_key(user: &UserId, version: u64) -> Vec<u8> {
    let mut key = version_prefix(user);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

fn scope_prefix(user: &UserId, version: u64, scope: &Scope<'_>) -> Vec<u8> {
    let mut key = version_key(user, version);
    match scope {
        Scope::All => {}
        Scope::Room(room) => key.extend_from_slice(&keys::prefix(&[room.as_bytes()])),
        Scope::Session(room, session) => {
            key.extend_from_slice(&keys::join(&[room.as_bytes(), session.as_bytes()]))
        }
    }
    key
}

fn put_record(
    batch: &mut Batch,
    user: &UserId,
    version: u64,
    record: &VersionRecord,
) -> Result<()> {
    batch.put(
        Table::BackupVersions,
        version_key(user, version),
        serde_json::to_vec(record)?,
    );
    Ok(())
}

/// Checks the shape of a `KeyBackupData`.
pub fn check_key_data(data: &Value) -> Result<()> {
    let ok = data.get("first_message_index").is_some_and(Value::is_u64)
        && data.get("forwarded_count").is_some_and(Value::is_u64)
        && data.get("is_verified").is_some_and(Value::is_boolean)
        && data.get("session_data").is_some_and(Value::is_object);
    if ok {
        Ok(())
    } else {
        Err(Error::bad_json(
            "Key data needs first_message_index, forwarded_count, is_verified and session_data",
        ))
    }
}

/// Whether an uploaded copy of a session replaces the stored one: a
/// verified copy beats an unverified one, then the one that decrypts from
/// an earlier message, then the one forwarded fewer times.
fn replaces(new: &Value, old: &Value) -> bool {
    let verified = |v: &Value| v["is_verified"].as_bool().unwrap_or(false);
    let index = |v: &Value| v["first_message_index"].as_u64().unwrap_or(u64::MAX);
    let forwarded = |v: &Value| v["forwarded_count"].as_u64().unwrap_or(u64::MAX);
    if verified(new) != verified(old) {
        return verified(new);
    }
    (index(new), forwarded(new)) < (index(old), forwarded(old))
}

impl KeyBackup {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            writes: tokio::sync::Mutex::new(()),
        }
    }

    fn record(&self, user: &UserId, version: u64) -> Result<Option<VersionRecord>> {
        match self
            .store
            .db
            .get(Table::BackupVersions, &version_key(user, version))?
        {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// The newest version ever made (deleted or not) and its record.
    fn newest(&self, user: &UserId) -> Result<Option<(u64, VersionRecord)>> {
        let prefix = version_prefix(user);
        let mut start = prefix.clone();
        start.extend_from_slice(&u64::MAX.to_be_bytes());
        let newest = self
            .store
            .db
            .scan_from(Table::BackupVersions, &prefix, &start, Direction::Backward)
            .next();
        match newest {
            Some(item) => {
                let (k, v) = item?;
                let version = keys::read_u64(&k[prefix.len()..])
                    .ok_or_else(|| Error::internal("corrupt backup version key"))?;
                Ok(Some((version, serde_json::from_slice(&v)?)))
            }
            None => Ok(None),
        }
    }

    /// The current version: the newest one, unless it was deleted.
    fn current(&self, user: &UserId) -> Result<Option<u64>> {
        Ok(self
            .newest(user)?
            .filter(|(_, r)| !r.deleted)
            .map(|(v, _)| v))
    }

    pub async fn create(&self, user: &UserId, algorithm: &str, auth_data: Value) -> Result<u64> {
        let _guard = self.writes.lock().await;
        let version = self.newest(user)?.map_or(1, |(v, _)| v + 1);
        let record = VersionRecord {
            algorithm: algorithm.to_owned(),
            auth_data,
            etag: 0,
            deleted: false,
        };
        let mut batch = Batch::new();
        put_record(&mut batch, user, version, &record)?;
        self.store.commit(batch, vec![], Wake::none()).await?;
        Ok(version)
    }

    /// A version (the current one for `None`), unless it does not exist or
    /// was deleted.
    pub fn get(&self, user: &UserId, version: Option<u64>) -> Result<Option<BackupVersion>> {
        let version = match version {
            Some(v) => v,
            None => match self.current(user)? {
                Some(v) => v,
                None => return Ok(None),
            },
        };
        Ok(self
            .record(user, version)?
            .filter(|r| !r.deleted)
            .map(|r| BackupVersion {
                version,
                algorithm: r.algorithm,
                auth_data: r.auth_data,
                etag: r.etag,
            }))
    }

    fn live_record(&self, user: &UserId, version: u64) -> Result<VersionRecord> {
        self.record(user, version)?
            .filter(|r| !r.deleted)
            .ok_or_else(|| Error::not_found("Unknown backup version"))
    }

    /// Replaces a version's auth data; its algorithm cannot change.
    pub async fn update(
        &self,
        user: &UserId,
        version: u64,
        algorithm: &str,
        auth_data: Value,
    ) -> Result<()> {
        let _guard = self.writes.lock().await;
        let mut record = self.live_record(user, version)?;
        if record.algorithm != algorithm {
            return Err(Error::invalid_param(
                "The algorithm of a backup version cannot change",
            ));
        }
        record.auth_data = auth_data;
        let mut batch = Batch::new();
        put_record(&mut batch, user, version, &record)?;
        self.store.commit(batch, vec![], Wake::none()).await
    }

    /// Deletes a version and every key in it.
    pub async fn delete(&self, user: &UserId, version: u64) -> Result<()> {
        let _guard = self.writes.lock().await;
        let mut record = self.live_record(user, version)?;
        record.deleted = true;
        record.auth_data = Value::Null;
        let mut batch = Batch::new();
        put_record(&mut batch, user, version, &record)?;
        let prefix = scope_prefix(user, version, &Scope::All);
        batch.delete_range(
            Table::BackupKeys,
            prefix.clone(),
            version_key(user, version + 1),
        );
        self.store.commit(batch, vec![], Wake::none()).await
    }

    /// How many keys a version holds.
    pub fn count(&self, user: &UserId, version: u64) -> Result<u64> {
        let prefix = scope_prefix(user, version, &Scope::All);
        let mut n = 0;
        for item in self.store.db.scan_prefix(Table::BackupKeys, &prefix) {
            item?;
            n += 1;
        }
        Ok(n)
    }

    /// Stores uploaded keys in the current version, keeping the better copy
    /// of each session. Returns the new count and etag.
    pub async fn put_keys(
        &self,
        user: &UserId,
        version: u64,
        uploads: Vec<KeyUpload>,
    ) -> Result<(u64, u64)> {
        let _guard = self.writes.lock().await;
        let mut record = self.live_record(user, version)?;
        if self.current(user)? != Some(version) {
            let current = self.current(user)?.map(|v| v.to_string());
            return Err(Error::new(
                http::StatusCode::FORBIDDEN,
                "M_WRONG_ROOM_KEYS_VERSION",
                "That backup version is not the current one",
            )
            .with_extra(serde_json::json!({ "current_version": current })));
        }
        let mut batch = Batch::new();
        let mut changed = false;
        for (room, session, data) in uploads {
            let key = scope_prefix(user, version, &Scope::Session(&room, &session));
            let keep_old = match self.store.db.get(Table::BackupKeys, &key)? {
                Some(old) => !replaces(&data, &serde_json::from_slice(&old)?),
                None => false,
            };
            if !keep_old {
                batch.put(Table::BackupKeys, key, serde_json::to_vec(&data)?);
                changed = true;
            }
        }
        if changed {
            record.etag += 1;
            put_record(&mut batch, user, version, &record)?;
            self.store.commit(batch, vec![], Wake::none()).await?;
        }
        Ok((self.count(user, version)?, record.etag))
    }

    /// Keys in scope: (room id, session id, `KeyBackupData`).
    pub fn get_keys(
        &self,
        user: &UserId,
        version: u64,
        scope: &Scope<'_>,
    ) -> Result<Vec<KeyUpload>> {
        self.live_record(user, version)?;
        let base = version_key(user, version).len();
        let prefix = scope_prefix(user, version, scope);
        let mut out = Vec::new();
        for item in self.store.db.scan_prefix(Table::BackupKeys, &prefix) {
            let (k, v) = item?;
            let parts = keys::split(&k[base..]);
            let (Some(room), Some(session)) = (parts.first(), parts.get(1)) else {
                continue;
            };
            if let Scope::Session(_, wanted) = scope {
                if *session != wanted.as_bytes() {
                    continue;
                }
            }
            out.push((
                String::from_utf8_lossy(room).into_owned(),
                String::from_utf8_lossy(session).into_owned(),
                serde_json::from_slice(&v)?,
            ));
        }
        Ok(out)
    }

    /// Deletes the keys in scope. Returns the new count and etag.
    pub async fn delete_keys(
        &self,
        user: &UserId,
        version: u64,
        scope: &Scope<'_>,
    ) -> Result<(u64, u64)> {
        let _guard = self.writes.lock().await;
        let mut record = self.live_record(user, version)?;
        let doomed = self.get_keys(user, version, scope)?;
        if !doomed.is_empty() {
            let mut batch = Batch::new();
            for (room, session, _) in &doomed {
                batch.delete(
                    Table::BackupKeys,
                    scope_prefix(user, version, &Scope::Session(room, session)),
                );
            }
            record.etag += 1;
            put_record(&mut batch, user, version, &record)?;
            self.store.commit(batch, vec![], Wake::none()).await?;
        }
        Ok((self.count(user, version)?, record.etag))
    }
}
