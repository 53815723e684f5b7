/// Errors from the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("rocksdb: {0}")]
    Rocks(#[source] rocksdb::Error),
    #[error("corrupt record in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
    #[error("storage task failed: {0}")]
    Task(String),
}

impl From<rocksdb::Error> for Error {
    fn from(error: rocksdb::Error) -> Self {
        crate::cache_tier::note_error(&error);
        Error::Rocks(error)
    }
}

impl Error {
    /// A read limited to memory that needed the disk: the caller reads
    /// again where it may wait (see [`crate::from_memory`]), so this is no
    /// failure to report.
    pub fn is_memory_miss(&self) -> bool {
        matches!(self, Error::Rocks(e) if e.kind() == rocksdb::ErrorKind::Incomplete)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
