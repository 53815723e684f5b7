//! Moves homes made before directory names were encoded. They lived at
//! `homes/<localpart>`, which let a localpart such as `alice/`, `./alice` or
//! `eve/../alice` open someone else's home or a directory outside the data
//! directory. On the first start after the change, each person's home at a
//! plain old path is renamed (atomically, `.git` and all) to its encoded
//! name; a localpart whose old path had `.`, `..` or empty components never
//! owned the directory it named, so it is not moved and that person starts
//! from a fresh home. A marker in the database makes this happen once.

use std::cmp::Reverse;
use std::path::{Path, PathBuf};

use matrixos_kernel::HomesDir;
use matrixos_storage::tables::SERVER_SETTINGS;
use matrixos_storage::{Batch, Db};
use ruma::OwnedUserId;

use super::is_ai_user;
use crate::error::{Error, Result};

const LAYOUT_KEY: &str = "homes_layout";
/// Layout 2: encoded directory names.
const LAYOUT: &[u8] = &[2];

pub fn migrate(db: &Db, homes: &HomesDir, users: &[OwnedUserId]) -> Result<()> {
    if SERVER_SETTINGS.get(db, LAYOUT_KEY)?.as_deref() == Some(LAYOUT) {
        return Ok(());
    }
    let mut owners: Vec<&str> = users
        .iter()
        .filter(|u| !is_ai_user(u))
        .map(|u| u.localpart())
        .collect();
    // A nested old home (`a/b` inside `a`) moves out before its parent.
    owners.sort_by_key(|l| Reverse(l.len()));
    for localpart in owners {
        let Some(old) = legacy_path(homes.root(), localpart) else {
            continue;
        };
        let new = homes.path_of(localpart);
        if old == new || new.exists() || !old.join(".git").is_dir() {
            continue;
        }
        std::fs::rename(&old, &new)
            .map_err(|e| Error::internal(format!("moving the home of {localpart}: {e}")))?;
        tracing::info!(localpart, from = %old.display(), to = %new.display(), "home moved to its encoded name");
    }
    sync_dir(homes.root())?;
    let mut batch = Batch::new();
    SERVER_SETTINGS.put(&mut batch, LAYOUT_KEY, &LAYOUT.to_vec());
    db.write(batch)?;
    Ok(())
}

/// Where the old layout put a localpart's home, when that directory was
/// really theirs: plain components only, and no symlink leading elsewhere.
fn legacy_path(root: &Path, localpart: &str) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    for part in localpart.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return None;
        }
        path.push(part);
    }
    let resolved = path.canonicalize().ok()?;
    (resolved == path).then_some(path)
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::internal(format!("syncing {}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use matrixos_storage::DbOptions;

    fn user(localpart: &str) -> OwnedUserId {
        ruma::UserId::parse(format!("@{localpart}:localhost")).unwrap()
    }

    fn old_home(root: &Path, rel: &str, marker: &str) {
        let dir = root.join(rel);
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        std::fs::write(dir.join("memory.md"), marker).unwrap();
    }

    #[test]
    fn plain_old_homes_move_once_and_traversing_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db"), DbOptions::default()).unwrap();
        let homes = HomesDir::open(&dir.path().join("homes")).unwrap();
        let root = homes.root().to_owned();
        old_home(&root, "alice", "alice's");
        old_home(&root, "a.b", "a.b's");
        old_home(&root, "alice/sub", "nested");
        let users = [
            user("alice"),
            user("a.b"),
            user("alice/sub"),
            user("./alice"),
            user("eve/../alice"),
            user("alice_ai"),
        ];
        migrate(&db, &homes, &users).unwrap();
        let read = |localpart: &str| {
            std::fs::read_to_string(homes.path_of(localpart).join("memory.md")).ok()
        };
        assert_eq!(read("alice").as_deref(), Some("alice's"));
        assert_eq!(read("a.b").as_deref(), Some("a.b's"));
        assert_eq!(read("alice/sub").as_deref(), Some("nested"));
        assert!(
            homes.path_of("a.b").join(".git").is_dir(),
            "history moves with the home"
        );
        assert_eq!(
            read("./alice"),
            None,
            "a traversing name never gets Alice's home"
        );
        assert_eq!(read("eve/../alice"), None);
        assert!(!root.join("a.b").exists());
        assert!(!root.join("alice").join("sub").exists());
        // Once: a directory at an old path after the marker is left alone.
        old_home(&root, "c.d", "late");
        migrate(&db, &homes, &[user("c.d")]).unwrap();
        assert!(root.join("c.d").exists());
        assert_eq!(read("c.d"), None);
    }
}
