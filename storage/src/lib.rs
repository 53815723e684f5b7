//! Matrix OS storage: the only crate that touches RocksDB.
//!
//! Services above this crate see column families ([`Table`]), atomic write
//! batches ([`Batch`]), key encoders ([`keys`]) and the stream counter
//! ([`StreamCounter`]); they never see RocksDB types. Every logical write is
//! one batch, so a crash leaves all of it or none of it.

mod batch;
mod counter;
mod db;
mod error;
pub mod keys;
mod table;

pub use batch::Batch;
pub use counter::{CountGuard, StreamCounter};
pub use db::{Db, DbOptions, Direction};
pub use error::{Error, Result};
pub use table::Table;
