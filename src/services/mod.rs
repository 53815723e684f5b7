//! Services hold the business rules; handlers call them, they call storage.

pub mod access_tokens;
pub mod account_data;
pub mod accounts;
pub mod cross_signing;
pub mod e2ee_keys;
pub mod key_backup;
pub mod lazy_members;
pub mod media;
pub mod media_pending;
pub mod membership;
pub mod openid;
pub mod password;
pub mod peeks;
pub mod presence;
pub mod public_rooms;
pub mod receipts;
pub mod remote_media;
pub mod reports;
pub mod thumbnail;
pub mod thumbnailer;
pub mod uia;

use std::sync::Arc;

use matrixos_federation::ServerSigningKey;
use matrixos_storage::tables::SERVER_SETTINGS;
use matrixos_storage::{Db, DbOptions};
use ruma::{OwnedServerName, ServerName};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::ratelimit::RateLimiter;
use crate::rooms::Rooms;

pub use crate::store::{Store, Wake};

pub struct Services {
    pub config: Config,
    pub ai: crate::ai::Ai,
    pub server_name: OwnedServerName,
    pub store: Store,
    pub signing_key: Arc<ServerSigningKey>,
    /// Calls to other servers, and their keys.
    pub federation: crate::federation::Federation,
    /// Counters for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    pub accounts: accounts::Accounts,
    pub uia: uia::Uia,
    pub rooms: Arc<Rooms>,
    /// Push rules and the notifications they decide, recorded per event.
    pub push: Arc<crate::push::Push>,
    pub account_data: account_data::AccountData,
    pub keys: e2ee_keys::E2eeKeys,
    pub cross_signing: cross_signing::CrossSigning,
    pub key_backup: key_backup::KeyBackup,
    pub media: media::Media,
    pub receipts: receipts::Receipts,
    /// Reports of rooms and events, for admins.
    pub reports: reports::Reports,
    /// Each room's latest activity, for sliding sync's room lists.
    pub bump_stamps: Arc<crate::sliding_sync::BumpStamps>,
    /// The full-text index of messages, names and topics.
    /// The full-text index, unless search is off (`enable_search`).
    pub search: Option<Arc<crate::search::Search>>,
    /// Link previews, when the operator turned them on.
    pub url_previews: Option<crate::url_preview::UrlPreviews>,
    /// Member events each device was sent by lazy-loading syncs.
    pub lazy_members: lazy_members::LazyMembers,
    /// Devices' peeks into rooms they are not in (MSC2753).
    pub peeks: peeks::Peeks,
    /// Each device's sends still being answered, which its syncs wait for.
    pub sends_in_flight: crate::sync::sends_in_flight::SendsInFlight,
    pub presence: presence::Presence,
    pub openid: openid::OpenIdTokens,
    pub login_limiter: RateLimiter<std::net::IpAddr>,
    pub register_limiter: RateLimiter<std::net::IpAddr>,
    pub token_validity_limiter: RateLimiter<std::net::IpAddr>,
    pub send_limiter: RateLimiter<ruma::OwnedUserId>,
    /// Bytes of other servers' files fetched for each client address.
    pub remote_media_limiter: RateLimiter<std::net::IpAddr>,
}

const SIGNING_KEY: &str = "signing_key";

fn load_or_create_signing_key(db: &Db) -> Result<ServerSigningKey> {
    if let Some(bytes) = SERVER_SETTINGS.get(db, SIGNING_KEY)? {
        let (version, pkcs8) = bytes
            .split_first_chunk::<1>()
            .and_then(|(len, rest)| {
                let len = len[0] as usize;
                (rest.len() >= len).then(|| rest.split_at(len))
            })
            .ok_or_else(|| Error::internal("stored signing key is corrupt"))?;
        let version = std::str::from_utf8(version)
            .map_err(|_| Error::internal("stored signing key version is not UTF-8"))?;
        return ServerSigningKey::from_pkcs8(pkcs8, version)
            .map_err(|e| Error::internal(format!("stored signing key: {e}")));
    }
    let key = ServerSigningKey::generate();
    let version = key.version().to_owned();
    let mut value = vec![version.len() as u8];
    value.extend_from_slice(version.as_bytes());
    value.extend_from_slice(&key.to_pkcs8());
    let mut batch = matrixos_storage::Batch::new();
    SERVER_SETTINGS.put(&mut batch, SIGNING_KEY, &value);
    db.write(batch)?;
    Ok(key)
}

impl Services {
    /// Opens the database under the data directory and builds every service.
    pub fn open(config: Config) -> Result<Arc<Self>> {
        let server_name = ServerName::parse(&config.server_name)
            .map_err(|e| Error::internal(format!("invalid server_name: {e}")))?;
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| Error::internal(format!("creating data dir: {e}")))?;
        let db = Db::open(
            &config.data_dir.join("db"),
            DbOptions {
                sync_writes: config.sync_writes,
                ..DbOptions::default()
            },
        )?;
        let signing_key = Arc::new(load_or_create_signing_key(&db)?);
        let store = Store::new(db);
        let limits = config.rate_limits.clone();
        let accounts = accounts::Accounts::new(store.clone(), server_name.clone());
        let ai = crate::ai::Ai::new(config.ai.clone(), config.base_url(), &config.data_dir)?;
        crate::ops::schema::bring_up_to_date(&store.db, ai.homes_dir(), &accounts.all_users()?)?;
        let rooms = Arc::new(Rooms::new(
            store.clone(),
            server_name.clone(),
            signing_key.clone(),
        )?);
        let push = Arc::new(crate::push::Push::new(store.clone())?);
        let federation = crate::federation::Federation::new(
            &config,
            store.clone(),
            &server_name,
            signing_key.clone(),
        )?;
        rooms.add_hook(push.clone());
        rooms.add_hook(federation.outbox.clone());
        let bump_stamps = Arc::new(crate::sliding_sync::BumpStamps::default());
        rooms.add_hook(bump_stamps.clone());
        let search = crate::search::Search::open_if_enabled(&config)?;
        if let Some(search) = &search {
            rooms.add_hook(search.clone());
        }
        let metrics = Arc::new(crate::metrics::Metrics::default());
        rooms.add_hook(Arc::new(crate::metrics::EventCounter {
            metrics: metrics.clone(),
            server_name: server_name.clone(),
        }));
        Ok(Arc::new(Self {
            ai,
            accounts,
            uia: uia::Uia::default(),
            rooms,
            push,
            account_data: account_data::AccountData::new(store.clone()),
            keys: e2ee_keys::E2eeKeys::new(store.clone()),
            cross_signing: cross_signing::CrossSigning::new(store.clone()),
            key_backup: key_backup::KeyBackup::new(store.clone()),
            media: media::Media::new(
                store.clone(),
                &config.data_dir,
                config.remote_media_cache_max_bytes,
                config.enable_authenticated_media,
            )?,
            receipts: receipts::Receipts::new(store.clone()),
            reports: reports::Reports::new(store.clone()),
            lazy_members: lazy_members::LazyMembers::default(),
            peeks: peeks::Peeks::new(store.clone()),
            sends_in_flight: Default::default(),
            bump_stamps,
            search,
            url_previews: match config.url_preview_enabled {
                true => Some(crate::url_preview::UrlPreviews::new(
                    &config.url_preview_ip_range_allowlist,
                )?),
                false => None,
            },
            presence: presence::Presence::new(store.clone()),
            openid: openid::OpenIdTokens::default(),
            login_limiter: RateLimiter::new(limits.login),
            register_limiter: RateLimiter::new(limits.register),
            token_validity_limiter: RateLimiter::new(limits.token_validity),
            send_limiter: RateLimiter::new(limits.send),
            remote_media_limiter: RateLimiter::new(limits.remote_media_download),
            signing_key,
            federation,
            metrics,
            store,
            server_name,
            config,
        }))
    }
}
