//! Access and refresh tokens: issuing them at login, resolving them on each
//! request, refreshing and revoking them.
//!
//! Only hashes are stored. A device has one current access token; a login
//! that asks for a refresh token gets an access token that expires and a
//! refresh token. Refreshing replaces both; the replaced access token stays
//! valid until it expires (requests already on their way succeed), and the
//! used refresh token until the new access or refresh token is first used,
//! so a client that lost the answer to `/refresh` can ask again.

use std::time::Duration;

use matrixos_storage::records::TokenExpiry;
use matrixos_storage::tables::{ACCESS_TOKENS, DEVICES, REFRESH_TOKENS, TOKEN_EXPIRY};
use matrixos_storage::Batch;
use ruma::{OwnedDeviceId, UserId};
use sha2::{Digest, Sha256};

use super::accounts::{device_key, now_ms, Accounts, DeviceRecord};
use crate::error::{Error, Result};
use crate::http::Caller;
use crate::random::random_string;
use crate::services::Wake;

/// Prefix of access tokens that never expire.
const LASTING: &str = "mos_";
/// Prefix of access tokens that expire; only these have an expiry to read.
const EXPIRING: &str = "mor_";
/// Prefix of refresh tokens.
const REFRESH: &str = "mrt_";
/// Prefix of guest accounts' access tokens (they never expire): a request
/// is known to be a guest's without another read.
const GUEST: &str = "mog_";

/// The access token a device is given.
#[derive(Clone, Copy)]
pub enum TokenKind {
    Lasting,
    /// Expires after the lifetime; comes with a refresh token.
    Expiring(Duration),
    /// A guest account's.
    Guest,
}

impl TokenKind {
    /// Expiring after `lifetime` when one is given, else lasting.
    pub fn of(lifetime: Option<Duration>) -> Self {
        lifetime.map_or(Self::Lasting, Self::Expiring)
    }

    fn lifetime(self) -> Option<Duration> {
        match self {
            Self::Expiring(lifetime) => Some(lifetime),
            Self::Lasting | Self::Guest => None,
        }
    }
}

/// What a login or a refresh hands the client.
pub struct Session {
    pub device_id: OwnedDeviceId,
    pub access_token: String,
    /// With `expires_in`, when a refresh token was asked for.
    pub refresh_token: Option<String>,
    pub expires_in: Option<Duration>,
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Queues the removal of the access token whose hex hash is `hash`.
fn delete_access(batch: &mut Batch, hash: Option<&str>) {
    if let Some(hash) = hash.and_then(|h| hex::decode(h).ok()) {
        ACCESS_TOKENS.delete(batch, &hash);
        TOKEN_EXPIRY.delete(batch, &hash);
    }
}

/// Queues the removal of the refresh token whose hex hash is `hash`.
fn delete_refresh(batch: &mut Batch, hash: Option<&str>) {
    if let Some(hash) = hash.and_then(|h| hex::decode(h).ok()) {
        REFRESH_TOKENS.delete(batch, &hash);
    }
}

/// Queues the removal of every token of a device (it is being deleted).
pub(super) fn delete_device_tokens(batch: &mut Batch, record: &DeviceRecord) {
    delete_access(batch, record.token_hash.as_deref());
    delete_access(batch, record.prior_token_hash.as_deref());
    delete_refresh(batch, record.refresh_hash.as_deref());
    delete_refresh(batch, record.prior_refresh_hash.as_deref());
}

/// A fresh access token for the device, written into `record` and `batch`;
/// with a lifetime, a refresh token too. `revokes` is the refresh token
/// the new access token's first use revokes.
fn issue(
    batch: &mut Batch,
    key: &(String, String),
    record: &mut DeviceRecord,
    kind: TokenKind,
    revokes: Option<String>,
) -> (String, Option<String>) {
    let prefix = match kind {
        TokenKind::Lasting => LASTING,
        TokenKind::Expiring(_) => EXPIRING,
        TokenKind::Guest => GUEST,
    };
    let lifetime = kind.lifetime();
    let access = format!("{prefix}{}", random_string(40));
    let hash = token_hash(&access);
    ACCESS_TOKENS.put(batch, &hash, key);
    record.token_hash = Some(hex::encode(&hash));
    let Some(lifetime) = lifetime else {
        return (access, None);
    };
    let expiry = TokenExpiry {
        expires_ms: now_ms().saturating_add(lifetime.as_millis() as u64),
        revokes,
    };
    TOKEN_EXPIRY.put(batch, &hash, &expiry);
    let refresh = format!("{REFRESH}{}", random_string(40));
    let refresh_hash = token_hash(&refresh);
    REFRESH_TOKENS.put(batch, &refresh_hash, key);
    record.refresh_hash = Some(hex::encode(&refresh_hash));
    (access, Some(refresh))
}

impl Accounts {
    /// Creates (or re-uses) a device and gives it a fresh access token of
    /// the kind asked for (an expiring one with a refresh token). Whatever
    /// tokens the device had are revoked.
    pub async fn login_device(
        &self,
        user: &UserId,
        device_id: Option<OwnedDeviceId>,
        display_name: Option<String>,
        ip: Option<String>,
        kind: TokenKind,
    ) -> Result<Session> {
        let device_id = device_id.unwrap_or_else(|| random_string(10).to_uppercase().into());
        let key = device_key(user, &device_id);
        let _turn = self.token_lock.lock().await;
        let mut batch = Batch::new();
        let old = self.device(user, &device_id)?.unwrap_or_default();
        delete_device_tokens(&mut batch, &old);
        let mut record = DeviceRecord {
            display_name: display_name.or(old.display_name),
            last_seen_ts: Some(now_ms()),
            last_seen_ip: ip,
            ..DeviceRecord::default()
        };
        let (access_token, refresh_token) = issue(&mut batch, &key, &mut record, kind, None);
        DEVICES.put(&mut batch, &key, &record);
        self.store.commit(batch, vec![], Wake::none()).await?;
        Ok(Session {
            device_id,
            access_token,
            refresh_token,
            expires_in: kind.lifetime(),
        })
    }

    /// `POST /refresh`: a new access token (expiring after `lifetime`) and
    /// refresh token for the refresh token given.
    pub async fn refresh(&self, refresh_token: &str, lifetime: Duration) -> Result<Session> {
        let unknown = || Error::unknown_token_named("Unknown refresh token");
        let hash = token_hash(refresh_token);
        let hex_hash = hex::encode(&hash);
        let _turn = self.token_lock.lock().await;
        // Revocations queued by first uses (written behind their requests)
        // land first: batches are written in the order they were queued.
        self.store
            .commit(Batch::new(), vec![], Wake::none())
            .await?;
        let Some(key) = REFRESH_TOKENS.get(&self.store.db, &hash)? else {
            return Err(unknown());
        };
        let mut batch = Batch::new();
        let Some(mut record) = DEVICES.get(&self.store.db, &key)? else {
            REFRESH_TOKENS.delete(&mut batch, &hash);
            self.store.commit(batch, vec![], Wake::none()).await?;
            return Err(unknown());
        };
        if record.refresh_hash.as_deref() == Some(&hex_hash) {
            // The usual case: the current pair is replaced. The access token
            // stays valid until it expires; the one before it goes, and so
            // does the refresh token before this one.
            delete_access(&mut batch, record.prior_token_hash.as_deref());
            delete_refresh(&mut batch, record.prior_refresh_hash.as_deref());
            record.prior_token_hash = record.token_hash.take();
            record.prior_refresh_hash = Some(hex_hash.clone());
        } else if record.prior_refresh_hash.as_deref() == Some(&hex_hash) {
            // Asked again: the pair issued last time never reached the client
            // (it would have revoked this token on first use).
            delete_access(&mut batch, record.token_hash.as_deref());
            delete_refresh(&mut batch, record.refresh_hash.as_deref());
        } else {
            REFRESH_TOKENS.delete(&mut batch, &hash);
            self.store.commit(batch, vec![], Wake::none()).await?;
            return Err(unknown());
        }
        let (access_token, refresh_token) = issue(
            &mut batch,
            &key,
            &mut record,
            TokenKind::Expiring(lifetime),
            Some(hex_hash),
        );
        DEVICES.put(&mut batch, &key, &record);
        self.store.commit(batch, vec![], Wake::none()).await?;
        Ok(Session {
            device_id: key.1.into(),
            access_token,
            refresh_token,
            expires_in: Some(lifetime),
        })
    }

    /// Resolves an access token to its user and device. An expired token
    /// is refused with `soft_logout`, so the client refreshes it.
    pub fn authenticate(&self, token: &str) -> Result<Caller> {
        let hash = token_hash(token);
        let Some((user, device)) = ACCESS_TOKENS.get(&self.store.db, &hash)? else {
            return Err(Error::unknown_token());
        };
        if token.starts_with(EXPIRING) {
            self.check_expiry(&hash)?;
        }
        let user = UserId::parse(user).map_err(|_| Error::internal("corrupt access token user"))?;
        Ok(Caller {
            user_id: user,
            device_id: device.into(),
            guest: token.starts_with(GUEST),
        })
    }

    /// Refuses an expired token; on a token's first use, revokes the
    /// refresh token it replaced.
    fn check_expiry(&self, hash: &[u8]) -> Result<()> {
        let Some(expiry) = TOKEN_EXPIRY.get(&self.store.db, hash)? else {
            return Ok(());
        };
        if now_ms() >= expiry.expires_ms {
            return Err(Error::soft_logout());
        }
        if let Some(revoked) = &expiry.revokes {
            let mut batch = Batch::new();
            delete_refresh(&mut batch, Some(revoked));
            let used = TokenExpiry {
                revokes: None,
                ..expiry.clone()
            };
            TOKEN_EXPIRY.put(&mut batch, hash, &used);
            // Written in the background: the request goes on meanwhile, and
            // writing it twice (two first requests at once) is harmless.
            let written = self.store.commit(batch, vec![], Wake::none());
            tokio::spawn(async move {
                if let Err(e) = written.await {
                    tracing::warn!(error = %e, "revoking a used refresh token failed");
                }
            });
        }
        Ok(())
    }
}
