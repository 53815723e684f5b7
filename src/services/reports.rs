//! Reports of rooms and events by users, kept for the server's admins.

use matrixos_storage::records::ReportRecord;
use matrixos_storage::tables::REPORTS;
use matrixos_storage::Batch;

use super::Store;
use crate::error::Result;
use crate::services::Wake;

pub struct Reports {
    store: Store,
}

impl Reports {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Keeps a report; answers its number.
    pub async fn add(&self, record: ReportRecord) -> Result<u64> {
        let mut batch = Batch::new();
        let number = self.store.db.allocate_short(&mut batch);
        REPORTS.put(&mut batch, &number, &record);
        self.store.commit(batch, vec![], Wake::none()).await?;
        Ok(number)
    }

    /// Every report, newest first.
    pub fn all(&self) -> Result<Vec<(u64, ReportRecord)>> {
        let mut out = REPORTS
            .scan_prefix(&self.store.db, &[])
            .collect::<std::result::Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }
}
