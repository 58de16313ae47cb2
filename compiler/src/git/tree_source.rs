//! Sources that read a commit's tree or the index: nothing is checked out.
//!
//! Symlinks inside a tree or the index are followed the way a checkout would follow
//! them, as long as every hop stays inside the repository (a link to `../x` from the
//! root, or to an absolute path, is refused as an escape, CT005), at most 40 hops.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use git2::{ObjectType, Oid, Repository};

use super::{GitError, Repo};
use crate::source::{repo_dir, repo_join, Source, SourceError};

const LINK_MODE: i32 = 0o120000;

/// `(filemode, id)` of the entry at a repository path (the flag: is it the last component).
type Lookup<'a> = dyn Fn(&str, bool) -> Option<(i32, Oid)> + 'a;
const MAX_HOPS: usize = 40;

/// Follows a repository path through symlinks, with `lookup(prefix)` giving the
/// `(filemode, id)` of an entry (`None` when absent; the index has no folder entries,
/// so an absent prefix that is not the last component is taken as a folder).
fn resolve(repo: &Repository, repo_path: &str, lookup: &Lookup<'_>) -> Result<Oid, SourceError> {
    resolve_traced(repo, repo_path, lookup, &mut Vec::new())
}

/// [`resolve`], pushing every symlink followed and the final path onto `trace`.
pub(super) fn resolve_traced(
    repo: &Repository,
    repo_path: &str,
    lookup: &Lookup<'_>,
    trace: &mut Vec<String>,
) -> Result<Oid, SourceError> {
    let mut path = repo_path.to_string();
    let mut hops = 0;
    'restart: loop {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        if parts.is_empty() {
            return Err(SourceError::Io {
                path: repo_path.into(),
                message: "is the repository root".into(),
            });
        }
        for i in 0..parts.len() {
            let last = i + 1 == parts.len();
            let prefix = parts[..=i].join("/");
            match lookup(&prefix, last) {
                None if last => return Err(SourceError::NotFound(repo_path.into())),
                None => continue,
                Some((mode, id)) if mode == LINK_MODE => {
                    trace.push(prefix.clone());
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(SourceError::Io {
                            path: repo_path.into(),
                            message: "too many levels of symbolic links".into(),
                        });
                    }
                    let target = repo
                        .find_blob(id)
                        .map(|b| String::from_utf8_lossy(b.content()).into_owned())
                        .map_err(|e| SourceError::Io {
                            path: repo_path.into(),
                            message: e.message().into(),
                        })?;
                    let Some(joined) = repo_join(repo_dir(&prefix), &target) else {
                        return Err(SourceError::Escapes(format!(
                            "{repo_path} (a symlink to {target})"
                        )));
                    };
                    let rest = parts[i + 1..].join("/");
                    path = if rest.is_empty() {
                        joined
                    } else {
                        format!("{joined}/{rest}")
                    };
                    continue 'restart;
                }
                Some((mode, id)) if last => {
                    trace.push(prefix);
                    return match mode & 0o170000 {
                        0o100000 => Ok(id),
                        0o040000 => Err(SourceError::Io {
                            path: repo_path.into(),
                            message: "is a folder".into(),
                        }),
                        _ => Err(SourceError::Io {
                            path: repo_path.into(),
                            message: "is a submodule, not a file".into(),
                        }),
                    };
                }
                Some(_) => {}
            }
        }
        return Err(SourceError::NotFound(repo_path.into()));
    }
}

pub(super) fn tree_lookup<'a, 'b>(
    tree: &'a git2::Tree<'b>,
) -> impl Fn(&str, bool) -> Option<(i32, Oid)> + 'a {
    move |p: &str, _last: bool| {
        tree.get_path(Path::new(p))
            .ok()
            .map(|e| (e.filemode(), e.id()))
    }
}

pub(super) fn blob_bytes(repo: &Repository, id: Oid, shown: &str) -> Result<Vec<u8>, SourceError> {
    let err = |e: git2::Error| SourceError::Io {
        path: shown.into(),
        message: e.message().into(),
    };
    // The object header gives the size without inflating the blob.
    let (size, _) = repo
        .odb()
        .and_then(|odb| odb.read_header(id))
        .map_err(err)?;
    crate::source::check_size(size as u64, shown)?;
    repo.find_blob(id)
        .map(|b| b.content().to_vec())
        .map_err(err)
}

fn shown(shown_root: &Path, repo_path: &str) -> String {
    let p = shown_root.join(repo_path);
    let s = p.to_string_lossy();
    s.strip_prefix("./").unwrap_or(&s).to_string()
}

/// The files of one commit's tree ([`GitSource::tree`]) or of the git index
/// ([`GitSource::index`]: what the next commit will hold, `--staged`). Nothing is
/// checked out.
pub struct GitSource {
    repo: Rc<Repository>,
    files: Files,
    shown_root: PathBuf,
}

/// Where a [`GitSource`] looks paths up.
enum Files {
    Tree(Oid),
    Index(git2::Index),
}

impl GitSource {
    /// The files of `commit`'s tree.
    pub fn tree(repo: &Repo, commit: &git2::Commit<'_>, shown_root: &Path) -> Self {
        GitSource {
            repo: repo.repo.clone(),
            files: Files::Tree(commit.tree_id()),
            shown_root: shown_root.to_path_buf(),
        }
    }

    /// The files of the index.
    pub fn index(repo: &Repo, shown_root: &Path) -> Result<Self, GitError> {
        Ok(GitSource {
            repo: repo.repo.clone(),
            files: Files::Index(repo.repo.index()?),
            shown_root: shown_root.to_path_buf(),
        })
    }

    /// The blob id a repository path resolves to (through in-tree symlinks).
    pub fn blob_id(&self, repo_path: &str) -> Result<Oid, SourceError> {
        match &self.files {
            Files::Tree(tree) => self.tree_blob_id(*tree, repo_path),
            Files::Index(index) => self.index_blob_id(index, repo_path),
        }
    }

    fn tree_blob_id(&self, tree: Oid, repo_path: &str) -> Result<Oid, SourceError> {
        let tree = self.repo.find_tree(tree).map_err(|e| SourceError::Io {
            path: repo_path.into(),
            message: e.message().into(),
        })?;
        let lookup = tree_lookup(&tree);
        // Bound to a local: the closure borrows `tree`, which must outlive it.
        #[allow(clippy::let_and_return)]
        let id = resolve(&self.repo, repo_path, &lookup);
        id
    }

    fn index_blob_id(&self, index: &git2::Index, repo_path: &str) -> Result<Oid, SourceError> {
        let conflicted =
            |p: &str| (1..=3).any(|stage| index.get_path(Path::new(p), stage).is_some());
        if conflicted(repo_path) {
            return Err(SourceError::Io {
                path: repo_path.into(),
                message: "has unresolved merge conflicts in the index".into(),
            });
        }
        let lookup = |p: &str, _last: bool| {
            index
                .get_path(Path::new(p), 0)
                .map(|e| (e.mode as i32, e.id))
        };
        resolve(&self.repo, repo_path, &lookup)
    }
}

impl Source for GitSource {
    fn read(&self, repo_path: &str) -> Result<Vec<u8>, SourceError> {
        let shown = self.display_path(repo_path);
        let id = self
            .blob_id(repo_path)
            .map_err(|e| rename_error(e, &shown))?;
        blob_bytes(&self.repo, id, &shown)
    }

    fn display_path(&self, repo_path: &str) -> String {
        shown(&self.shown_root, repo_path)
    }
}

/// Errors name the path as shown, not as a repository path.
fn rename_error(e: SourceError, shown: &str) -> SourceError {
    match e {
        SourceError::NotFound(_) => SourceError::NotFound(shown.into()),
        SourceError::Io { message, .. } => SourceError::Io {
            path: shown.into(),
            message,
        },
        other => other,
    }
}

/// Wraps a source and remembers the git blob id of every file it read, so that a build
/// can tell whether what it read differs from `HEAD` (`source.dirty`).
pub struct Recording<'a> {
    inner: &'a dyn Source,
    pub read: RefCell<BTreeMap<String, Oid>>,
}

impl<'a> Recording<'a> {
    pub fn new(inner: &'a dyn Source) -> Self {
        Recording {
            inner,
            read: RefCell::default(),
        }
    }
}

impl Source for Recording<'_> {
    fn read(&self, repo_path: &str) -> Result<Vec<u8>, SourceError> {
        let bytes = self.inner.read(repo_path)?;
        if let Ok(id) = Oid::hash_object(ObjectType::Blob, &bytes) {
            self.read.borrow_mut().insert(repo_path.to_string(), id);
        }
        Ok(bytes)
    }

    fn display_path(&self, repo_path: &str) -> String {
        self.inner.display_path(repo_path)
    }
}

/// Whether any file read differs from (or is absent in) `commit`'s tree.
pub fn differs_from(repo: &Repo, commit: &git2::Commit<'_>, read: &BTreeMap<String, Oid>) -> bool {
    let tree = GitSource::tree(repo, commit, Path::new(""));
    read.iter()
        .any(|(path, id)| tree.blob_id(path).ok() != Some(*id))
}

/// Loads the trust.yaml at `path` of `commit`'s tree.
pub fn load_at(
    repo: &Repo,
    commit: &git2::Commit<'_>,
    path: &str,
    shown_root: &Path,
) -> Result<crate::load::Loaded, SourceError> {
    crate::load::load(&GitSource::tree(repo, commit, shown_root), path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository whose only commit holds `files` (path, mode, content).
    fn repo_with(files: &[(&str, i32, &str)]) -> (tempfile::TempDir, Repo) {
        let dir = tempfile::tempdir().unwrap();
        let r = Repository::init(dir.path()).unwrap();
        let mut index = r.index().unwrap();
        for (path, mode, content) in files {
            let id = r.blob(content.as_bytes()).unwrap();
            let mut entry = git2::IndexEntry {
                ctime: git2::IndexTime::new(0, 0),
                mtime: git2::IndexTime::new(0, 0),
                dev: 0,
                ino: 0,
                mode: *mode as u32,
                uid: 0,
                gid: 0,
                file_size: content.len() as u32,
                id,
                flags: 0,
                flags_extended: 0,
                path: path.as_bytes().to_vec(),
            };
            entry.flags = (path.len() as u16) & 0xfff;
            index.add(&entry).unwrap();
        }
        index.write().unwrap();
        let tree = r.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::new("t", "t@t", &git2::Time::new(0, 0)).unwrap();
        r.commit(Some("HEAD"), &sig, &sig, "one", &tree, &[])
            .unwrap();
        drop(tree);
        let repo = Repo::discover(dir.path()).unwrap();
        (dir, repo)
    }

    #[test]
    fn tree_and_index_follow_in_repo_symlinks_and_refuse_escapes() {
        let (_dir, repo) = repo_with(&[
            ("certs/real.pem", 0o100644, "PEM"),
            ("certs/link.pem", LINK_MODE, "real.pem"),
            ("shared", LINK_MODE, "certs"),
            ("certs/escape.pem", LINK_MODE, "../../etc/passwd"),
            ("certs/abs.pem", LINK_MODE, "/etc/passwd"),
            ("loop", LINK_MODE, "loop"),
        ]);
        let head = repo.head().unwrap();
        let tree = GitSource::tree(&repo, &head, Path::new(""));
        let index = GitSource::index(&repo, Path::new("")).unwrap();
        for source in [&tree as &dyn Source, &index] {
            assert_eq!(source.read("certs/real.pem").unwrap(), b"PEM");
            assert_eq!(source.read("certs/link.pem").unwrap(), b"PEM");
            assert_eq!(source.read("shared/link.pem").unwrap(), b"PEM");
            assert!(matches!(
                source.read("certs/escape.pem"),
                Err(SourceError::Escapes(_))
            ));
            assert!(matches!(
                source.read("certs/abs.pem"),
                Err(SourceError::Escapes(_))
            ));
            assert!(matches!(
                source.read("certs/none.pem"),
                Err(SourceError::NotFound(_))
            ));
            assert!(matches!(source.read("loop"), Err(SourceError::Io { .. })));
        }
        assert!(matches!(tree.read("certs"), Err(SourceError::Io { .. })));
    }
}
