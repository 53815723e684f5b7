//! What the AI keeps in RocksDB: AI user records, per-room histories and
//! the run ledger.

use matrixos_kernel::llm::Message;
use matrixos_kernel::RunRecord;
use matrixos_storage::{keys, Batch, Db, Direction, Table};
use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};
use serde::{Deserialize, Serialize};

use crate::error::Result;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AiUserRecord {
    pub owner: OwnedUserId,
    /// Off when an admin disabled this person's AI.
    pub enabled: bool,
    /// The owner's direct-message room with the AI, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dm_room: Option<OwnedRoomId>,
}

pub fn get(db: &Db, ai: &UserId) -> Result<Option<AiUserRecord>> {
    match db.get(Table::AiUsers, ai.as_bytes())? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

pub fn put(batch: &mut Batch, ai: &UserId, record: &AiUserRecord) -> Result<()> {
    batch.put(
        Table::AiUsers,
        ai.as_bytes().to_vec(),
        serde_json::to_vec(record)?,
    );
    Ok(())
}

pub fn all(db: &Db) -> Result<Vec<(OwnedUserId, AiUserRecord)>> {
    let mut out = Vec::new();
    for entry in db.scan_prefix(Table::AiUsers, b"") {
        let (key, value) = entry?;
        let Ok(ai) = UserId::parse(String::from_utf8_lossy(&key).as_ref()) else {
            continue;
        };
        out.push((ai, serde_json::from_slice(&value)?));
    }
    Ok(out)
}

fn history_key(ai: &UserId, room: &RoomId) -> Vec<u8> {
    keys::join(&[ai.as_bytes(), room.as_bytes()])
}

pub fn history(db: &Db, ai: &UserId, room: &RoomId) -> Result<Vec<Message>> {
    match db.get(Table::AiHistory, &history_key(ai, room))? {
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
    batch.put(
        Table::AiHistory,
        history_key(ai, room),
        serde_json::to_vec(history)?,
    );
    Ok(())
}

fn run_prefix(owner: &str) -> Vec<u8> {
    keys::join(&[owner.as_bytes(), b""])
}

/// Appends a run to the ledger; `sequence` keeps same-millisecond runs apart.
pub fn put_run(batch: &mut Batch, record: &RunRecord, sequence: u64) -> Result<()> {
    let mut key = run_prefix(&record.owner);
    key.extend_from_slice(&(record.started_ms.max(0) as u64).to_be_bytes());
    key.extend_from_slice(&sequence.to_be_bytes());
    batch.put(Table::AiRuns, key, serde_json::to_vec(record)?);
    Ok(())
}

/// The owner's runs, newest first, started at or after `since_ms`.
pub fn runs(db: &Db, owner: &str, since_ms: i64, limit: usize) -> Result<Vec<RunRecord>> {
    let prefix = run_prefix(owner);
    let mut start = prefix.clone();
    start.extend_from_slice(&[0xff; 16]);
    let mut out = Vec::new();
    for entry in db.scan_from(Table::AiRuns, &prefix, &start, Direction::Backward) {
        let (_, value) = entry?;
        let record: RunRecord = serde_json::from_slice(&value)?;
        if record.started_ms < since_ms || out.len() >= limit {
            break;
        }
        out.push(record);
    }
    Ok(out)
}
