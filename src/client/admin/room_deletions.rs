//! The deletions asked for through v2 (`DELETE /v2/rooms/{id}`), kept in
//! the database so that their status outlives a restart, as Synapse's
//! scheduled tasks do: at most [`MAX_KEPT`], the oldest finished forgotten
//! first. Each keeps its request, so that one still running when the
//! server stopped is taken up again when it starts (`room_delete`): from
//! the start while it was shutting the room down, else only the purge.

use matrixos_storage::records::{DeletionRequest, RoomDeletionRecord, ShutdownRecord};
use matrixos_storage::tables::{ROOM_DELETIONS, ROOM_DELETIONS_PART};
use matrixos_storage::typed::Parts;
use matrixos_storage::Batch;
use ruma::RoomId;

use crate::error::{Error, Result};
use crate::services::Services;

/// How many deletions are remembered for their status.
const MAX_KEPT: usize = 100;

/// One deletion's progress.
#[derive(Clone, Copy)]
pub enum Stage {
    ShuttingDown,
    Purging,
}

impl Stage {
    /// The stage a status names, for one still running.
    pub fn of(status: &str) -> Option<Self> {
        match status {
            "shutting_down" => Some(Stage::ShuttingDown),
            "purging" => Some(Stage::Purging),
            _ => None,
        }
    }

    fn status(self) -> &'static str {
        match self {
            Stage::ShuttingDown => "shutting_down",
            Stage::Purging => "purging",
        }
    }
}

/// Starting deletions one at a time: two for the same room would both see
/// none running.
static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn key(delete_id: &str) -> [String; 2] {
    [ROOM_DELETIONS_PART.to_owned(), delete_id.to_owned()]
}

fn write(s: &Services, record: &RoomDeletionRecord) -> Result<()> {
    let mut batch = Batch::new();
    ROOM_DELETIONS.put(&mut batch, &key(&record.delete_id), record);
    Ok(s.store.db.write(batch)?)
}

/// Every deletion remembered, oldest first.
pub fn all(s: &Services) -> Result<Vec<RoomDeletionRecord>> {
    let prefix = Parts::prefix(&[ROOM_DELETIONS_PART]);
    let mut out = ROOM_DELETIONS
        .scan_prefix(&s.store.db, &prefix)
        .map(|item| item.map(|(_, record)| record))
        .collect::<matrixos_storage::Result<Vec<_>>>()?;
    out.sort_by_key(|d| d.started_ts);
    Ok(out)
}

/// One deletion, if remembered.
pub fn by_id(s: &Services, delete_id: &str) -> Result<Option<RoomDeletionRecord>> {
    Ok(ROOM_DELETIONS.get(&s.store.db, &key(delete_id))?)
}

/// Records a new deletion of `room`; 400 while another is running.
pub async fn start(s: &Services, room: &RoomId, request: DeletionRequest) -> Result<String> {
    let _starting = STARTING.lock().await;
    let mut kept = all(s)?;
    if kept
        .iter()
        .any(|d| d.room_id == room.as_str() && d.active())
    {
        return Err(Error::new(
            http::StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            format!("History purge already in progress for {room}"),
        ));
    }
    let mut batch = Batch::new();
    while kept.len() >= MAX_KEPT {
        let oldest = kept.iter().position(|d| !d.active()).unwrap_or(0);
        ROOM_DELETIONS.delete(&mut batch, &key(&kept.remove(oldest).delete_id));
    }
    let record = RoomDeletionRecord {
        delete_id: crate::random::random_string(16),
        room_id: room.to_string(),
        status: Stage::ShuttingDown.status().to_owned(),
        error: None,
        shutdown_room: ShutdownRecord::default(),
        started_ts: crate::services::accounts::now_ms(),
        request: Some(request),
    };
    ROOM_DELETIONS.put(&mut batch, &key(&record.delete_id), &record);
    s.store.db.write(batch)?;
    Ok(record.delete_id)
}

/// Changes a remembered deletion's record.
fn update(
    s: &Services,
    delete_id: &str,
    change: impl FnOnce(&mut RoomDeletionRecord),
) -> Result<()> {
    let Some(mut record) = by_id(s, delete_id)? else {
        return Ok(());
    };
    change(&mut record);
    write(s, &record)
}

/// Notes that a deletion reached `stage`, with what it did so far.
pub fn reached(s: &Services, delete_id: &str, stage: Stage, done: &ShutdownRecord) -> Result<()> {
    update(s, delete_id, |record| {
        record.status = stage.status().to_owned();
        record.shutdown_room = done.clone();
    })
}

/// Records how a deletion ended.
pub fn finish(s: &Services, delete_id: &str, outcome: Result<ShutdownRecord>) -> Result<()> {
    update(s, delete_id, |record| match outcome {
        Ok(done) => {
            record.status = "complete".to_owned();
            record.shutdown_room = done;
        }
        Err(e) => fail(record, e.message),
    })
}

fn fail(record: &mut RoomDeletionRecord, error: String) {
    record.status = "failed".to_owned();
    record.error = Some(error);
}

/// At start-up: the deletions the last run left unfinished, to take up
/// again. One whose request was not kept (from an older version) is
/// failed instead.
pub fn interrupted(s: &Services) -> Result<Vec<RoomDeletionRecord>> {
    let mut resumable = Vec::new();
    for mut record in all(s)?.into_iter().filter(RoomDeletionRecord::active) {
        tracing::warn!(room = %record.room_id, delete_id = %record.delete_id,
            status = %record.status, "a room deletion was interrupted by a restart");
        if record.request.is_some() {
            resumable.push(record);
            continue;
        }
        fail(
            &mut record,
            "The server stopped during the deletion".to_owned(),
        );
        write(s, &record)?;
    }
    Ok(resumable)
}
