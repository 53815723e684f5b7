//! Matrix OS storage: the only crate that touches RocksDB.
//!
//! Services above this crate see typed tables ([`tables`]: each table with
//! the codecs of its keys and values), atomic write batches ([`Batch`]) and
//! the stream counter ([`StreamCounter`]); they never see RocksDB types. Every logical write is
//! one batch, so a crash leaves all of it or none of it.

pub mod backup_keys;
mod batch;
mod cache_tier;
mod counter;
mod db;
mod error;
pub mod keys;
pub mod records;
mod table;
pub mod tables;
pub mod typed;
mod wire;
mod writer;

pub use batch::Batch;
pub use cache_tier::from_memory;
pub use counter::{CountGuard, StreamCounter};
pub use db::{Db, DbOptions, Direction};
pub use error::{Error, Result};
pub use table::Table;
pub use writer::GroupWriter;
