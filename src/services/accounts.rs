//! Users, passwords, devices and access tokens.

use std::collections::BTreeMap;

use matrixos_storage::tables::{DEVICES, USERS};
use matrixos_storage::typed::TextPair;
use matrixos_storage::Batch;
use ruma::{DeviceId, OwnedDeviceId, OwnedServerName, OwnedUserId, UserId};

use super::password::Passwords;
use super::Store;
use crate::error::{Error, Result};
use crate::services::Wake;

pub use matrixos_storage::records::{DeviceRecord, UserRecord};

/// An account to create with [`Accounts::create_many`].
pub struct NewAccount<'a> {
    pub user: &'a UserId,
    pub password: Option<&'a str>,
    pub admin: bool,
    /// The localpart when not given.
    pub displayname: Option<String>,
    pub guest: bool,
}

pub struct Accounts {
    pub(super) store: Store,
    server_name: OwnedServerName,
    passwords: Passwords,
    /// Makes "is the name free? then take it" one step.
    create_lock: tokio::sync::Mutex<()>,
    /// Makes reading a device's tokens and replacing them one step.
    pub(super) token_lock: tokio::sync::Mutex<()>,
    /// Makes reading an account and changing it one step.
    update_lock: tokio::sync::Mutex<()>,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(super) fn device_key(user: &UserId, device: &DeviceId) -> (String, String) {
    (user.to_string(), device.to_string())
}

/// The largest a profile may be, as JSON (the spec's limit).
const MAX_PROFILE_BYTES: usize = 64 * 1024;

/// Every field of a local user's profile: display name, avatar and the
/// others.
pub fn profile_fields(record: &UserRecord) -> BTreeMap<String, serde_json::Value> {
    let mut fields = record.profile_fields.clone();
    if let Some(name) = &record.displayname {
        fields.insert("displayname".to_owned(), name.clone().into());
    }
    if let Some(avatar) = &record.avatar_url {
        fields.insert("avatar_url".to_owned(), avatar.clone().into());
    }
    fields
}

/// The size of a profile as JSON.
fn profile_size(record: &UserRecord) -> usize {
    serde_json::to_vec(&profile_fields(record)).map_or(usize::MAX, |json| json.len())
}

/// Localparts ending in `_ai` belong to the AI users the server runs for
/// each person; nobody registers one directly.
pub fn check_not_reserved(localpart: &str) -> Result<()> {
    if localpart.ends_with("_ai") {
        return Err(Error::exclusive(
            "User IDs ending in _ai are reserved for AI users",
        ));
    }
    Ok(())
}

/// Localparts the spec allows for new accounts: lower-case letters, digits
/// and `._=-/+`.
pub fn validate_localpart(localpart: &str) -> Result<()> {
    if localpart.is_empty()
        || !localpart.bytes().all(
            |b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'=' | b'-' | b'/' | b'+'),
        )
    {
        return Err(Error::invalid_username(
            "User ID may only contain a-z, 0-9 and ._=-/+",
        ));
    }
    Ok(())
}

impl Accounts {
    pub fn new(store: Store, server_name: OwnedServerName) -> Self {
        Self {
            store,
            server_name,
            passwords: Passwords::default(),
            create_lock: tokio::sync::Mutex::new(()),
            token_lock: tokio::sync::Mutex::new(()),
            update_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn user_id(&self, localpart: &str) -> Result<OwnedUserId> {
        validate_localpart(localpart)?;
        let id = UserId::parse(format!("@{localpart}:{}", self.server_name))
            .map_err(|e| Error::invalid_username(e.to_string()))?;
        if id.as_str().len() > 255 {
            return Err(Error::invalid_username("User ID is too long"));
        }
        Ok(id)
    }

    pub fn is_local(&self, user: &UserId) -> bool {
        user.server_name() == self.server_name
    }

    pub fn get(&self, user: &UserId) -> Result<Option<UserRecord>> {
        Ok(USERS.get(&self.store.db, user.as_str())?)
    }

    /// `M_FORBIDDEN` unless `user` is a server admin.
    pub fn require_admin(&self, user: &UserId) -> Result<()> {
        match self.get(user)? {
            Some(record) if record.admin => Ok(()),
            _ => Err(Error::forbidden("You are not a server admin")),
        }
    }

    pub fn exists(&self, user: &UserId) -> Result<bool> {
        Ok(USERS.contains(&self.store.db, user.as_str())?)
    }

    /// Every local user id (admin listings, the AI user roster).
    pub fn all_users(&self) -> Result<Vec<OwnedUserId>> {
        let mut out = Vec::new();
        for item in USERS.scan_prefix(&self.store.db, b"") {
            let (user, _) = item?;
            if let Ok(id) = UserId::parse(user) {
                out.push(id);
            }
        }
        Ok(out)
    }

    pub(crate) fn put_user(
        &self,
        batch: &mut Batch,
        user: &UserId,
        record: &UserRecord,
    ) -> Result<()> {
        USERS.put(batch, user.as_str(), record);
        self.store.erasures.on_write(batch, user, record.erased_at);
        Ok(())
    }

    /// Creates the account; fails with `M_USER_IN_USE` if it exists.
    pub async fn create(&self, user: &UserId, password: Option<&str>, admin: bool) -> Result<()> {
        let account = NewAccount {
            user,
            password,
            admin,
            displayname: None,
            guest: false,
        };
        self.create_many(&[account], Batch::new()).await
    }

    /// Creates several accounts and writes `extra` in one atomic batch: all
    /// of it lands or none does. Fails with `M_USER_IN_USE` if any exists.
    pub async fn create_many(&self, accounts: &[NewAccount<'_>], extra: Batch) -> Result<()> {
        let mut records = Vec::with_capacity(accounts.len());
        for account in accounts {
            let password_hash = match account.password {
                Some(p) => Some(self.passwords.hash(p).await?),
                None => None,
            };
            records.push(UserRecord {
                password_hash,
                displayname: Some(
                    account
                        .displayname
                        .clone()
                        .unwrap_or_else(|| account.user.localpart().to_owned()),
                ),
                admin: account.admin,
                guest: account.guest,
                created_ms: now_ms(),
                ..UserRecord::default()
            });
        }
        let _taking_the_names = self.create_lock.lock().await;
        let mut batch = Batch::new();
        for (account, record) in accounts.iter().zip(&records) {
            if self.exists(account.user)? {
                return Err(Error::user_in_use());
            }
            self.put_user(&mut batch, account.user, record)?;
        }
        batch.append(extra);
        self.store.commit(batch, vec![], Wake::none()).await
    }

    /// Checks a password; `Ok(false)` for a wrong password or no account.
    pub async fn check_password(&self, user: &UserId, password: &str) -> Result<bool> {
        let Some(record) = self.get(user)? else {
            return Ok(false);
        };
        if record.deactivated {
            return Err(Error::user_deactivated());
        }
        let Some(hash) = record.password_hash else {
            return Ok(false);
        };
        self.passwords.verify(password, &hash).await
    }

    pub async fn set_password(&self, user: &UserId, password: &str) -> Result<()> {
        let hash = self.passwords.hash(password).await?;
        self.update_user(user, |record| {
            record.password_hash = Some(hash);
            Ok(())
        })
        .await
        .map(drop)
    }

    /// Turns a guest account into a full one, with `password` if given.
    pub async fn upgrade_guest(&self, user: &UserId, password: Option<&str>) -> Result<()> {
        let hash = match password {
            Some(password) => Some(self.passwords.hash(password).await?),
            None => None,
        };
        self.update_user(user, |record| {
            if !record.guest {
                return Err(Error::user_in_use());
            }
            record.guest = false;
            record.password_hash = hash;
            Ok(())
        })
        .await
        .map(drop)
    }

    /// Creates a device with no access token: one the server itself drives
    /// (the AI user's encryption device). Nothing can log in with it.
    pub async fn add_server_device(
        &self,
        user: &UserId,
        device_id: &DeviceId,
        display_name: &str,
    ) -> Result<()> {
        if self.device(user, device_id)?.is_some() {
            return Ok(());
        }
        let record = DeviceRecord {
            display_name: Some(display_name.to_owned()),
            last_seen_ts: Some(now_ms()),
            ..DeviceRecord::default()
        };
        let mut batch = Batch::new();
        DEVICES.put(&mut batch, &device_key(user, device_id), &record);
        self.store.commit(batch, vec![], Wake::none()).await
    }

    pub fn device(&self, user: &UserId, device: &DeviceId) -> Result<Option<DeviceRecord>> {
        Ok(DEVICES.get(&self.store.db, &device_key(user, device))?)
    }

    pub fn devices(&self, user: &UserId) -> Result<Vec<(OwnedDeviceId, DeviceRecord)>> {
        let prefix = TextPair::prefix(user.as_str());
        let mut out = Vec::new();
        for item in DEVICES.scan_prefix(&self.store.db, &prefix) {
            let ((_, id), record) = item?;
            out.push((id.into(), record));
        }
        Ok(out)
    }

    /// The ids of every device of the user.
    pub fn device_ids(&self, user: &UserId) -> Result<Vec<OwnedDeviceId>> {
        Ok(self.devices(user)?.into_iter().map(|(id, _)| id).collect())
    }

    pub async fn update_device(
        &self,
        user: &UserId,
        device: &DeviceId,
        display_name: Option<String>,
    ) -> Result<()> {
        let mut record = self
            .device(user, device)?
            .ok_or_else(|| Error::not_found("No such device"))?;
        record.display_name = display_name;
        let mut batch = Batch::new();
        DEVICES.put(&mut batch, &device_key(user, device), &record);
        self.store.commit(batch, vec![], Wake::none()).await
    }

    /// Deletes devices with their tokens; their keys go with them (the
    /// caller adds the key removals to the same batch).
    pub fn delete_devices_into(
        &self,
        batch: &mut Batch,
        user: &UserId,
        devices: &[OwnedDeviceId],
    ) -> Result<()> {
        for device in devices {
            if let Some(record) = self.device(user, device)? {
                super::access_tokens::delete_device_tokens(batch, &record);
                DEVICES.delete(batch, &device_key(user, device));
            }
        }
        Ok(())
    }

    /// Changes a local account with `change` (which may refuse) and keeps
    /// it; one change at a time, so none is lost to another.
    async fn update_user(
        &self,
        user: &UserId,
        change: impl FnOnce(&mut UserRecord) -> Result<()>,
    ) -> Result<UserRecord> {
        let _one_at_a_time = self.update_lock.lock().await;
        let mut record = self
            .get(user)?
            .ok_or_else(|| Error::not_found("No such user"))?;
        change(&mut record)?;
        let mut batch = Batch::new();
        self.put_user(&mut batch, user, &record)?;
        self.store.commit(batch, vec![], Wake::none()).await?;
        Ok(record)
    }

    /// Makes the user a server admin, or no longer one.
    pub async fn set_admin(&self, user: &UserId, admin: bool) -> Result<()> {
        self.update_user(user, |record| {
            record.admin = admin;
            Ok(())
        })
        .await
        .map(drop)
    }

    /// Marks the account deactivated and removes its password, so it can
    /// never log in again (its id stays taken).
    pub async fn mark_deactivated(&self, user: &UserId) -> Result<()> {
        self.update_user(user, |record| {
            record.deactivated = true;
            record.password_hash = None;
            Ok(())
        })
        .await
        .map(drop)
    }

    /// Erases what a deactivating user's account says of them: the whole
    /// profile goes, and from stream position `at` on their events are
    /// served pruned to whoever was not in the room then.
    pub async fn erase(&self, user: &UserId, at: u64) -> Result<()> {
        self.update_user(user, |record| {
            record.displayname = None;
            record.avatar_url = None;
            record.profile_fields.clear();
            record.erased_at = Some(at);
            Ok(())
        })
        .await
        .map(drop)
    }

    /// Sets (or, with `None`, removes) one field of a local user's
    /// profile: `displayname` and `avatar_url` (strings, checked by the
    /// caller) or any other. The whole profile stays under 64 KiB
    /// (`M_PROFILE_TOO_LARGE`).
    pub async fn set_profile_field(
        &self,
        user: &UserId,
        key: &str,
        value: Option<serde_json::Value>,
    ) -> Result<UserRecord> {
        let text = |v: Option<serde_json::Value>| v.and_then(|v| v.as_str().map(str::to_owned));
        self.update_user(user, |record| {
            match key {
                "displayname" => record.displayname = text(value),
                "avatar_url" => record.avatar_url = text(value),
                _ => match value {
                    Some(value) => {
                        record.profile_fields.insert(key.to_owned(), value);
                    }
                    None => {
                        record.profile_fields.remove(key);
                    }
                },
            }
            if profile_size(record) > MAX_PROFILE_BYTES {
                return Err(Error::new(
                    http::StatusCode::BAD_REQUEST,
                    "M_PROFILE_TOO_LARGE",
                    "The profile would be larger than 64 KiB",
                ));
            }
            Ok(())
        })
        .await
    }
}
