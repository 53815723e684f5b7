//! `PUT /_matrix/federation/v1/send/{txnId}`: a transaction of PDUs and
//! EDUs from another server. One transaction per origin is processed at a
//! time; each is answered once and the answer kept, so a retried
//! transaction is answered the same without being processed again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use matrixos_storage::typed::TextPair;
use matrixos_storage::{tables, Batch};
use parking_lot::Mutex;
use ruma::api::federation::transactions::send_transaction_message::v1 as send;
use ruma::{OwnedServerName, ServerName};

use super::inbound::handle_pdu;
use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;
use crate::store::Wake;

/// The spec's limits on one transaction.
const MAX_PDUS: usize = 50;
const MAX_EDUS: usize = 100;
/// Origins whose lock is kept while unused before the map is swept.
const MAX_ORIGIN_LOCKS: usize = 10_000;

pub fn routes() -> Router<Arc<Services>> {
    Router::new().endpoint(transaction)
}

/// One lock per origin, so that its transactions are taken in turn.
#[derive(Default)]
pub struct OriginLocks {
    locks: Mutex<HashMap<OwnedServerName, Arc<tokio::sync::Mutex<()>>>>,
}

impl OriginLocks {
    fn of(&self, origin: &ServerName) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock();
        if locks.len() >= MAX_ORIGIN_LOCKS {
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        locks.entry(origin.to_owned()).or_default().clone()
    }
}

async fn transaction(s: Arc<Services>, req: Ruma<send::Request>) -> Result<send::Response> {
    let Ruma { body, caller, .. } = req;
    let origin = caller.0;
    if body.origin != origin {
        return Err(Error::forbidden(
            "The transaction's origin is not the server that sent it",
        ));
    }
    if body.pdus.len() > MAX_PDUS || body.edus.len() > MAX_EDUS {
        return Err(Error::bad_json(format!(
            "A transaction holds at most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs"
        )));
    }
    let key = (origin.to_string(), body.transaction_id.to_string());
    let lock = s.federation.origin_locks.of(&origin);
    let _turn = lock.lock().await;
    if let Some(answer) = tables::INBOUND_TRANSACTIONS.get(&s.store.db, &key)? {
        return answered(&answer);
    }
    super::sender::forget_backoff(&s, &origin).await?;
    let mut results = BTreeMap::new();
    let mut writes = Vec::new();
    for raw in &body.pdus {
        if let Some(handled) = handle_pdu(&s, &origin, raw).await {
            results.insert(handled.event_id, handled.outcome);
            writes.extend(handled.durable);
        }
    }
    // Answered only once every accepted PDU is durable: a failed write
    // fails the transaction, which the origin then sends again.
    for write in writes {
        write.await?;
    }
    for edu in &body.edus {
        super::edus::handle_edu(&s, &origin, edu.json()).await;
    }
    let response = send::Response::new(results);
    let mut batch = Batch::new();
    // An origin sends one transaction at a time and retries only the one
    // it has no answer for: the answers before this one are never asked
    // for again, so only the latest is kept.
    let prefix = TextPair::prefix(origin.as_str());
    for row in tables::INBOUND_TRANSACTIONS.scan_prefix(&s.store.db, &prefix) {
        tables::INBOUND_TRANSACTIONS.delete(&mut batch, &row?.0);
    }
    tables::INBOUND_TRANSACTIONS.put(&mut batch, &key, &serialize(&response)?);
    s.store.commit(batch, Vec::new(), Wake::none()).await?;
    Ok(response)
}

/// The stored form of an answer: event id → error, if any.
fn serialize(response: &send::Response) -> Result<Vec<u8>> {
    let map: BTreeMap<String, Option<&String>> = response
        .pdus
        .iter()
        .map(|(id, result)| (id.to_string(), result.as_ref().err()))
        .collect();
    Ok(serde_json::to_vec(&map)?)
}

fn answered(stored: &[u8]) -> Result<send::Response> {
    let map: BTreeMap<String, Option<String>> = serde_json::from_slice(stored)
        .map_err(|e| Error::internal(format!("stored transaction answer: {e}")))?;
    let mut pdus = BTreeMap::new();
    for (id, error) in map {
        let id = ruma::OwnedEventId::try_from(id)
            .map_err(|e| Error::internal(format!("stored transaction answer: {e}")))?;
        pdus.insert(id, error.map_or(Ok(()), Err));
    }
    Ok(send::Response::new(pdus))
}
