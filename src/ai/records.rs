//! What the AI keeps in RocksDB: AI user records, per-room histories and
//! the run ledger.

use matrixos_kernel::llm::Message;
use matrixos_kernel::RunRecord;
use matrixos_storage::tables::{AI_HISTORY, AI_RUNS, AI_USERS};
use matrixos_storage::typed::TextAndTwoU64;
use matrixos_storage::{Batch, Db, Direction};
use ruma::{OwnedUserId, RoomId, UserId};

use crate::error::Result;

pub use matrixos_storage::records::AiUserRecord;

pub fn get(db: &Db, ai: &UserId) -> Result<Option<AiUserRecord>> {
    Ok(AI_USERS.get(db, ai.as_str())?)
}

pub fn put(batch: &mut Batch, ai: &UserId, record: &AiUserRecord) -> Result<()> {
    AI_USERS.put(batch, ai.as_str(), record);
    Ok(())
}

pub fn all(db: &Db) -> Result<Vec<(OwnedUserId, AiUserRecord)>> {
    let mut out = Vec::new();
    for entry in AI_USERS.scan_prefix(db, b"") {
        let (ai, record) = entry?;
        if let Ok(ai) = UserId::parse(ai) {
            out.push((ai, record));
        }
    }
    Ok(out)
}

fn history_key(ai: &UserId, room: &RoomId) -> (String, String) {
    (ai.to_string(), room.to_string())
}

pub fn history(db: &Db, ai: &UserId, room: &RoomId) -> Result<Vec<Message>> {
    match AI_HISTORY.get(db, &history_key(ai, room))? {
        Some(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(error = %e, ai = %ai, room = %room, "unreadable AI history; starting afresh");
            Vec::new()
        })),
        None => Ok(Vec::new()),
    }
}

pub fn put_history(
    batch: &mut Batch,
    ai: &UserId,
    room: &RoomId,
    history: &[Message],
) -> Result<()> {
    AI_HISTORY.put(batch, &history_key(ai, room), &serde_json::to_vec(history)?);
    Ok(())
}

/// Appends a run to the ledger; `sequence` keeps same-millisecond runs apart.
pub fn put_run(batch: &mut Batch, record: &RunRecord, sequence: u64) -> Result<()> {
    let key = (
        record.owner.clone(),
        record.started_ms.max(0) as u64,
        sequence,
    );
    AI_RUNS.put(batch, &key, &serde_json::to_vec(record)?);
    Ok(())
}

/// The owner's runs, newest first, started at or after `since_ms`.
pub fn runs(db: &Db, owner: &str, since_ms: i64, limit: usize) -> Result<Vec<RunRecord>> {
    let prefix = TextAndTwoU64::prefix(owner, None);
    let start = (owner.to_owned(), u64::MAX, u64::MAX);
    let mut out = Vec::new();
    for entry in AI_RUNS.scan(db, &prefix, &start, Direction::Backward) {
        let (_, value) = entry?;
        let record: RunRecord = serde_json::from_slice(&value)?;
        if record.started_ms < since_ms || out.len() >= limit {
            break;
        }
        out.push(record);
    }
    Ok(out)
}
