//! Other servers' signing keys: what signatures on their requests and
//! events are checked with. Asked of the server itself
//! (`/_matrix/key/v2/server`), else of the trusted notaries
//! (`/_matrix/key/v2/query`); every answer must be for the server asked
//! about and signed by the keys it lists (and by the notary, through one).
//! Keys are kept in RocksDB with how long each may be used: a current key
//! until the answer's `valid_until_ts`, capped at a week after it was
//! fetched as the spec requires; an old key until its `expired_ts`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use matrixos_storage::records::RemoteKey;
use matrixos_storage::{tables, Batch};
use parking_lot::Mutex;
use ruma::api::federation::discovery::ServerSigningKeys;
use ruma::api::federation::discovery::{get_remote_server_keys_batch, get_server_keys};
use ruma::serde::{Base64, Raw};
use ruma::signatures::PublicKeyMap;
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, MilliSecondsSinceUnixEpoch, OwnedServerName,
    ServerName,
};
use tokio::sync::Semaphore;

use super::client::FederationClient;
use crate::bounded_map::BoundedMap;
use crate::error::{Error, Result};
use crate::store::{Store, Wake};

/// The longest a current key is trusted after it was fetched.
const MAX_VALIDITY: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How long a server whose keys could not be fetched is not asked again.
const FAILURE_BACKOFF: Duration = Duration::from_secs(60);
/// Most servers remembered as failing.
const MAX_FAILURES: usize = 10_000;
/// Most key fetches at once: origins named by unauthenticated requests
/// cannot make this server open connections without bound.
const MAX_FETCHES: usize = 32;

pub struct KeyStore {
    store: Store,
    client: Arc<FederationClient>,
    notaries: Vec<OwnedServerName>,
    failures: Mutex<BoundedMap<OwnedServerName, Instant>>,
    fetches: Semaphore,
}

fn now_ms() -> u64 {
    MilliSecondsSinceUnixEpoch::now().get().into()
}

impl KeyStore {
    pub fn new(
        store: Store,
        client: Arc<FederationClient>,
        notaries: Vec<OwnedServerName>,
    ) -> Self {
        Self {
            store,
            client,
            notaries,
            failures: Mutex::new(BoundedMap::new(MAX_FAILURES)),
            fetches: Semaphore::new(MAX_FETCHES),
        }
    }

    /// The keys of `server` named in `key_ids` that may be used for a
    /// signature made at `at` (ms), fetched when any is unknown or no
    /// longer valid then. Keys that are still missing are left out: the
    /// signature check then fails for them.
    pub async fn keys_at(
        &self,
        server: &ServerName,
        key_ids: &[String],
        at: u64,
    ) -> Result<BTreeMap<String, Base64>> {
        let known = self.usable(server, key_ids, at)?;
        if known.len() == key_ids.len() {
            return Ok(known);
        }
        match self.fetch(server).await {
            Ok(()) => self.usable(server, key_ids, at),
            Err(e) => {
                tracing::info!(%server, error = ?e, "no keys fetched");
                Ok(known)
            }
        }
    }

    /// A public key map with the keys of `server` for `key_ids` at `at`.
    pub async fn key_map(
        &self,
        server: &ServerName,
        key_ids: &[String],
        at: u64,
    ) -> Result<PublicKeyMap> {
        let keys = self.keys_at(server, key_ids, at).await?;
        Ok(PublicKeyMap::from([(server.to_string(), keys)]))
    }

    fn usable(
        &self,
        server: &ServerName,
        key_ids: &[String],
        at: u64,
    ) -> Result<BTreeMap<String, Base64>> {
        let mut out = BTreeMap::new();
        for key_id in key_ids {
            let record = tables::REMOTE_SERVER_KEYS
                .get(&self.store.db, &(server.to_string(), key_id.clone()))?;
            if let Some(record) = record.filter(|r| r.valid_until_ts >= at) {
                if let Ok(key) = Base64::parse(&record.key) {
                    out.insert(key_id.clone(), key);
                }
            }
        }
        Ok(out)
    }

    /// The signed key object last fetched from `server`, as received.
    pub fn last_response(&self, server: &ServerName) -> Result<Option<CanonicalJsonObject>> {
        let Some(bytes) = tables::REMOTE_KEY_RESPONSES.get(&self.store.db, server.as_str())? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::internal(format!("stored keys of {server}: {e}")))
    }

    /// Asks `server` for its keys, else the notaries; stores what checks.
    pub async fn fetch(&self, server: &ServerName) -> Result<()> {
        if let Some(failed) = self.failures.lock().get(server) {
            if failed.elapsed() < FAILURE_BACKOFF {
                return Err(Error::unavailable(format!(
                    "{server}: keys recently unavailable"
                )));
            }
        }
        let _permit = self
            .fetches
            .acquire()
            .await
            .map_err(|_| Error::internal("key fetches closed"))?;
        let result = match self.fetch_direct(server).await {
            Ok(answer) => self.keep(server, answer).await,
            Err(direct) => self.fetch_from_notaries(server).await.map_err(|_| direct),
        };
        match &result {
            Ok(()) => {
                self.failures.lock().remove(server);
            }
            Err(_) => {
                self.failures
                    .lock()
                    .insert(server.to_owned(), Instant::now(), Instant::now())
            }
        }
        result
    }

    async fn fetch_direct(&self, server: &ServerName) -> Result<Checked> {
        let response = self
            .client
            .send(server, get_server_keys::v2::Request::new())
            .await?;
        checked(server, &response.server_key)
    }

    async fn fetch_from_notaries(&self, server: &ServerName) -> Result<()> {
        for notary in &self.notaries {
            if notary == server || notary == self.client.origin() {
                continue;
            }
            match self.ask_notary(notary, server).await {
                Ok(answer) => return self.keep(server, answer).await,
                Err(e) => tracing::info!(%server, %notary, error = ?e, "notary gave no keys"),
            }
        }
        Err(Error::unavailable(format!("no keys for {server}")))
    }

    async fn ask_notary(&self, notary: &ServerName, server: &ServerName) -> Result<Checked> {
        let query = BTreeMap::from([(server.to_owned(), BTreeMap::new())]);
        let response = self
            .client
            .send(
                notary,
                get_remote_server_keys_batch::v2::Request::new(query),
            )
            .await?;
        let notary_keys = self.keys_of(notary).await?;
        for raw in &response.server_keys {
            let Ok(answer) = checked(server, raw) else {
                continue;
            };
            if signed_by(&answer.object, notary, notary_keys.clone()).is_ok() {
                return Ok(answer);
            }
        }
        Err(Error::unavailable(format!(
            "{notary} vouched for no keys of {server}"
        )))
    }

    /// Every key of `server` usable now (fetched directly if none is).
    async fn keys_of(&self, server: &ServerName) -> Result<BTreeMap<String, Base64>> {
        let usable = self.usable_now(server)?;
        if !usable.is_empty() {
            return Ok(usable);
        }
        let answer = self.fetch_direct(server).await?;
        self.keep(server, answer).await?;
        self.usable_now(server)
    }

    fn usable_now(&self, server: &ServerName) -> Result<BTreeMap<String, Base64>> {
        let prefix = matrixos_storage::typed::TextPair::prefix(server.as_str());
        let now = now_ms();
        let mut usable = BTreeMap::new();
        for record in tables::REMOTE_SERVER_KEYS.scan_prefix(&self.store.db, &prefix) {
            let ((_, key_id), record) = record?;
            if record.valid_until_ts >= now {
                if let Ok(key) = Base64::parse(&record.key) {
                    usable.insert(key_id, key);
                }
            }
        }
        Ok(usable)
    }

    /// Stores the keys of a checked answer.
    async fn keep(&self, server: &ServerName, answer: Checked) -> Result<()> {
        let Checked { object, keys } = answer;
        let fetched = now_ms();
        let valid_until =
            u64::from(keys.valid_until_ts.get()).min(fetched + MAX_VALIDITY.as_millis() as u64);
        let mut batch = Batch::new();
        let name = server.to_string();
        for (key_id, key) in &keys.verify_keys {
            let record = RemoteKey {
                key: key.key.encode(),
                valid_until_ts: valid_until,
            };
            tables::REMOTE_SERVER_KEYS.put(
                &mut batch,
                &(name.clone(), key_id.to_string()),
                &record,
            );
        }
        for (key_id, old) in &keys.old_verify_keys {
            let record = RemoteKey {
                key: old.key.encode(),
                valid_until_ts: old.expired_ts.get().into(),
            };
            tables::REMOTE_SERVER_KEYS.put(
                &mut batch,
                &(name.clone(), key_id.to_string()),
                &record,
            );
        }
        tables::REMOTE_KEY_RESPONSES.put(&mut batch, &name, &serde_json::to_vec(&object)?);
        self.store.commit(batch, Vec::new(), Wake::none()).await
    }
}

/// A key answer that passed [`checked`]: as received, and parsed.
struct Checked {
    object: CanonicalJsonObject,
    keys: ServerSigningKeys,
}

/// The key object in `raw` if it is for `server` and signed by every key
/// it lists as current.
fn checked(server: &ServerName, raw: &Raw<ServerSigningKeys>) -> Result<Checked> {
    let object: CanonicalJsonObject = serde_json::from_str(raw.json().get())
        .map_err(|e| Error::unavailable(format!("keys of {server} are not canonical JSON: {e}")))?;
    let keys: ServerSigningKeys = raw
        .deserialize()
        .map_err(|e| Error::unavailable(format!("keys of {server}: {e}")))?;
    if keys.server_name != server {
        return Err(Error::unavailable(format!(
            "asked for the keys of {server}, got those of {}",
            keys.server_name
        )));
    }
    let own: BTreeMap<String, Base64> = keys
        .verify_keys
        .iter()
        .map(|(id, key)| (id.to_string(), key.key.clone()))
        .collect();
    if own.is_empty() {
        return Err(Error::unavailable(format!("{server} lists no keys")));
    }
    let self_signatures = keys
        .signatures
        .get(server)
        .map(|s| s.keys().filter(|id| own.contains_key(id.as_str())).count())
        .unwrap_or(0);
    if self_signatures < own.len() {
        return Err(Error::unavailable(format!(
            "keys of {server} are not self-signed"
        )));
    }
    signed_by(&object, server, own)
        .map_err(|e| Error::unavailable(format!("keys of {server}: bad signature: {e}")))?;
    Ok(Checked { object, keys })
}

/// Checks the signatures of `signer` on `object` with `keys`, whoever
/// else signed it too.
pub fn signed_by(
    object: &CanonicalJsonObject,
    signer: &ServerName,
    keys: BTreeMap<String, Base64>,
) -> std::result::Result<(), ruma::signatures::VerificationError> {
    let mut only = object.clone();
    if let Some(CanonicalJsonValue::Object(signatures)) = only.get_mut("signatures") {
        signatures.retain(|entity, _| entity == signer.as_str());
    }
    let map = PublicKeyMap::from([(signer.to_string(), keys)]);
    ruma::signatures::verify_json(&map, &only)
}
