//! Where people's homes live. A localpart may contain `.` and `/` (the spec
//! allows both), so it is never used as a path: each home's directory name
//! is an encoding of the localpart that keeps letters, digits, `_` and `-`
//! and writes every other byte as `=XX`. The result holds no `/`, `.` or
//! `%`, cannot traverse, and two localparts never share a name. A name that
//! would be too long for a file system gets `~` and the SHA-256 of the
//! localpart instead (`~` never appears in the readable form).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Longest readable directory name; longer ones are hashed (file systems
/// allow 255 bytes per name).
const MAX_READABLE: usize = 200;

/// The directory holding every home: `<data_dir>/homes`, made canonical
/// once, so nothing below can be moved out of it by a symlink.
#[derive(Debug, Clone)]
pub struct HomesDir {
    root: PathBuf,
}

/// The directory name of a localpart's home.
pub fn dir_name(localpart: &str) -> String {
    let mut out = String::with_capacity(localpart.len());
    for byte in localpart.bytes() {
        match byte {
            b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => out.push(byte as char),
            other => out.push_str(&format!("={other:02x}")),
        }
    }
    if out.is_empty() || out.len() > MAX_READABLE {
        return format!("~{}", hex_lower(&Sha256::digest(localpart.as_bytes())));
    }
    out
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a directory name is one [`dir_name`] can produce: a single path
/// component with no separator, dot or escape into the parent.
pub fn is_dir_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_READABLE.max(65)
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'=' | b'~'))
}

impl HomesDir {
    /// Creates `root` if needed and pins its canonical path.
    pub fn open(root: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        Ok(Self {
            root: root.canonicalize()?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The home directory of a localpart: always a direct child of the root.
    pub fn path_of(&self, localpart: &str) -> PathBuf {
        self.root.join(dir_name(localpart))
    }

    /// Whether `path`, once resolved, is a direct child of the root.
    pub fn contains(&self, path: &Path) -> bool {
        let Ok(resolved) = path.canonicalize() else {
            return false;
        };
        resolved.parent() == Some(self.root.as_path())
            && resolved
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_dir_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_traverse_or_collide() {
        let cases = [
            ("alice", "alice"),
            ("alice/", "alice=2f"),
            ("./alice", "=2e=2falice"),
            ("eve/../alice", "eve=2f=2e=2e=2falice"),
            ("..", "=2e=2e"),
            ("../../x", "=2e=2e=2f=2e=2e=2fx"),
            ("a=2f", "a=3d2f"),
            ("a+b", "a=2bb"),
            ("Alice", "=41lice"),
        ];
        let mut seen = std::collections::HashSet::new();
        for (localpart, expected) in cases {
            let name = dir_name(localpart);
            assert_eq!(name, expected, "{localpart}");
            assert!(is_dir_name(&name), "{name}");
            assert!(!name.contains(['/', '.', '%']), "{name}");
            assert!(seen.insert(name), "collision for {localpart}");
        }
    }

    #[test]
    fn long_names_are_hashed_and_fit_a_file_system() {
        let long = ".".repeat(250);
        let name = dir_name(&long);
        assert!(name.starts_with('~') && name.len() == 65, "{name}");
        assert!(is_dir_name(&name));
        assert_ne!(name, dir_name(&".".repeat(249)));
        let readable = "a".repeat(200);
        assert_eq!(dir_name(&readable), readable);
    }

    #[test]
    fn every_home_is_a_direct_child_of_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let homes = HomesDir::open(&dir.path().join("homes")).unwrap();
        for localpart in ["alice", "../x", "a/b", "..", "."] {
            let path = homes.path_of(localpart);
            std::fs::create_dir_all(&path).unwrap();
            assert!(homes.contains(&path), "{localpart}: {path:?}");
        }
        assert!(!homes.contains(dir.path()));
        assert!(!homes.contains(&homes.root().join("a").join("b")));
    }
}
