//! Copies a directory tree that a running server may be writing to.
//!
//! Files that vanish during the walk (a replaced temporary file, an
//! evicted media copy) are skipped. In a git repository the references are
//! copied before the objects: git writes an object before any reference
//! names it, so every copied reference names a copied object. Symbolic
//! links are copied as links, never followed.

use std::io;
use std::path::Path;

/// What was copied.
#[derive(Debug, Default, Clone, Copy)]
pub struct Copied {
    pub files: u64,
    pub bytes: u64,
}

/// Copies `from` into `to` (created), each file synced to disk.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<Copied> {
    let mut copied = Copied::default();
    copy_dir(from, to, &mut copied)?;
    Ok(copied)
}

fn copy_dir(from: &Path, to: &Path, copied: &mut Copied) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    let entries = match std::fs::read_dir(from) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut names: Vec<_> = entries
        .filter_map(|entry| entry.ok().map(|e| e.file_name()))
        .collect();
    // Inside `.git`, `objects` goes last (see the module's comment).
    let in_git = from.file_name().is_some_and(|n| n == ".git");
    names.sort_by_key(|name| (in_git && name == "objects", name.clone()));
    for name in names {
        let (source, target) = (from.join(&name), to.join(&name));
        let kind = match std::fs::symlink_metadata(&source) {
            Ok(meta) => meta.file_type(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if kind.is_dir() {
            copy_dir(&source, &target, copied)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(&source)?;
            std::os::unix::fs::symlink(link, &target)?;
        } else if kind.is_file() {
            match copy_file(&source, &target) {
                Ok(bytes) => {
                    copied.files += 1;
                    copied.bytes += bytes;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        }
    }
    std::fs::File::open(to)?.sync_all()
}

fn copy_file(source: &Path, target: &Path) -> io::Result<u64> {
    let mut input = std::fs::File::open(source)?;
    let mut output = std::fs::File::create(target)?;
    let bytes = io::copy(&mut input, &mut output)?;
    output.set_permissions(input.metadata()?.permissions())?;
    output.sync_all()?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_files_dirs_and_links_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        std::fs::create_dir_all(from.join("a/.git/objects/ab")).unwrap();
        std::fs::write(from.join("a/.git/objects/ab/cd"), "object").unwrap();
        std::fs::write(from.join("a/.git/HEAD"), "ref: refs/heads/main").unwrap();
        std::fs::write(from.join("top.txt"), "hello").unwrap();
        std::os::unix::fs::symlink("/etc", from.join("link")).unwrap();
        let to = dir.path().join("to");
        let copied = copy_tree(&from, &to).unwrap();
        assert_eq!(copied.files, 3);
        assert_eq!(copied.bytes, 6 + 20 + 5);
        assert_eq!(
            std::fs::read_to_string(to.join("a/.git/objects/ab/cd")).unwrap(),
            "object"
        );
        assert_eq!(
            std::fs::read_link(to.join("link")).unwrap(),
            Path::new("/etc")
        );
        assert!(std::fs::symlink_metadata(to.join("link"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn a_missing_source_is_an_empty_copy() {
        let dir = tempfile::tempdir().unwrap();
        let copied = copy_tree(&dir.path().join("none"), &dir.path().join("to")).unwrap();
        assert_eq!(copied.files, 0);
        assert!(dir.path().join("to").is_dir());
    }
}
