//! Server-side key backup (`/room_keys`): versions of a user's backup, each
//! with its algorithm and public auth data, and the encrypted room keys the
//! user's clients upload into the current one. The server never sees a key
//! in the clear; it only keeps the better of two copies of a session.

use matrixos_storage::backup_keys::{BackedUpKey, UserVersion};
use matrixos_storage::records::BackupVersionRecord;
use matrixos_storage::tables::{BACKUP_KEYS, BACKUP_VERSIONS};
use matrixos_storage::{Batch, Direction};
use ruma::UserId;
use serde_json::Value;

use super::Store;
use crate::error::{Error, Result};
use crate::services::Wake;

type VersionRecord = BackupVersionRecord;
/// (user, version, room, session).
type BackupKey = (String, u64, String, String);

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

fn version_key(user: &UserId, version: u64) -> (String, u64) {
    (user.to_string(), version)
}

fn scope_prefix(user: &UserId, version: u64, scope: &Scope<'_>) -> Vec<u8> {
    let (room, session) = match scope {
        Scope::All => (None, None),
        Scope::Room(room) => (Some(*room), None),
        Scope::Session(room, session) => (Some(*room), Some(*session)),
    };
    BackedUpKey::prefix(user.as_str(), version, room, session)
}

fn session_key(user: &UserId, version: u64, room: &str, session: &str) -> BackupKey {
    (
        user.to_string(),
        version,
        room.to_owned(),
        session.to_owned(),
    )
}

fn put_record(batch: &mut Batch, user: &UserId, version: u64, record: &VersionRecord) {
    BACKUP_VERSIONS.put(batch, &version_key(user, version), record);
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
        Ok(BACKUP_VERSIONS.get(&self.store.db, &version_key(user, version))?)
    }

    /// The newest version ever made (deleted or not) and its record.
    fn newest(&self, user: &UserId) -> Result<Option<(u64, VersionRecord)>> {
        let prefix = UserVersion::prefix(user.as_str());
        let start = version_key(user, u64::MAX);
        let newest = BACKUP_VERSIONS
            .scan(&self.store.db, &prefix, &start, Direction::Backward)
            .next();
        match newest {
            Some(item) => {
                let ((_, version), record) = item?;
                Ok(Some((version, record)))
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
        put_record(&mut batch, user, version, &record);
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
        put_record(&mut batch, user, version, &record);
        self.store.commit(batch, vec![], Wake::none()).await
    }

    /// Deletes a version and every key in it.
    pub async fn delete(&self, user: &UserId, version: u64) -> Result<()> {
        let _guard = self.writes.lock().await;
        let mut record = self.live_record(user, version)?;
        record.deleted = true;
        record.auth_data = Value::Null;
        let mut batch = Batch::new();
        put_record(&mut batch, user, version, &record);
        let prefix = scope_prefix(user, version, &Scope::All);
        let next = scope_prefix(user, version + 1, &Scope::All);
        BACKUP_KEYS.delete_range(&mut batch, prefix, next);
        self.store.commit(batch, vec![], Wake::none()).await
    }

    /// How many keys a version holds.
    pub fn count(&self, user: &UserId, version: u64) -> Result<u64> {
        let prefix = scope_prefix(user, version, &Scope::All);
        let mut n = 0;
        for item in BACKUP_KEYS.scan_prefix(&self.store.db, &prefix) {
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
            let key = session_key(user, version, &room, &session);
            let keep_old = match BACKUP_KEYS.get(&self.store.db, &key)? {
                Some(old) => !replaces(&data, &old),
                None => false,
            };
            if !keep_old {
                BACKUP_KEYS.put(&mut batch, &key, &data);
                changed = true;
            }
        }
        if changed {
            record.etag += 1;
            put_record(&mut batch, user, version, &record);
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
        let prefix = scope_prefix(user, version, scope);
        let mut out = Vec::new();
        for item in BACKUP_KEYS.scan_prefix(&self.store.db, &prefix) {
            let ((_, _, room, session), data) = item?;
            if let Scope::Session(_, wanted) = scope {
                if session != *wanted {
                    continue;
                }
            }
            out.push((room, session, data));
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
                BACKUP_KEYS.delete(&mut batch, &session_key(user, version, room, session));
            }
            record.etag += 1;
            put_record(&mut batch, user, version, &record);
            self.store.commit(batch, vec![], Wake::none()).await?;
        }
        Ok((self.count(user, version)?, record.etag))
    }
}
