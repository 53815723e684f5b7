//! Sending the outbox: one task per destination, one transaction in flight
//! each, at most 50 PDUs and 100 EDUs a transaction, oldest first. A
//! transaction that fails is retried after a backoff that doubles (2 s up
//! to 5 minutes) and is kept in RocksDB, so a restart neither forgets
//! what is owed nor hammers a server that is down; a destination that
//! sends us a transaction is taken to be back and retried at once.

use std::sync::{Arc, Weak};
use std::time::Duration;

use matrixos_storage::records::DestinationRecord;
use matrixos_storage::{tables, Batch};
use ruma::api::federation::transactions::send_transaction_message::v1 as send_transaction;
use ruma::serde::Raw;
use ruma::{MilliSecondsSinceUnixEpoch, OwnedServerName, OwnedTransactionId, ServerName};
use serde_json::value::RawValue as RawJsonValue;

use super::outbox::{Outbox, SenderSignals};
use crate::error::{Error, Result};
use crate::services::Services;
use crate::store::Wake;

const MAX_PDUS: usize = 50;
const MAX_EDUS: usize = 100;
/// A transaction stops growing past this many bytes of PDUs and EDUs (one
/// row always goes, however big), well under what servers accept (10 MiB
/// here, more on Synapse).
const MAX_TRANSACTION_BYTES: usize = 4 << 20;
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

fn now_ms() -> u64 {
    MilliSecondsSinceUnixEpoch::now().get().into()
}

/// Starts the dispatcher, which wakes destinations once what the append
/// hook queued is durable, and the senders of destinations with rows left
/// from before a restart.
pub fn start(services: &Arc<Services>) {
    let outbox = &services.federation.outbox;
    if outbox.services.set(Arc::downgrade(services)).is_err() {
        return;
    }
    match Outbox::queued_destinations(services) {
        Ok(destinations) => {
            for destination in destinations {
                outbox.wake(&destination);
            }
        }
        Err(e) => tracing::error!(error = %e, "reading the federation outbox"),
    }
    tokio::spawn(dispatch(Arc::downgrade(services)));
}

async fn dispatch(services: Weak<Services>) {
    let Some(s) = services.upgrade() else {
        return;
    };
    let mut visible = s.store.subscribe();
    drop(s);
    loop {
        // Only the outbox is held while waiting: the services (and the
        // database) must be free to go.
        let outbox = {
            let Some(s) = services.upgrade() else {
                return;
            };
            let outbox = s.federation.outbox.clone();
            for destination in outbox.take_pending(s.store.position()) {
                outbox.wake(&destination);
            }
            outbox
        };
        tokio::select! {
            changed = visible.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = outbox.pending_added() => {}
        }
    }
}

/// One destination's rows, oldest first, within a transaction's limits.
struct Rows {
    keys: Vec<(String, u64, u64)>,
    pdus: Vec<Box<RawJsonValue>>,
    edus: Vec<Raw<ruma::api::federation::transactions::edu::Edu>>,
}

fn next_rows(s: &Services, destination: &ServerName) -> Result<Rows> {
    let prefix = Outbox::prefix(destination);
    let mut rows = Rows {
        keys: Vec::new(),
        pdus: Vec::new(),
        edus: Vec::new(),
    };
    let mut bytes = 0usize;
    for row in tables::FEDERATION_OUTBOX.scan_prefix(&s.store.db, &prefix) {
        let (key, value) = row?;
        let is_pdu = key.2 == tables::OUTBOX_PDU;
        let taken = if is_pdu {
            rows.pdus.len() >= MAX_PDUS
        } else {
            rows.edus.len() >= MAX_EDUS
        };
        if taken {
            break;
        }
        let payload = match payload(s, is_pdu, &value) {
            Ok(payload) => payload,
            Err(e) => {
                // Dropped with the transaction's rows.
                tracing::warn!(error = %e, "outbox row unreadable: dropped");
                rows.keys.push(key);
                continue;
            }
        };
        let size = payload.get().len();
        if !rows.keys.is_empty() && bytes + size > MAX_TRANSACTION_BYTES {
            break;
        }
        bytes += size;
        if is_pdu {
            rows.pdus.push(payload);
        } else {
            rows.edus.push(Raw::from_json(payload));
        }
        rows.keys.push(key);
    }
    Ok(rows)
}

/// What an outbox row stands for: the signed event a PDU row names by its
/// short id, or the EDU it holds.
fn payload(s: &Services, is_pdu: bool, value: &[u8]) -> Result<Box<RawJsonValue>> {
    if !is_pdu {
        return Ok(serde_json::from_slice(value)?);
    }
    let short = value
        .try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| Error::internal("corrupt outbox row"))?;
    super::events::signed_raw(s, short)
}

/// A destination's sender: runs while the services live.
pub(super) async fn run(
    services: Weak<Services>,
    destination: OwnedServerName,
    signals: Arc<SenderSignals>,
) {
    loop {
        let Some(s) = services.upgrade() else {
            return;
        };
        let wait = match send_next(&s, &destination).await {
            Ok(true) => continue,
            Ok(false) => None,
            Err(e) => {
                tracing::info!(%destination, error = %e, "federation transaction failed");
                match backoff(&s, &destination).await {
                    Ok(wait) => Some(wait),
                    Err(e) => {
                        tracing::error!(%destination, error = %e, "recording a backoff");
                        Some(MAX_BACKOFF)
                    }
                }
            }
        };
        let wait = wait.or_else(|| retry_left(&s, &destination));
        drop(s);
        match wait {
            Some(wait) => {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = signals.back.notified() => {}
                }
            }
            None => signals.queued.notified().await,
        }
    }
}

/// How long a destination still waits out its backoff.
fn retry_left(s: &Services, destination: &ServerName) -> Option<Duration> {
    let record = tables::FEDERATION_DESTINATIONS
        .get(&s.store.db, destination.as_str())
        .ok()
        .flatten()?;
    let now = now_ms();
    (record.retry_at > now).then(|| Duration::from_millis(record.retry_at - now))
}

/// Sends the next transaction, if there is one; `Ok(true)` when one went
/// out (there may be more).
async fn send_next(s: &Arc<Services>, destination: &ServerName) -> Result<bool> {
    if retry_left(s, destination).is_some() {
        return Ok(false);
    }
    let rows = next_rows(s, destination)?;
    if rows.keys.is_empty() {
        return Ok(false);
    }
    let first = rows.keys.first().map_or(0, |k| k.1);
    let last = rows.keys.last().map_or(0, |k| k.1);
    let txn_id = OwnedTransactionId::from(format!("{first}.{last}.{}", rows.keys.len()));
    let mut request = send_transaction::Request::new(
        txn_id,
        s.server_name.clone(),
        MilliSecondsSinceUnixEpoch::now(),
    );
    request.pdus = rows.pdus;
    request.edus = rows.edus;
    match s.federation.client.send(destination, request).await {
        Ok(response) => {
            s.metrics.transaction(crate::metrics::Transaction::Sent);
            for (event, result) in &response.pdus {
                if let Err(error) = result {
                    tracing::info!(%destination, %event, %error, "destination refused a PDU");
                }
            }
        }
        // Sent again, it would be refused again, and hold up everything
        // behind it: it is dropped (as Synapse does; the destination
        // catches up on rooms from their next events).
        Err(e) if e.peer_refused => {
            s.metrics.transaction(crate::metrics::Transaction::Refused);
            tracing::warn!(%destination, error = %e, rows = rows.keys.len(),
                "destination refused a transaction for good: dropped");
        }
        Err(e) => {
            s.metrics.transaction(crate::metrics::Transaction::Failed);
            return Err(e);
        }
    }
    let mut batch = Batch::new();
    for key in &rows.keys {
        tables::FEDERATION_OUTBOX.delete(&mut batch, key);
    }
    tables::FEDERATION_DESTINATIONS.delete(&mut batch, destination.as_str());
    s.store.commit(batch, Vec::new(), Wake::none()).await?;
    Ok(true)
}

/// Records one more failure; returns how long to wait.
async fn backoff(s: &Services, destination: &ServerName) -> Result<Duration> {
    let mut record: DestinationRecord = tables::FEDERATION_DESTINATIONS
        .get(&s.store.db, destination.as_str())?
        .unwrap_or_default();
    record.failures = record.failures.saturating_add(1);
    let doubling = record.failures.saturating_sub(1).min(16);
    let wait = FIRST_BACKOFF
        .saturating_mul(1u32 << doubling)
        .min(MAX_BACKOFF);
    record.retry_at = now_ms() + wait.as_millis() as u64;
    let mut batch = Batch::new();
    tables::FEDERATION_DESTINATIONS.put(&mut batch, destination.as_str(), &record);
    s.store.commit(batch, Vec::new(), Wake::none()).await?;
    Ok(wait)
}

/// Clears a destination's backoff (it showed it is up).
pub async fn forget_backoff(s: &Services, destination: &ServerName) -> Result<()> {
    if tables::FEDERATION_DESTINATIONS
        .get(&s.store.db, destination.as_str())?
        .is_none()
    {
        return Ok(());
    }
    let mut batch = Batch::new();
    tables::FEDERATION_DESTINATIONS.delete(&mut batch, destination.as_str());
    s.store.commit(batch, Vec::new(), Wake::none()).await?;
    s.federation.outbox.peer_is_back(destination);
    Ok(())
}
