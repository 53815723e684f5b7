//! The data directory's schema version. Every start reads it: an older
//! data directory is migrated forward step by step (each step idempotent,
//! the new version written only once the step is done), and one written by
//! a newer build is refused before anything in it changes.
//!
//! Versions:
//! 1. homes at `homes/<localpart>` (before directory names were encoded);
//! 2. homes at encoded directory names (`ai::home_layout`).

use matrixos_kernel::HomesDir;
use matrixos_storage::tables::SERVER_SETTINGS;
use matrixos_storage::{Batch, Db};
use ruma::OwnedUserId;

use crate::error::{Error, Result};

/// The schema this build writes.
pub const CURRENT: u32 = 2;

const KEY: &str = "schema_version";
/// Set by the home-layout migration before schema versions existed.
const HOMES_LAYOUT_KEY: &str = "homes_layout";

/// The version stored in the database; for a data directory from before
/// versions were stored, the one its contents show (`None`: a new one).
pub fn stored(db: &Db, has_users: bool) -> Result<Option<u32>> {
    if let Some(bytes) = SERVER_SETTINGS.get(db, KEY)? {
        let bytes: [u8; 4] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| Error::internal("the stored schema version is corrupt"))?;
        return Ok(Some(u32::from_be_bytes(bytes)));
    }
    if !has_users {
        return Ok(None);
    }
    let layout = SERVER_SETTINGS.get(db, HOMES_LAYOUT_KEY)?;
    Ok(Some(if layout.as_deref() == Some(&[2][..]) {
        2
    } else {
        1
    }))
}

/// Refuses a data directory from a newer build, migrates an older one.
pub fn bring_up_to_date(db: &Db, homes: &HomesDir, users: &[OwnedUserId]) -> Result<()> {
    let version = stored(db, !users.is_empty())?.unwrap_or(CURRENT);
    if version > CURRENT {
        return Err(Error::new(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "M_UNKNOWN",
            format!(
                "the data directory has schema version {version}, written by a newer Matrix OS; \
             this build knows versions up to {CURRENT}. Run the newer build, or restore a \
             backup made with this one. Nothing was changed."
            ),
        ));
    }
    if version < 2 {
        tracing::info!(from = version, to = 2, "migrating the data directory");
        crate::ai::home_layout::migrate(db, homes, users)?;
    }
    if SERVER_SETTINGS.get(db, KEY)?.is_none() || version < CURRENT {
        let mut batch = Batch::new();
        SERVER_SETTINGS.put(&mut batch, KEY, &CURRENT.to_be_bytes().to_vec());
        db.write(batch)?;
        if version < CURRENT {
            tracing::info!(version = CURRENT, "data directory migrated");
        }
    }
    Ok(())
}
