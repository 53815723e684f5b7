//! Federation: the server-server API other Matrix servers call on this one,
//! and this server's calls to them.

use std::sync::Arc;

use axum::Router;
use matrixos_federation::ServerSigningKey;
use ruma::{OwnedServerName, ServerName};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::services::Services;
use crate::store::Store;

pub mod acl;
pub mod backfill;
pub mod client;
pub mod device_lists;
pub mod directory;
pub mod edus;
pub mod events;
pub mod gap;
pub mod hierarchy;
pub mod inbound;
pub mod invites;
pub mod key_store;
pub mod media;
pub mod membership;
pub mod membership_v1;
pub mod notary;
pub mod openid;
pub mod out_of_room;
pub mod outbox;
pub mod pdu_check;
pub mod query;
pub mod remote_membership;
pub mod sender;
pub mod server_keys;
pub mod transactions;
pub mod user_keys;
pub mod version;
pub mod x_matrix;

use client::{ClientSettings, FederationClient};
use key_store::KeyStore;

/// The outbound side, shared by every service that talks to other servers.
pub struct Federation {
    pub client: Arc<FederationClient>,
    pub keys: KeyStore,
    /// What is owed to other servers; an append hook.
    pub outbox: Arc<outbox::Outbox>,
    /// One inbound transaction per origin at a time.
    pub origin_locks: transactions::OriginLocks,
    /// Rooms lately backfilled from peers for a client.
    pub backfills: backfill::BackfillAttempts,
    /// Other servers' files being fetched.
    pub media: media::RemoteMedia,
    /// Other servers' space hierarchies, kept a while.
    pub hierarchies: hierarchy::RemoteHierarchies,
    /// Device list updates go out one at a time (each names the last).
    pub device_list_updates: tokio::sync::Mutex<()>,
}

impl Federation {
    pub fn new(
        config: &Config,
        store: Store,
        server_name: &ServerName,
        key: Arc<ServerSigningKey>,
    ) -> Result<Self> {
        let settings = ClientSettings {
            ip_allowlist: config.federation_ip_range_allowlist.clone(),
            verify_certificates: config.federation_verify_certificates,
            ca_file: config.federation_ca_file.clone(),
        };
        let client = Arc::new(FederationClient::new(
            server_name.to_owned(),
            key,
            &settings,
        )?);
        let notaries = config
            .trusted_key_servers
            .iter()
            .map(|name| {
                OwnedServerName::try_from(name.as_str())
                    .map_err(|e| Error::internal(format!("trusted_key_servers: {name}: {e}")))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            keys: KeyStore::new(store, client.clone(), notaries),
            client,
            outbox: Arc::new(outbox::Outbox::new(server_name.to_owned())),
            origin_locks: transactions::OriginLocks::default(),
            backfills: backfill::BackfillAttempts::default(),
            media: media::RemoteMedia::default(),
            hierarchies: hierarchy::RemoteHierarchies::default(),
            device_list_updates: tokio::sync::Mutex::new(()),
        })
    }
}

/// Per server, per user of that server, per key (device): what a request
/// to each other server carries.
pub type ByServer<K, V> = std::collections::BTreeMap<
    OwnedServerName,
    std::collections::BTreeMap<ruma::OwnedUserId, std::collections::BTreeMap<K, V>>,
>;

/// Adds `value` for `user`'s `key` under the user's server.
pub fn add_by_server<K: Ord, V>(
    map: &mut ByServer<K, V>,
    user: ruma::OwnedUserId,
    key: K,
    value: V,
) {
    map.entry(user.server_name().to_owned())
        .or_default()
        .entry(user)
        .or_default()
        .insert(key, value);
}

/// Every federation endpoint.
pub fn routes() -> Router<Arc<Services>> {
    server_keys::routes()
        .merge(version::routes())
        .merge(query::routes())
        .merge(notary::routes())
        .merge(directory::routes())
        .merge(events::routes())
        .merge(membership::routes())
        .merge(membership_v1::routes())
        .merge(transactions::routes())
        .merge(invites::routes())
        .merge(user_keys::routes())
        .merge(media::routes())
        .merge(openid::routes())
        .merge(hierarchy::routes())
}
