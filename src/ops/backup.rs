//! `matrixos backup DEST` and `matrixos restore SRC`.
//!
//! A backup is a directory: `db/`, a RocksDB checkpoint (made by the
//! running server through its control socket, or by this process when no
//! server runs), then a copy of everything else in the data directory
//! (the people's git homes, media, TLS keys), and a manifest. The search
//! index is left out: a server starting without one builds it again from
//! the rooms. Whatever the database acknowledged before the backup began is
//! in the checkpoint; the checkpoint is made first, so every media file and
//! git commit it refers to exists by the time the copy reaches it.

use std::path::{Path, PathBuf};

use matrixos_storage::{Db, DbOptions};
use serde::{Deserialize, Serialize};

use super::control;
use super::copy_tree::{copy_tree, Copied};
use crate::config::Config;

const MANIFEST: &str = "matrixos-backup.json";
const DB: &str = "db";

/// What the manifest records.
#[derive(Serialize, Deserialize)]
struct Manifest {
    server_name: String,
    created_ms: u64,
    matrixos_version: String,
}

/// What a backup or restore did.
#[derive(Debug)]
pub struct Done {
    pub copied: Copied,
    /// The database checkpoint came from a running server.
    pub live: bool,
}

fn empty_or_absent(dir: &Path) -> bool {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(_) => !dir.exists(),
    }
}

fn absolute(path: &Path) -> Result<PathBuf, String> {
    std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Backs up the data directory `config` names into `dest` (absent or empty).
pub fn backup(config: &Config, dest: &Path) -> Result<Done, String> {
    let dest = absolute(dest)?;
    if dest.to_string_lossy().contains('\n') {
        return Err("the backup path may not contain a line break".to_owned());
    }
    if !empty_or_absent(&dest) {
        return Err(format!("{} exists and is not empty", dest.display()));
    }
    let data_dir = &config.data_dir;
    if !data_dir.join(DB).is_dir() {
        return Err(format!("no database in {}", data_dir.display()));
    }
    std::fs::create_dir_all(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    let live = control::request_checkpoint(data_dir, &dest.join(DB))?;
    if !live {
        let db = Db::open(&data_dir.join(DB), DbOptions::default()).map_err(|e| {
            format!(
                "no server answers on the control socket and the database cannot be opened: {e}"
            )
        })?;
        db.checkpoint(&dest.join(DB)).map_err(|e| e.to_string())?;
    }
    let mut copied = Copied::default();
    let entries =
        std::fs::read_dir(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let skip = [DB, crate::search::DIRECTORY, control::SOCKET];
        if skip.iter().any(|s| name == *s) || !entry.path().is_dir() {
            continue;
        }
        let part = copy_tree(&entry.path(), &dest.join(&name))
            .map_err(|e| format!("copying {}: {e}", entry.path().display()))?;
        copied.files += part.files;
        copied.bytes += part.bytes;
    }
    let manifest = Manifest {
        server_name: config.server_name.clone(),
        created_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        matrixos_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
    write_synced(&dest.join(MANIFEST), &text)?;
    Ok(Done { copied, live })
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Restores the backup in `src` as the data directory `config` names,
/// which must be absent or empty (so no server can be using it).
pub fn restore(config: &Config, src: &Path) -> Result<Done, String> {
    let text = std::fs::read(src.join(MANIFEST))
        .map_err(|e| format!("{} is not a Matrix OS backup: {e}", src.display()))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| format!("{}: {e}", src.join(MANIFEST).display()))?;
    if manifest.server_name != config.server_name {
        return Err(format!(
            "the backup is of {}, but this configuration's server name is {}",
            manifest.server_name, config.server_name
        ));
    }
    let data_dir = &config.data_dir;
    if !empty_or_absent(data_dir) {
        return Err(format!(
            "{} is not empty: stop the server and move it away first",
            data_dir.display()
        ));
    }
    let copied = copy_tree(src, data_dir).map_err(|e| format!("restoring: {e}"))?;
    std::fs::remove_file(data_dir.join(MANIFEST)).map_err(|e| e.to_string())?;
    Ok(Done {
        copied,
        live: false,
    })
}
