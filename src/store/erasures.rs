//! Which local users had their content erased, and from which stream
//! position: read for every event served from a local sender, so kept in
//! memory rather than read from each user's account record every time.
//!
//! An erasure is never undone, so the cache can only be behind by a user
//! not erased yet: a read fills a user in only where nothing is known, and
//! the write of an erasure (once durable) overwrites whatever a read put.

use std::sync::Arc;

use matrixos_storage::tables::USERS;
use matrixos_storage::{Batch, Db};
use parking_lot::Mutex;
use ruma::{OwnedUserId, UserId};

use crate::error::Result;
use crate::two_gen::TwoGen;

/// Users remembered per cache generation.
const REMEMBERED: usize = 4096;

#[derive(Clone)]
pub struct Erasures {
    known: Arc<Mutex<TwoGen<OwnedUserId, Option<u64>>>>,
}

impl Default for Erasures {
    fn default() -> Self {
        Self {
            known: Arc::new(Mutex::new(TwoGen::new(REMEMBERED))),
        }
    }
}

impl Erasures {
    /// The stream position from which the local user's content is erased.
    pub fn erased_at(&self, db: &Db, user: &UserId) -> Result<Option<u64>> {
        if let Some(known) = self.known.lock().get(user) {
            return Ok(*known);
        }
        let at = USERS
            .get(db, user.as_str())?
            .and_then(|record| record.erased_at);
        let mut known = self.known.lock();
        match known.get(user) {
            Some(written) => Ok(*written),
            None => {
                known.insert(user.to_owned(), at);
                Ok(at)
            }
        }
    }

    /// Notes, once `batch` is written, the erasure position an account
    /// record in it holds.
    pub fn on_write(&self, batch: &mut Batch, user: &UserId, erased_at: Option<u64>) {
        if erased_at.is_none() {
            return;
        }
        let (known, user) = (self.known.clone(), user.to_owned());
        batch.on_written(move |written| {
            if written {
                known.lock().insert(user, erased_at);
            }
        });
    }
}
