//! The person's home: a git repository (git2) under `<data>/homes/<name>/`.
//! Every change goes through [`Home::commit_all`], so each mutation is one
//! commit with a meaningful message and any file can be restored. Paths are
//! confined to the home: no `..`, no absolute paths, no `.git`, and no
//! symlink anywhere along the way.

use std::path::{Component, Path, PathBuf};

use git2::{ConfigLevel, DiffFormat, DiffOptions, IndexAddOption, Repository, Signature, Sort};
use std::sync::{Mutex, MutexGuard};

use crate::homes::HomesDir;

/// Largest file the tools read or write.
pub const MAX_FILE_BYTES: usize = 512 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("path {0:?} is outside the home or not allowed")]
    InvalidPath(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("file system: {0}")]
    Io(#[from] std::io::Error),
}

pub type HomeResult<T> = Result<T, HomeError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub id: String,
    pub time: i64,
    pub message: String,
}

/// The homes are the server's own repositories: no git configuration of
/// the machine or of the account the server runs as applies to them, and
/// an unreadable `~/.gitconfig` (a service whose `HOME` is not its own)
/// is no error.
fn ignore_machine_git_config() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let levels = [
            ConfigLevel::System,
            ConfigLevel::XDG,
            ConfigLevel::Global,
            ConfigLevel::ProgramData,
        ];
        for level in levels {
            // SAFETY: libgit2's global options are set once, before any
            // repository is opened: every one is opened through a `Home`,
            // which comes from `open_or_create`, which calls this first
            // (and `call_once` holds other callers until it is done).
            if let Err(e) = unsafe { git2::opts::set_search_path(level, "") } {
                tracing::warn!(error = %e, "could not keep git from reading the machine's configuration");
            }
        }
    });
}

pub struct Home {
    root: PathBuf,
    author: String,
    /// Serialises writers: git's index is one file.
    writer: Mutex<()>,
}

impl Home {
    /// Opens the home of `localpart` under `homes`, creating it from
    /// `template` (path, content) pairs with one initial commit when it does
    /// not exist yet. The directory is always a direct child of the homes
    /// root, whatever the localpart holds.
    pub fn open_or_create(
        homes: &HomesDir,
        localpart: &str,
        author: &str,
        template: &[(String, String)],
    ) -> HomeResult<Self> {
        ignore_machine_git_config();
        let root = homes.path_of(localpart);
        let fresh = !root.join(".git").exists();
        std::fs::create_dir_all(&root)?;
        if !homes.contains(&root) {
            return Err(HomeError::InvalidPath(root.display().to_string()));
        }
        let home = Self {
            root: root.canonicalize()?,
            author: author.to_owned(),
            writer: Mutex::new(()),
        };
        if fresh {
            Repository::init(&home.root)?;
            for (path, content) in template {
                let full = home.resolve(path)?;
                if let Some(parent) = full.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(full, content)?;
            }
            home.commit_all("Create home from template")?;
        }
        Ok(home)
    }

    fn hold(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path for a home-relative one, refusing every escape.
    pub fn resolve(&self, rel: &str) -> HomeResult<PathBuf> {
        let trimmed = rel.trim().trim_start_matches("./");
        let mut full = self.root.clone();
        for component in Path::new(trimmed).components() {
            match component {
                Component::Normal(part) if part != ".git" => {
                    full.push(part);
                    match std::fs::symlink_metadata(&full) {
                        Ok(meta) if meta.file_type().is_symlink() => {
                            return Err(HomeError::InvalidPath(rel.to_owned()))
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Component::CurDir => {}
                _ => return Err(HomeError::InvalidPath(rel.to_owned())),
            }
        }
        Ok(full)
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.resolve(rel).map(|p| p.exists()).unwrap_or(false)
    }

    pub fn read(&self, rel: &str) -> HomeResult<String> {
        let path = self.resolve(rel)?;
        if !path.is_file() {
            return Err(HomeError::NotFound(rel.to_owned()));
        }
        let bytes = std::fs::read(&path)?;
        if bytes.len() > MAX_FILE_BYTES {
            return Err(HomeError::Invalid(format!("{rel} is larger than 512 KiB")));
        }
        String::from_utf8(bytes).map_err(|_| HomeError::Invalid(format!("{rel} is not text")))
    }

    /// Writes files and commits them together.
    pub fn write_files(&self, files: &[(&str, &str)], message: &str) -> HomeResult<Option<String>> {
        let _guard = self.hold();
        for (rel, content) in files {
            if content.len() > MAX_FILE_BYTES {
                return Err(HomeError::Invalid(format!(
                    "{rel} would be larger than 512 KiB"
                )));
            }
            let path = self.resolve(rel)?;
            if path == self.root || path.is_dir() {
                return Err(HomeError::Invalid(format!("{rel} is a directory")));
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            write_atomically(&path, content.as_bytes())?;
        }
        self.commit_locked(message)
    }

    pub fn write(&self, rel: &str, content: &str, message: &str) -> HomeResult<Option<String>> {
        self.write_files(&[(rel, content)], message)
    }

    /// Replaces the one occurrence of `old` in a file with `new`.
    pub fn edit(
        &self,
        rel: &str,
        old: &str,
        new: &str,
        message: &str,
    ) -> HomeResult<Option<String>> {
        let text = self.read(rel)?;
        match text.matches(old).count() {
            0 => Err(HomeError::Invalid(format!(
                "the text to replace is not in {rel}"
            ))),
            1 if !old.is_empty() => self.write(rel, &text.replacen(old, new, 1), message),
            _ => Err(HomeError::Invalid(format!(
                "the text to replace occurs more than once in {rel}; give more context"
            ))),
        }
    }

    pub fn delete(&self, rel: &str, message: &str) -> HomeResult<Option<String>> {
        let _guard = self.hold();
        let path = self.resolve(rel)?;
        if !path.is_file() {
            return Err(HomeError::NotFound(rel.to_owned()));
        }
        std::fs::remove_file(path)?;
        self.commit_locked(message)
    }

    /// Files under `rel` (recursively, directories marked with `/`).
    pub fn list(&self, rel: &str, limit: usize) -> HomeResult<Vec<String>> {
        let start = self.resolve(rel)?;
        if !start.is_dir() {
            return Err(HomeError::NotFound(rel.to_owned()));
        }
        let mut out = Vec::new();
        self.walk(&start, &mut |path, is_dir| {
            let shown = path.strip_prefix(&self.root).unwrap_or(path).display();
            out.push(if is_dir {
                format!("{shown}/")
            } else {
                shown.to_string()
            });
            out.len() < limit
        })?;
        out.sort();
        Ok(out)
    }

    /// Lines containing `query` (case-insensitive) as `path:line: text`.
    pub fn search(&self, query: &str, limit: usize) -> HomeResult<Vec<String>> {
        let needle = query.to_lowercase();
        let mut hits = Vec::new();
        self.walk(&self.root.clone(), &mut |path, is_dir| {
            if is_dir {
                return true;
            }
            let Ok(text) = std::fs::read_to_string(path) else {
                return true;
            };
            let shown = path
                .strip_prefix(&self.root)
                .unwrap_or(path)
                .display()
                .to_string();
            for (n, line) in text.lines().enumerate() {
                if line.to_lowercase().contains(&needle) {
                    hits.push(format!("{shown}:{}: {}", n + 1, line.trim()));
                    if hits.len() >= limit {
                        return false;
                    }
                }
            }
            true
        })?;
        Ok(hits)
    }

    /// Depth-first walk skipping `.git` and symlinks; `visit` returns
    /// `false` to stop.
    fn walk(&self, dir: &Path, visit: &mut dyn FnMut(&Path, bool) -> bool) -> HomeResult<bool> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(|e| e.ok()).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let kind = entry.file_type()?;
            if entry.file_name() == ".git" || kind.is_symlink() {
                continue;
            }
            let path = entry.path();
            if !visit(&path, kind.is_dir()) {
                return Ok(false);
            }
            if kind.is_dir() && !self.walk(&path, visit)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Commits everything that changed; `None` when nothing did.
    pub fn commit_all(&self, message: &str) -> HomeResult<Option<String>> {
        let _guard = self.hold();
        self.commit_locked(message)
    }

    fn commit_locked(&self, message: &str) -> HomeResult<Option<String>> {
        let repo = Repository::open(&self.root)?;
        let mut index = repo.index()?;
        index.add_all(["*"], IndexAddOption::DEFAULT, None)?;
        index.update_all(["*"], None)?;
        index.write()?;
        let tree_id = index.write_tree()?;
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        if parent.as_ref().is_some_and(|p| p.tree_id() == tree_id) {
            return Ok(None);
        }
        let tree = repo.find_tree(tree_id)?;
        let email = format!("{}@matrixos.invalid", self.author);
        let signature = Signature::now(&self.author, &email)?;
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let id = repo.commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &parents,
        )?;
        Ok(Some(id.to_string()))
    }

    /// Newest first; with a path, only the commits that changed it.
    pub fn log(&self, rel: Option<&str>, limit: usize) -> HomeResult<Vec<CommitInfo>> {
        if let Some(rel) = rel {
            self.resolve(rel)?;
        }
        let repo = Repository::open(&self.root)?;
        let mut walk = repo.revwalk()?;
        walk.set_sorting(Sort::TIME)?;
        walk.push_head()?;
        let mut out = Vec::new();
        for oid in walk {
            let commit = repo.find_commit(oid?)?;
            if let Some(rel) = rel {
                let path = Path::new(rel.trim_start_matches("./"));
                let here = commit.tree()?.get_path(path).ok().map(|e| e.id());
                let before = match commit.parent(0) {
                    Ok(p) => p.tree()?.get_path(path).ok().map(|e| e.id()),
                    Err(_) => None,
                };
                if here == before {
                    continue;
                }
            }
            out.push(CommitInfo {
                id: commit.id().to_string(),
                time: commit.time().seconds(),
                message: commit.message().unwrap_or_default().trim().to_owned(),
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The patch a commit (default `HEAD`) made, optionally for one path.
    pub fn diff(
        &self,
        rev: Option<&str>,
        rel: Option<&str>,
        max_chars: usize,
    ) -> HomeResult<String> {
        let repo = Repository::open(&self.root)?;
        let rev = rev.unwrap_or("HEAD");
        let commit = repo
            .revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .map_err(|_| HomeError::NotFound(format!("revision {rev}")))?;
        let parent_tree = match commit.parent(0) {
            Ok(p) => Some(p.tree()?),
            Err(_) => None,
        };
        let mut opts = DiffOptions::new();
        if let Some(rel) = rel {
            self.resolve(rel)?;
            opts.pathspec(rel.trim_start_matches("./"));
        }
        let diff =
            repo.diff_tree_to_tree(parent_tree.as_ref(), Some(&commit.tree()?), Some(&mut opts))?;
        let mut text = String::new();
        diff.print(DiffFormat::Patch, |_, _, line| {
            if matches!(line.origin(), '+' | '-' | ' ') {
                text.push(line.origin());
            }
            text.push_str(&String::from_utf8_lossy(line.content()));
            text.len() < max_chars
        })
        .or_else(|e| {
            if text.len() >= max_chars {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        Ok(text)
    }

    /// Puts a file back as it was at `rev` and commits that.
    pub fn restore(&self, rel: &str, rev: &str) -> HomeResult<Option<String>> {
        self.resolve(rel)?;
        let repo = Repository::open(&self.root)?;
        let clean = rel.trim().trim_start_matches("./");
        let blob = repo
            .revparse_single(&format!("{rev}:{clean}"))
            .and_then(|o| o.peel_to_blob())
            .map_err(|_| HomeError::NotFound(format!("{clean} at {rev}")))?;
        let content = std::str::from_utf8(blob.content())
            .map_err(|_| HomeError::Invalid(format!("{clean} is not text")))?
            .to_owned();
        let short: String = rev.chars().take(10).collect();
        self.write(clean, &content, &format!("Restore {clean} from {short}"))
    }
}

/// Readers never see half a file: write beside it, then rename over it.
fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.writing"));
    std::fs::write(&temp, content)?;
    std::fs::rename(&temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> (tempfile::TempDir, Home) {
        let dir = tempfile::tempdir().unwrap();
        let template = vec![("system/soul.md".to_owned(), "be kind\n".to_owned())];
        let homes = HomesDir::open(&dir.path().join("homes")).unwrap();
        let home = Home::open_or_create(&homes, "alice", "alice_ai", &template).unwrap();
        (dir, home)
    }

    #[test]
    fn template_is_the_first_commit() {
        let (_d, home) = home();
        assert_eq!(home.read("system/soul.md").unwrap(), "be kind\n");
        let log = home.log(None, 10).unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].message, "Create home from template");
    }

    #[test]
    fn writes_commit_and_restore_brings_back_old_text() {
        let (_d, home) = home();
        let first = home.write("notes/a.md", "one", "Add a").unwrap().unwrap();
        home.edit("notes/a.md", "one", "two", "Change a").unwrap();
        assert_eq!(home.read("notes/a.md").unwrap(), "two");
        assert_eq!(home.log(Some("notes/a.md"), 10).unwrap().len(), 2);
        assert!(home.diff(None, None, 10_000).unwrap().contains("+two"));
        home.restore("notes/a.md", &first).unwrap();
        assert_eq!(home.read("notes/a.md").unwrap(), "one");
        assert_eq!(
            home.log(None, 10).unwrap()[0].message.split(' ').next(),
            Some("Restore")
        );
        assert!(home.write("notes/a.md", "one", "no-op").unwrap().is_none());
    }

    #[test]
    fn escapes_are_refused() {
        let (dir, home) = home();
        for bad in [
            "../x",
            "/etc/passwd",
            "a/../../x",
            ".git/config",
            "system/../../x",
        ] {
            assert!(
                matches!(home.resolve(bad), Err(HomeError::InvalidPath(_))),
                "{bad}"
            );
        }
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(dir.path(), home.root().join("link")).unwrap();
        assert!(home.read("link/secret").is_err());
        assert!(home.write("link/new", "x", "escape").is_err());
        assert!(!dir.path().join("new").exists());
    }

    #[test]
    fn list_and_search_skip_git() {
        let (_d, home) = home();
        home.write("apps/todo/index.html", "<h1>Todo</h1>", "Add todo")
            .unwrap();
        let files = home.list("", 100).unwrap();
        assert!(files.contains(&"apps/todo/index.html".to_owned()));
        assert!(!files.iter().any(|f| f.starts_with(".git")));
        assert_eq!(
            home.search("TODO", 10).unwrap(),
            vec!["apps/todo/index.html:1: <h1>Todo</h1>"]
        );
    }
}
