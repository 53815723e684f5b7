//! Keeps the index in step with the rooms: the append hook queues each
//! searchable event and each redaction in the event's write batch; the
//! indexer task drains the queue into the index, commits, and only then
//! deletes what it indexed from the queue. Indexing an event deletes any
//! document it already had, so a queue entry indexed twice (a crash
//! between the commit and the queue's deletion) leaves one document.
//! A new index is first built from every room's timeline.

use std::sync::{Arc, Weak};
use std::time::Duration;

use matrixos_storage::{tables, Batch, Direction};
use ruma::events::TimelineEventType;
use tantivy::{TantivyDocument, Term};

use super::text::{searched_text, Part};
use super::worker::Worker;
use super::{index_error, Search};
use crate::error::Result;
use crate::rooms::hooks::{AppendHook, Appended};
use crate::rooms::timeline::TimelinePos;
use crate::rooms::{Pdu, Rooms};
use crate::services::Services;

/// Queue entries indexed in one commit.
const ROUND: usize = 5_000;

/// Events read from a timeline at a time while building a new index.
const BUILD_PAGE: usize = 500;

/// A pause before a round, so that a burst of messages is one commit
/// (each commit writes a segment, and segments are merged later: under a
/// send load, commits every 30 ms took a fifth of a two-core machine; at
/// 500 ms, the indexer still took about 50 µs of CPU per message sent and
/// doubled the p99 of delivery). A search waits for the index to reach
/// its position and cuts the pause short.
const GATHER: Duration = Duration::from_millis(2000);

/// How long the indexer waits for work before it closes the index writer.
const IDLE: Duration = Duration::from_secs(20);

/// The payload of every commit once the index holds every room's
/// history (a new or interrupted index lacks it, and is built again).
const BUILT: &str = "built";

impl AppendHook for Search {
    fn appended(&self, _: &Rooms, batch: &mut Batch, event: &Appended<'_>) -> Result<()> {
        self.queue(batch, event.short_event, event.pdu);
        Ok(())
    }

    /// History fetched from peers is searchable like the rest.
    fn backfilled(&self, _: &Rooms, batch: &mut Batch, short_event: u64, pdu: &Pdu) -> Result<()> {
        self.queue(batch, short_event, pdu);
        Ok(())
    }
}

impl Search {
    /// Queues a searchable event or a redaction, in the batch that stores
    /// it (again, when its content changed: its document is made anew).
    pub(crate) fn queue(&self, batch: &mut Batch, short_event: u64, pdu: &Pdu) {
        if Part::of(&pdu.kind).is_some() || pdu.kind == TimelineEventType::RoomRedaction {
            tables::SEARCH_QUEUE.put(batch, &short_event, &());
            self.wake.notify_one();
        }
    }
}

/// Starts the indexer: it builds the index if it is new, then indexes
/// whatever is queued whenever woken, while the services live. The work
/// itself runs on the indexer's own low-priority thread.
pub fn start(services: &Arc<Services>) {
    let Some(search) = &services.search else {
        return;
    };
    let (wake, hurry) = (search.wake.clone(), search.hurry.clone());
    let services = Arc::downgrade(services);
    let worker = match Worker::start() {
        Ok(worker) => worker,
        Err(e) => {
            tracing::error!(error = %e, "the search indexer could not start");
            return;
        }
    };
    tokio::spawn(async move {
        let mut built = false;
        loop {
            if built {
                if tokio::time::timeout(IDLE, wake.notified()).await.is_err() {
                    if let Err(e) = close_writer(&worker, &services).await {
                        tracing::warn!(error = %e, "closing the search index writer failed");
                    }
                    wake.notified().await;
                }
                tokio::select! {
                    _ = tokio::time::sleep(GATHER) => {}
                    _ = hurry.notified() => {}
                }
            }
            match round(&worker, &services, built).await {
                Ok(Some(more)) => {
                    built = true;
                    if more {
                        wake.notify_one();
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(error = %e, "search indexing failed; retrying");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    });
}

fn worker_gone() -> crate::error::Error {
    index_error("the indexer's thread stopped")
}

/// Closes the idle index writer.
async fn close_writer(worker: &Worker, services: &Weak<Services>) -> Result<()> {
    let services = services.clone();
    let closed = worker.run(move || match services.upgrade() {
        Some(s) => s
            .search
            .as_ref()
            .map_or(Ok(()), |index| index.close_writer()),
        None => Ok(()),
    });
    closed.await.ok_or_else(worker_gone)?
}

/// One round: the build if not `built`, then the queue. `Some(true)` when
/// more is queued; `None` once the services are gone.
async fn round(worker: &Worker, services: &Weak<Services>, built: bool) -> Result<Option<bool>> {
    let services = services.clone();
    let done = worker.run(move || {
        let Some(s) = services.upgrade() else {
            return Ok(None);
        };
        let Some(index) = &s.search else {
            return Ok(None);
        };
        if !built {
            index.build_if_new(&s.rooms)?;
        }
        index.drain(&s).map(Some)
    });
    done.await.ok_or_else(worker_gone)?
}

impl Search {
    /// The document of an event, if it has searchable text and is in a
    /// room's timeline.
    fn document(&self, rooms: &Rooms, short: u64, pdu: &Pdu) -> Result<Option<TantivyDocument>> {
        let Some((part, text)) = searched_text(pdu) else {
            return Ok(None);
        };
        let Some(meta) = rooms.timeline_meta(short)? else {
            return Ok(None);
        };
        let f = &self.fields;
        let field = match part {
            Part::Body => f.body,
            Part::Name => f.name,
            Part::Topic => f.topic,
        };
        let mut doc = TantivyDocument::new();
        doc.add_u64(f.event, short);
        doc.add_u64(f.room, meta.room);
        doc.add_i64(f.order, meta.position().get());
        doc.add_text(field, &text);
        Ok(Some(doc))
    }

    /// Replaces an event's document with what it is now (none once it is
    /// redacted).
    fn reindex(&self, writer: &tantivy::IndexWriter, rooms: &Rooms, short: u64) -> Result<()> {
        writer.delete_term(Term::from_field_u64(self.fields.event, short));
        let pdu = rooms.pdu_by_short(short)?;
        if let Some(doc) = self.document(rooms, short, &pdu)? {
            writer.add_document(doc).map_err(index_error)?;
        }
        Ok(())
    }

    fn commit(&self, writer: &mut tantivy::IndexWriter) -> Result<()> {
        let mut commit = writer.prepare_commit().map_err(index_error)?;
        commit.set_payload(BUILT);
        commit.commit().map_err(index_error)?;
        self.reader.reload().map_err(index_error)
    }

    /// Indexes queued events: `true` when more are queued than one round
    /// takes.
    fn drain(&self, s: &Services) -> Result<bool> {
        // Everything written before this position is in the queue now.
        let upto = s.store.position();
        let queued: Vec<u64> = tables::SEARCH_QUEUE
            .scan_prefix(&s.store.db, &[])
            .take(ROUND)
            .map(|r| r.map(|(short, ())| short))
            .collect::<matrixos_storage::Result<_>>()?;
        let more = queued.len() == ROUND;
        if !queued.is_empty() {
            self.with_writer(|writer| self.index_queued(writer, s, &queued))?;
            let mut batch = Batch::new();
            for short in &queued {
                tables::SEARCH_QUEUE.delete(&mut batch, short);
            }
            s.store.db.write(batch)?;
        }
        if !more {
            self.indexed.send_if_modified(|at| {
                let raised = upto > *at;
                *at = (*at).max(upto);
                raised
            });
        }
        Ok(more)
    }

    /// Indexes the queued events (and the targets of queued redactions)
    /// and commits.
    fn index_queued(
        &self,
        writer: &mut tantivy::IndexWriter,
        s: &Services,
        queued: &[u64],
    ) -> Result<()> {
        for short in queued {
            let Ok(pdu) = s.rooms.pdu_by_short(*short) else {
                tracing::warn!(short, "a queued event cannot be read; not indexed");
                continue;
            };
            let target = match pdu.redacted_event() {
                Some(redacted) if pdu.kind == TimelineEventType::RoomRedaction => {
                    s.rooms.short_event(&redacted)?
                }
                _ => Some(*short),
            };
            if let Some(target) = target {
                if let Err(e) = self.reindex(writer, &s.rooms, target) {
                    tracing::warn!(target, error = %e, "an event could not be indexed");
                }
            }
        }
        self.commit(writer)
    }

    /// Builds the index from every room's timeline unless a build
    /// finished before.
    fn build_if_new(&self, rooms: &Rooms) -> Result<()> {
        let built = self.index.load_metas().map_err(index_error)?.payload;
        if built.as_deref() == Some(BUILT) {
            return Ok(());
        }
        let documents = self.with_writer(|writer| self.build_into(writer, rooms))?;
        tracing::info!(documents, "search index built");
        // A build is a one-off: the writer opens again for new events.
        self.close_writer()
    }

    /// Indexes every room's timeline afresh and commits; returns how many
    /// documents it made.
    fn build_into(&self, writer: &mut tantivy::IndexWriter, rooms: &Rooms) -> Result<usize> {
        writer.delete_all_documents().map_err(index_error)?;
        let mut documents = 0usize;
        for (short_room, _) in rooms.all_rooms()? {
            let mut from = TimelinePos::EARLIEST;
            loop {
                let page =
                    rooms.timeline(short_room, from, Direction::Forward, BUILD_PAGE, None)?;
                for entry in &page {
                    if let Some(doc) = self.document(rooms, entry.short, &entry.pdu)? {
                        writer.add_document(doc).map_err(index_error)?;
                        documents += 1;
                    }
                }
                match page.last() {
                    Some(last) if page.len() == BUILD_PAGE => from = last.pos,
                    _ => break,
                }
            }
        }
        self.commit(writer)?;
        Ok(documents)
    }
}
