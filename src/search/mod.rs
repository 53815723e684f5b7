//! Full-text search over room messages, names and topics (`/search`), in
//! a tantivy index beside the database. The index follows the rooms
//! through a durable queue: an append hook adds every searchable event
//! (and every redaction) to a table in the event's own write batch, and
//! the indexer drains it into the index, so nothing acknowledged is left
//! out after a crash. Searches first wait (briefly) for the indexer to
//! catch up with what was written before them, so a message is found as
//! soon as its sender has been told it was sent.

mod indexer;
pub mod query;
pub mod text;
pub mod tokens;
mod worker;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermSetQuery};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument};
use tokio::sync::{watch, Notify};

use crate::error::{Error, Result};
pub use indexer::start;
use query::Parsed;

/// The index's directory under the data directory; a new schema gets a
/// new name, and the index is then built again from the rooms.
pub(crate) const DIRECTORY: &str = "search-v1";

/// The indexer's memory before it writes a segment out.
const WRITER_MEMORY: usize = 16 << 20;

/// How long a search waits for the indexer to catch up before it
/// answers from what is indexed.
const CATCH_UP: Duration = Duration::from_secs(5);

/// The indexed fields of a document (one per searchable event).
#[derive(Clone, Copy)]
struct Fields {
    /// The event's short id.
    event: Field,
    /// Its room's short id.
    room: Field,
    /// Its place in the room's timeline (`TimelinePos`): newest first for
    /// `order_by: recent`.
    order: Field,
    body: Field,
    name: Field,
    topic: Field,
}

/// What a search may look in: `content.body`, `content.name`,
/// `content.topic` (the spec's `keys`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Keys {
    pub body: bool,
    pub name: bool,
    pub topic: bool,
}

/// Results newest first, or best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ranking {
    Recent,
    Rank,
}

/// One search of the index.
pub struct Ask<'a> {
    pub term: &'a Parsed,
    pub keys: Keys,
    /// Short ids of the rooms to search.
    pub rooms: &'a [u64],
    pub ranking: Ranking,
    /// `Recent`: only events placed before this.
    pub before: Option<i64>,
    /// `Rank`: how many of the best to pass over.
    pub skip: usize,
    pub take: usize,
}

/// An event the index found.
#[derive(Clone, Copy, Debug)]
pub struct Hit {
    pub short_event: u64,
    pub order: i64,
    pub score: f32,
}

pub struct Search {
    index: Index,
    reader: IndexReader,
    /// Open only while there is indexing to do: an idle writer holds its
    /// hash table (a few MiB) for nothing.
    writer: Mutex<Option<IndexWriter>>,
    fields: Fields,
    analyzer: TextAnalyzer,
    /// The stream position up to which every event is indexed.
    indexed: watch::Sender<u64>,
    /// Wakes the indexer (which holds it, and not the index, while it
    /// waits: a dropped index wakes it to end).
    wake: Arc<Notify>,
    /// A search is waiting for the indexer: index now, without gathering.
    hurry: Arc<Notify>,
}

impl Drop for Search {
    fn drop(&mut self) {
        self.wake.notify_one();
    }
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let number = || NumericOptions::default().set_indexed().set_fast();
    let text = || {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokens::ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
    };
    let fields = Fields {
        event: builder.add_u64_field("event", number().set_stored()),
        room: builder.add_u64_field("room", number()),
        order: builder.add_i64_field("order", number()),
        body: builder.add_text_field("body", text()),
        name: builder.add_text_field("name", text()),
        topic: builder.add_text_field("topic", text()),
    };
    (builder.build(), fields)
}

fn index_error(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("search index: {e}"))
}

impl Search {
    /// Runs `work` with the index writer, opening it if it is closed.
    fn with_writer<T>(&self, work: impl FnOnce(&mut IndexWriter) -> Result<T>) -> Result<T> {
        let mut writer = self.writer.lock();
        let writer = match &mut *writer {
            Some(writer) => writer,
            None => {
                let options = tantivy::indexer::IndexWriterOptions::builder()
                    .memory_budget_per_thread(WRITER_MEMORY)
                    .num_worker_threads(1)
                    .num_merge_threads(1)
                    .build();
                writer.insert(
                    self.index
                        .writer_with_options(options)
                        .map_err(index_error)?,
                )
            }
        };
        work(writer)
    }

    /// Closes the writer once its merges are done (the indexer calls this
    /// when it has been idle a while), and hands the memory it held back to
    /// the system: its operation queue alone takes about 5 MiB, which the
    /// allocator would otherwise keep while the server idles.
    fn close_writer(&self) -> Result<()> {
        let writer = self.writer.lock().take();
        let Some(writer) = writer else {
            return Ok(());
        };
        let closed = writer.wait_merging_threads().map_err(index_error);
        crate::alloc::release_freed_memory();
        closed
    }

    /// The index, when the configuration keeps one. When it does not, an
    /// index left from before is deleted, so that it is built afresh (with
    /// what was sent meanwhile) once search is on again.
    pub fn open_if_enabled(config: &crate::config::Config) -> Result<Option<Arc<Self>>> {
        if config.enable_search {
            return Self::open(&config.data_dir).map(Some);
        }
        match std::fs::remove_dir_all(config.data_dir.join(DIRECTORY)) {
            Ok(()) => tracing::info!("search is off: its index was deleted"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(index_error(e)),
        }
        Ok(None)
    }

    /// Opens (or creates) the index under the data directory.
    pub fn open(data_dir: &Path) -> Result<Arc<Self>> {
        let dir = data_dir.join(DIRECTORY);
        std::fs::create_dir_all(&dir).map_err(index_error)?;
        let (schema, fields) = schema();
        let index = Index::open_or_create(MmapDirectory::open(&dir).map_err(index_error)?, schema)
            .map_err(index_error)?;
        index
            .tokenizers()
            .register(tokens::ANALYZER, tokens::analyzer());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(index_error)?;
        Ok(Arc::new(Self {
            index,
            reader,
            writer: Mutex::new(None),
            fields,
            analyzer: tokens::analyzer(),
            indexed: watch::Sender::new(0),
            wake: Arc::new(Notify::new()),
            hurry: Arc::new(Notify::new()),
        }))
    }

    /// The analyzer searches and highlights use.
    pub fn analyzer(&self) -> TextAnalyzer {
        self.analyzer.clone()
    }

    /// Waits until everything written before `position` is indexed (at
    /// most a few seconds; then the search goes on with what is).
    pub async fn caught_up(&self, position: u64) {
        let mut indexed = self.indexed.subscribe();
        if *indexed.borrow() >= position {
            return;
        }
        self.wake.notify_one();
        self.hurry.notify_one();
        let reached = indexed.wait_for(|at| *at >= position);
        if tokio::time::timeout(CATCH_UP, reached).await.is_err() {
            tracing::warn!(position, "search answers before the index caught up");
        }
    }

    /// The query for an ask, `None` when nothing can match.
    fn query(&self, ask: &Ask<'_>, paged: bool) -> Option<Box<dyn Query>> {
        let f = &self.fields;
        let fields: Vec<Field> = [
            (ask.keys.body, f.body),
            (ask.keys.name, f.name),
            (ask.keys.topic, f.topic),
        ]
        .into_iter()
        .filter_map(|(on, field)| on.then_some(field))
        .collect();
        if fields.is_empty() || ask.rooms.is_empty() {
            return None;
        }
        let words = ask.term.query(&mut self.analyzer(), &fields)?;
        let rooms = TermSetQuery::new(
            ask.rooms
                .iter()
                .map(|r| tantivy::Term::from_field_u64(f.room, *r)),
        );
        let mut all: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, words), (Occur::Must, Box::new(rooms))];
        if let (true, Some(before)) = (paged, ask.before) {
            let below = RangeQuery::new(
                std::ops::Bound::Unbounded,
                std::ops::Bound::Excluded(tantivy::Term::from_field_i64(f.order, before)),
            );
            all.push((Occur::Must, Box::new(below)));
        }
        Some(Box::new(BooleanQuery::new(all)))
    }

    /// The events that match, in the order asked, and how many match in
    /// all (every page of them).
    pub fn find(&self, ask: &Ask<'_>) -> Result<(Vec<Hit>, usize)> {
        let (Some(all), Some(page)) = (self.query(ask, false), self.query(ask, true)) else {
            return Ok((Vec::new(), 0));
        };
        let searcher = self.reader.searcher();
        let count = searcher.search(&all, &Count).map_err(index_error)?;
        if ask.take == 0 {
            return Ok((Vec::new(), count));
        }
        let found: Vec<(f32, i64, DocAddress)> = match ask.ranking {
            Ranking::Recent => searcher
                .search(
                    &page,
                    &TopDocs::with_limit(ask.take).order_by_fast_field::<i64>("order", Order::Desc),
                )
                .map_err(index_error)?
                .into_iter()
                .map(|(order, address)| (0.0, order, address))
                .collect(),
            Ranking::Rank => searcher
                .search(&page, &TopDocs::with_limit(ask.take).and_offset(ask.skip))
                .map_err(index_error)?
                .into_iter()
                .map(|(score, address)| (score, 0, address))
                .collect(),
        };
        let mut hits = Vec::with_capacity(found.len());
        for (score, order, address) in found {
            let doc: TantivyDocument = searcher.doc(address).map_err(index_error)?;
            let Some(short_event) = doc.get_first(self.fields.event).and_then(|v| v.as_u64())
            else {
                continue;
            };
            hits.push(Hit {
                short_event,
                order,
                score,
            });
        }
        Ok((hits, count))
    }
}
