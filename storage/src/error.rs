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

pub type Result<T, E = Error> = std::result::Result<T, E>;
