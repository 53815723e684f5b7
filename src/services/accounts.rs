//! Users, passwords, devices and access tokens.

use matrixos_storage::tables::{ACCESS_TOKENS, DEVICES, USERS};
use matrixos_storage::typed::TextPair;
use matrixos_storage::Batch;
use ruma::{DeviceId, OwnedDeviceId, OwnedServerName, OwnedUserId, UserId};
use sha2::{Digest, Sha256};

use super::password::Passwords;
use super::Store;
use crate::error::{Error, Result};
use crate::http::Caller;
use crate::random::random_string;
use crate::services::Wake;

pub use matrixos_storage::records::{DeviceRecord, UserRecord};

/// An account to create with [`Accounts::create_many`].
pub struct NewAccount<'a> {
    pub user: &'a UserId,
    pub password: Option<&'a str>,
    pub admin: bool,
    /// The localpart when not given.
    pub displayname: Option<String>,
}

pub struct Accounts {
    store: Store,
    server_name: OwnedServerName,
    passwords: Passwords,
    /// Makes "is the name free? then take it" one step.
    create_lock: tokio::sync::Mutex<()>,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn device_key(user: &UserId, device: &DeviceId) -> (String, String) {
    (user.to_string(), device.to_string())
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
        Ok(())
    }

    /// Creates the account; fails with `M_USER_IN_USE` if it exists.
    pub async fn create(&self, user: &UserId, password: Option<&str>, admin: bool) -> Result<()> {
        let account = NewAccount {
            user,
            password,
            admin,
            displayname: None,
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
        let mut record = self
            .get(user)?
            .ok_or_else(|| Error::not_found("No such user"))?;
        record.password_hash = Some(hash);
        let mut batch = Batch::new();
        self.put_user(&mut batch, user, &record)?;
        self.store.commit(batch, vec![], Wake::none()).await
    }

    /// Creates (or re-uses) a device and gives it a fresh access token.
    pub async fn login_device(
        &self,
        user: &UserId,
        device_id: Option<OwnedDeviceId>,
        display_name: Option<String>,
        ip: Option<String>,
    ) -> Result<(OwnedDeviceId, String)> {
        let device_id = device_id.unwrap_or_else(|| random_string(10).to_uppercase().into());
        let token = format!("mos_{}", random_string(40));
        let mut batch = Batch::new();
        let mut record = self.device(user, &device_id)?.unwrap_or_default();
        if let Some(old) = record.token_hash.take() {
            if let Ok(old) = hex::decode(old) {
                ACCESS_TOKENS.delete(&mut batch, &old);
            }
        }
        if display_name.is_some() {
            record.display_name = display_name;
        }
        let hash = token_hash(&token);
        record.token_hash = Some(hex::encode(&hash));
        record.last_seen_ts = Some(now_ms());
        record.last_seen_ip = ip;
        ACCESS_TOKENS.put(&mut batch, &hash, &device_key(user, &device_id));
        DEVICES.put(&mut batch, &device_key(user, &device_id), &record);
        self.store.commit(batch, vec![], Wake::none()).await?;
        Ok((device_id, token))
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

    /// Resolves an access token to its user and device.
    pub fn authenticate(&self, token: &str) -> Result<Caller> {
        let Some((user, device)) = ACCESS_TOKENS.get(&self.store.db, &token_hash(token))? else {
            return Err(Error::unknown_token());
        };
        let user = UserId::parse(user).map_err(|_| Error::internal("corrupt access token user"))?;
        Ok(Caller {
            user_id: user,
            device_id: device.into(),
        })
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
                if let Some(hash) = record.token_hash.and_then(|h| hex::decode(h).ok()) {
                    ACCESS_TOKENS.delete(batch, &hash);
                }
                DEVICES.delete(batch, &device_key(user, device));
            }
        }
        Ok(())
    }

    /// Marks the account deactivated and removes its password, so it can
    /// never log in again (its id stays taken).
    pub async fn mark_deactivated(&self, user: &UserId) -> Result<()> {
        let mut record = self
            .get(user)?
            .ok_or_else(|| Error::not_found("No such user"))?;
        record.deactivated = true;
        record.password_hash = None;
        let mut batch = Batch::new();
        self.put_user(&mut batch, user, &record)?;
        self.store.commit(batch, vec![], Wake::none()).await
    }

    pub async fn set_profile(
        &self,
        user: &UserId,
        displayname: Option<Option<String>>,
        avatar_url: Option<Option<String>>,
    ) -> Result<UserRecord> {
        let mut record = self
            .get(user)?
            .ok_or_else(|| Error::not_found("No such user"))?;
        if let Some(d) = displayname {
            record.displayname = d;
        }
        if let Some(a) = avatar_url {
            record.avatar_url = a;
        }
        let mut batch = Batch::new();
        self.put_user(&mut batch, user, &record)?;
        self.store.commit(batch, vec![], Wake::none()).await?;
        Ok(record)
    }
}
