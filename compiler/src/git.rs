//! Git at the edge: sources that read a commit's tree or the index, the source commit of
//! a build, and the first-parent history walk that dates every certificate (CT401).
//!
//! Everything here goes through libgit2 (`git2`, bundled, no system library); catrust
//! never runs the `git` program. The rules themselves ([`crate::history`],
//! [`crate::plan`]) are pure and only see the facts this module gathers.
//!
//! Symlinks inside a tree or the index are followed the way a checkout would follow
//! them, as long as every hop stays inside the repository (a link to `../x` from the
//! root, or to an absolute path, is refused as an escape, CT005), at most 40 hops.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use git2::{ObjectType, Oid, Repository};

use crate::history::Seen;
use crate::source::{repo_dir, repo_join, Source, SourceError};

/// A git failure: the invocation or environment is wrong (exit 2). Keeps libgit2's
/// error as the source; the message is libgit2's, without its class and code.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{}", .0.message())]
    Libgit2(#[from] git2::Error),
    #[error("unknown revision `{rev}`: {}", .source.message())]
    UnknownRevision {
        rev: String,
        #[source]
        source: git2::Error,
    },
    #[error("`{0}` does not name a commit")]
    NotACommit(String),
}

const LINK_MODE: i32 = 0o120000;

/// `(filemode, id)` of the entry at a repository path (the flag: is it the last component).
type Lookup<'a> = dyn Fn(&str, bool) -> Option<(i32, Oid)> + 'a;
const MAX_HOPS: usize = 40;

/// An open repository with a working tree.
#[derive(Clone)]
pub struct Repo {
    pub repo: Rc<Repository>,
    /// The working tree root, canonical.
    pub workdir: PathBuf,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("workdir", &self.workdir)
            .finish()
    }
}

impl Repo {
    /// The repository holding `dir`, if any (bare repositories do not count).
    pub fn discover(dir: &Path) -> Option<Repo> {
        let repo = Repository::discover(dir).ok()?;
        let workdir = repo.workdir()?.canonicalize().ok()?;
        Some(Repo {
            repo: Rc::new(repo),
            workdir,
        })
    }

    /// `REV` (anything `git rev-parse` takes) as a commit.
    pub fn commit(&self, rev: &str) -> Result<git2::Commit<'_>, GitError> {
        let object =
            self.repo
                .revparse_single(rev)
                .map_err(|source| GitError::UnknownRevision {
                    rev: rev.to_owned(),
                    source,
                })?;
        object
            .peel_to_commit()
            .map_err(|_| GitError::NotACommit(rev.to_owned()))
    }

    /// `HEAD` as a commit; `None` on a branch with no commit yet.
    pub fn head(&self) -> Option<git2::Commit<'_>> {
        self.repo.head().ok()?.peel_to_commit().ok()
    }

    /// Whether this clone is shallow (history cut at `.git/shallow`).
    pub fn shallow_boundary(&self) -> HashSet<Oid> {
        std::fs::read_to_string(self.repo.path().join("shallow"))
            .map(|text| {
                text.lines()
                    .filter_map(|l| Oid::from_str(l.trim()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Follows a repository path through symlinks, with `lookup(prefix)` giving the
/// `(filemode, id)` of an entry (`None` when absent; the index has no folder entries,
/// so an absent prefix that is not the last component is taken as a folder).
fn resolve(repo: &Repository, repo_path: &str, lookup: &Lookup<'_>) -> Result<Oid, SourceError> {
    resolve_traced(repo, repo_path, lookup, &mut Vec::new())
}

/// [`resolve`], pushing every symlink followed and the final path onto `trace`.
fn resolve_traced(
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

fn tree_lookup<'a, 'b>(tree: &'a git2::Tree<'b>) -> impl Fn(&str, bool) -> Option<(i32, Oid)> + 'a {
    move |p: &str, _last: bool| {
        tree.get_path(Path::new(p))
            .ok()
            .map(|e| (e.filemode(), e.id()))
    }
}

fn blob_bytes(repo: &Repository, id: Oid, shown: &str) -> Result<Vec<u8>, SourceError> {
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

/// The files of one commit's tree. Nothing is checked out.
pub struct GitTreeSource {
    repo: Rc<Repository>,
    tree: Oid,
    shown_root: PathBuf,
}

impl GitTreeSource {
    pub fn new(repo: &Repo, commit: &git2::Commit<'_>, shown_root: &Path) -> Self {
        GitTreeSource {
            repo: repo.repo.clone(),
            tree: commit.tree_id(),
            shown_root: shown_root.to_path_buf(),
        }
    }

    /// The blob id a repository path resolves to (through in-tree symlinks).
    pub fn blob_id(&self, repo_path: &str) -> Result<Oid, SourceError> {
        let tree = self
            .repo
            .find_tree(self.tree)
            .map_err(|e| SourceError::Io {
                path: repo_path.into(),
                message: e.message().into(),
            })?;
        let lookup = tree_lookup(&tree);
        // Bound to a local: the closure borrows `tree`, which must outlive it.
        #[allow(clippy::let_and_return)]
        let id = resolve(&self.repo, repo_path, &lookup);
        id
    }
}

impl Source for GitTreeSource {
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

/// The git index: what the next commit will hold (`--staged`).
pub struct GitIndexSource {
    repo: Rc<Repository>,
    index: git2::Index,
    shown_root: PathBuf,
}

impl GitIndexSource {
    pub fn new(repo: &Repo, shown_root: &Path) -> Result<Self, GitError> {
        Ok(GitIndexSource {
            repo: repo.repo.clone(),
            index: repo.repo.index()?,
            shown_root: shown_root.to_path_buf(),
        })
    }

    pub fn blob_id(&self, repo_path: &str) -> Result<Oid, SourceError> {
        let index = &self.index;
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

impl Source for GitIndexSource {
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
    let tree = GitTreeSource::new(repo, commit, Path::new(""));
    read.iter()
        .any(|(path, id)| tree.blob_id(path).ok() != Some(*id))
}

/// Which state is being checked against its parent.
#[derive(Clone, Copy)]
pub enum Side<'a> {
    WorkingTree,
    Index,
    Commit(&'a git2::Commit<'a>),
}

/// Where trust.yaml (at `path` in the checked state) was in `old_tree`: the same path,
/// or the path git's rename detection finds it came from. `None` when it did not exist.
pub fn path_in(
    repo: &Repo,
    old_tree: &git2::Tree<'_>,
    side: Side<'_>,
    path: &str,
) -> Result<Option<String>, GitError> {
    if old_tree.get_path(Path::new(path)).is_ok() {
        return Ok(Some(path.to_string()));
    }
    let r = &repo.repo;
    let mut opts = git2::DiffOptions::new();
    let mut find = git2::DiffFindOptions::new();
    find.renames(true);
    let mut diff = match side {
        Side::Commit(c) => {
            r.diff_tree_to_tree(Some(old_tree), Some(&c.tree()?), Some(&mut opts))?
        }
        Side::Index => r.diff_tree_to_index(Some(old_tree), None, Some(&mut opts))?,
        Side::WorkingTree => {
            opts.include_untracked(true).recurse_untracked_dirs(true);
            find.for_untracked(true);
            r.diff_tree_to_workdir_with_index(Some(old_tree), Some(&mut opts))?
        }
    };
    diff.find_similar(Some(&mut find))?;
    for delta in diff.deltas() {
        if matches!(delta.status(), git2::Delta::Renamed | git2::Delta::Copied)
            && delta.new_file().path() == Some(Path::new(path))
        {
            return Ok(delta
                .old_file()
                .path()
                .map(|p| p.to_string_lossy().replace('\\', "/")));
        }
    }
    Ok(None)
}

/// The fingerprints a state trusts (its `authorities`), read cheaply: trust.yaml is
/// parsed, certificate files are PEM-decoded and hashed, no X.509 parsing. Cached by
/// blob id. `None` for a state catrust could not have built (trust.yaml does not
/// parse, a file is missing): such a commit leaves the nodes as they were, so the walk
/// looks through it.
struct StateReader<'r> {
    repo: &'r Repository,
    configs: HashMap<(Oid, String), Option<Rc<ConfigFiles>>>,
    certs: HashMap<Oid, Option<Rc<Vec<String>>>>,
}

struct ConfigFiles {
    /// Repository paths of `file:` sources.
    files: Vec<String>,
    /// Fingerprints of inline `pem:` sources.
    inline: Vec<String>,
}

fn fingerprints(text: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(text).ok()?;
    let scan = crate::pem::scan(text);
    (!scan.certificates.is_empty()).then(|| {
        scan.certificates
            .iter()
            .map(|c| catrust_bundle::sha256_hex(&c.der))
            .collect()
    })
}

/// The identity of a state: trust.yaml's blob and every file it names.
type StateKey = (Oid, Vec<Option<Oid>>);

impl<'r> StateReader<'r> {
    fn config(&mut self, blob: Oid, path: &str) -> Option<Rc<ConfigFiles>> {
        let repo = self.repo;
        self.configs
            .entry((blob, path.to_string()))
            .or_insert_with(|| {
                let bytes = blob_bytes(repo, blob, path).ok()?;
                let text = String::from_utf8(bytes).ok()?;
                let file = crate::span::SourceFile::new(path.to_string(), text);
                let (config, _) = crate::parse::parse(&file);
                let config = config?;
                let mut files = Vec::new();
                let mut inline = Vec::new();
                for a in &config.authorities {
                    match &a.source {
                        crate::config::CertSource::File(f) => {
                            files.push(repo_join(repo_dir(path), &f.value)?)
                        }
                        crate::config::CertSource::Pem(p) => {
                            inline.extend(fingerprints(p.value.as_bytes())?)
                        }
                    }
                }
                Some(Rc::new(ConfigFiles { files, inline }))
            })
            .clone()
    }

    /// The state key of `tree`, the files it names, and the top-level names of every
    /// path involved (trust.yaml, the files, the symlinks followed): while none of
    /// those root entries changes, the state cannot change.
    fn key(
        &mut self,
        tree: &git2::Tree<'_>,
        path: &str,
        roots: &mut BTreeSet<String>,
    ) -> Option<(StateKey, Rc<ConfigFiles>)> {
        let entry = tree.get_path(Path::new(path)).ok()?;
        let files = self.config(entry.id(), path)?;
        let lookup = tree_lookup(tree);
        let mut trace = vec![path.to_string()];
        let ids = files
            .files
            .iter()
            .map(|f| {
                trace.push(f.clone());
                resolve_traced(self.repo, f, &lookup, &mut trace).ok()
            })
            .collect();
        roots.extend(
            trace
                .iter()
                .filter_map(|p| p.split('/').next().map(str::to_string)),
        );
        Some(((entry.id(), ids), files))
    }

    fn state(&mut self, key: &StateKey, files: &ConfigFiles) -> Option<BTreeSet<String>> {
        let mut out: BTreeSet<String> = files.inline.iter().cloned().collect();
        for id in &key.1 {
            let id = (*id)?;
            let repo = self.repo;
            let fps = self
                .certs
                .entry(id)
                .or_insert_with(|| fingerprints(&blob_bytes(repo, id, "").ok()?).map(Rc::new))
                .clone()?;
            out.extend(fps.iter().cloned());
        }
        Some(out)
    }
}

/// Statistics of one walk, for `--verbose`-style reporting and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalkStats {
    pub commits: usize,
    pub states_read: usize,
}

#[derive(Debug, Clone)]
enum Status {
    Unseen,
    Present { order: u64, time: i64, commit: Oid },
    Done(Option<Seen>),
}

fn seen_of(order: u64, time: i64, commit: Oid, truncated: bool) -> Seen {
    Seen {
        time,
        commit: Some(commit.to_string()),
        order,
        truncated,
    }
}

/// Dates every fingerprint in `targets` by walking the first-parent chain back from
/// `start` (where trust.yaml is at `path`): a fingerprint's [`Seen`] is the oldest
/// commit of the unbroken run of commits, ending at the newest commit holding it,
/// whose state trusts it (a CA removed and re-added later starts a new run: nodes
/// dropped it in between). trust.yaml is followed across renames (git's rename
/// detection, when the path disappears going back); certificates are matched by
/// fingerprint, so renamed certificate files keep their history.
///
/// Only commits whose trust.yaml or certificate blobs differ from the previous one are
/// parsed; parsed states are cached by blob id. The walk stops as soon as every target
/// is dated. `targets` maps each fingerprint to the position (1 = `start`) by which its
/// run must have begun: 1 for what the checked state trusts, 2 for what `--rev R`
/// removed (present in `R^`). A target absent there is left out: the caller dates it
/// as uncommitted.
pub fn first_seen(
    repo: &Repo,
    start: &git2::Commit<'_>,
    path: &str,
    targets: &BTreeMap<String, u64>,
) -> Result<(BTreeMap<String, Seen>, WalkStats), GitError> {
    type State = Option<Rc<BTreeSet<String>>>;
    let r = &*repo.repo;
    let boundary = repo.shallow_boundary();
    let mut reader = StateReader {
        repo: r,
        configs: HashMap::new(),
        certs: HashMap::new(),
    };
    let mut status: BTreeMap<&String, Status> =
        targets.keys().map(|t| (t, Status::Unseen)).collect();
    let mut stats = WalkStats::default();
    let mut commit = start.clone();
    let mut child: Option<git2::Commit<'_>> = None;
    let mut path = Some(path.to_string());
    let mut order: u64 = 1;
    // The root entries the last parsed state depends on, their ids, and that state.
    let mut quick: Option<(Vec<String>, Vec<Option<Oid>>, State)> = None;
    // The last parsed state key and its state.
    let mut last_key: Option<(StateKey, State)> = None;
    let empty: Rc<BTreeSet<String>> = Rc::default();
    let root_ids = |tree: &git2::Tree<'_>, names: &[String]| -> Vec<Option<Oid>> {
        names
            .iter()
            .map(|n| tree.get_name(n).map(|e| e.id()))
            .collect()
    };
    loop {
        stats.commits += 1;
        let tree = commit.tree()?;
        let unchanged = quick
            .as_ref()
            .filter(|(names, ids, _)| root_ids(&tree, names) == *ids)
            .map(|(_, _, st)| st.clone());
        let state: State = match unchanged {
            Some(st) => st,
            None => {
                // trust.yaml gone at this commit: renamed (seen from the child), or added.
                if let Some(p) = path.clone() {
                    if tree.get_path(Path::new(&p)).is_err() {
                        path = match &child {
                            Some(c) => path_in(repo, &tree, Side::Commit(c), &p)?,
                            None => None,
                        };
                        last_key = None;
                    }
                }
                match &path {
                    None => {
                        quick = None;
                        Some(empty.clone())
                    }
                    Some(p) => {
                        let mut roots = BTreeSet::new();
                        let st = match reader.key(&tree, p, &mut roots) {
                            None => None,
                            Some((key, files)) => match &last_key {
                                Some((k, st)) if *k == key => st.clone(),
                                _ => {
                                    stats.states_read += 1;
                                    let st = reader.state(&key, &files).map(Rc::new);
                                    last_key = Some((key, st.clone()));
                                    st
                                }
                            },
                        };
                        let names: Vec<String> = roots.into_iter().collect();
                        let ids = root_ids(&tree, &names);
                        quick = Some((names, ids, st.clone()));
                        st
                    }
                }
            }
        };
        if let Some(s) = &state {
            for (fp, st) in status.iter_mut() {
                let here = s.contains(*fp);
                *st = match (st.clone(), here) {
                    (Status::Unseen | Status::Present { .. }, true) => Status::Present {
                        order,
                        time: commit.time().seconds(),
                        commit: commit.id(),
                    },
                    (
                        Status::Present {
                            order,
                            time,
                            commit,
                        },
                        false,
                    ) => Status::Done(Some(seen_of(order, time, commit, false))),
                    (Status::Unseen, false) if order >= targets[*fp] => Status::Done(None),
                    (other, _) => other,
                };
            }
        }
        let pending = status
            .values()
            .any(|s| matches!(s, Status::Unseen | Status::Present { .. }));
        if !pending {
            break;
        }
        // Step to the first parent; a shallow boundary or a missing parent cuts history.
        let cut = boundary.contains(&commit.id());
        let parent = if cut || commit.parent_count() == 0 {
            None
        } else {
            commit.parent(0).ok()
        };
        let Some(parent) = parent else {
            let truncated = cut || commit.parent_count() > 0;
            for st in status.values_mut() {
                if let Status::Present {
                    order,
                    time,
                    commit,
                } = st.clone()
                {
                    *st = Status::Done(Some(seen_of(order, time, commit, truncated)));
                }
            }
            break;
        };
        child = Some(std::mem::replace(&mut commit, parent));
        order += 1;
    }
    let out = status
        .into_iter()
        .filter_map(|(fp, st)| match st {
            Status::Done(Some(seen)) => Some((fp.clone(), seen)),
            _ => None,
        })
        .collect();
    Ok((out, stats))
}

/// Loads the trust.yaml at `path` of `commit`'s tree.
pub fn load_at(
    repo: &Repo,
    commit: &git2::Commit<'_>,
    path: &str,
    shown_root: &Path,
) -> Result<crate::load::Loaded, SourceError> {
    crate::load::load(&GitTreeSource::new(repo, commit, shown_root), path)
}

/// The CT401 inputs and verdicts of one check.
#[derive(Debug, Default)]
pub struct Rotation {
    /// The state compared against (`None`: no parent commit, or trust.yaml is new).
    pub parent: Option<crate::load::Loaded>,
    pub parent_commit: Option<String>,
    pub facts: crate::history::Facts,
    pub removals: Vec<crate::history::Removal>,
    pub stats: WalkStats,
    /// The checked commit is the oldest of a shallow clone: its parent is unknown.
    pub parent_cut: bool,
}

impl Rotation {
    /// The CT401 findings, placed on `checked`.
    pub fn diagnostics(&self, checked: &crate::load::Loaded) -> Vec<crate::diag::Diagnostic> {
        let mut out = crate::history::diagnostics(&self.removals, checked);
        if self.parent_cut {
            out.push(
                crate::diag::Diagnostic::new(
                    crate::rules::Code::Ct401,
                    "cannot check removals: this commit is the oldest of a shallow clone, so its parent state is unknown (history is too short to decide)",
                )
                .with_help("fetch the whole history: `git fetch --unshallow` (GitHub Actions: `actions/checkout` with `fetch-depth: 0`)"),
            );
        }
        out
    }

    pub fn blocks(&self) -> bool {
        self.parent_cut || self.removals.iter().any(|r| r.verdict.blocks())
    }
}

/// The commit a check starts from and its time: `--rev R` is R at R's commit time; the
/// working tree and the index are `HEAD` at `now`.
fn start<'r>(repo: &'r Repo, side: Side<'_>, now: i64) -> Option<(git2::Commit<'r>, i64)> {
    match side {
        Side::Commit(c) => {
            let c = repo.repo.find_commit(c.id()).ok()?;
            let t = c.time().seconds();
            Some((c, t))
        }
        _ => repo.head().map(|h| (h, now)),
    }
}

/// CT401 for `checked` (at repository path `path` on `side`) against `parent`, a state
/// at `parent_commit` whose trust.yaml is at `parent_path`.
pub fn rotation_against(
    repo: &Repo,
    parent: crate::load::Loaded,
    parent_commit: Option<String>,
    checked: &crate::load::Loaded,
    side: Side<'_>,
    path: &str,
    now: i64,
) -> Result<Rotation, GitError> {
    let mut out = Rotation {
        parent_commit,
        ..Rotation::default()
    };
    let removed = crate::history::removed(&parent, checked);
    let committed = matches!(side, Side::Commit(_));
    let targets: BTreeMap<String, u64> = if removed.is_empty() {
        BTreeMap::new()
    } else {
        checked
            .certificates
            .iter()
            .map(|c| (c.info.sha256.clone(), 1))
            .chain(
                removed
                    .into_iter()
                    .map(|fp| (fp, if committed { 2 } else { 1 })),
            )
            .collect()
    };
    let check_time = start(repo, side, now).map_or(now, |(_, t)| t);
    out.facts.check_time = check_time;
    if !targets.is_empty() {
        if let Some((commit, _)) = start(repo, side, now) {
            // The walk follows the checked side's trust.yaml path; for an uncommitted
            // state it starts at HEAD, where the file may have had another name.
            let walk_path = match side {
                Side::Commit(_) => Some(path.to_string()),
                _ => path_in(repo, &commit.tree()?, side, path)?,
            };
            if let Some(walk_path) = walk_path {
                let (seen, stats) = first_seen(repo, &commit, &walk_path, &targets)?;
                out.facts.seen = seen;
                out.stats = stats;
            }
        }
    }
    out.removals = crate::history::removals(&parent, checked, &out.facts);
    out.parent = Some(parent);
    Ok(out)
}

/// CT401 for `checked` against its parent state: `HEAD` for the working tree and the
/// index, the first parent for a commit. No parent (first commit, trust.yaml added)
/// means nothing can have been removed.
pub fn rotation(
    repo: &Repo,
    checked: &crate::load::Loaded,
    side: Side<'_>,
    path: &str,
    now: i64,
    shown_root: &Path,
) -> Result<Rotation, GitError> {
    let parent = match side {
        Side::Commit(c) => {
            if c.parent_count() > 0 && repo.shallow_boundary().contains(&c.id()) {
                return Ok(Rotation {
                    parent_cut: true,
                    ..Rotation::default()
                });
            }
            match c.parent(0) {
                Ok(p) => Some(p),
                Err(_) if c.parent_count() > 0 || repo.shallow_boundary().contains(&c.id()) => {
                    return Ok(Rotation {
                        parent_cut: true,
                        ..Rotation::default()
                    })
                }
                Err(_) => None,
            }
        }
        _ => repo.head(),
    };
    let Some(parent) = parent else {
        return Ok(Rotation::default());
    };
    let Some(parent_path) = path_in(repo, &parent.tree()?, side, path)? else {
        return Ok(Rotation::default());
    };
    let Ok(parent_loaded) = load_at(repo, &parent, &parent_path, shown_root) else {
        return Ok(Rotation::default());
    };
    rotation_against(
        repo,
        parent_loaded,
        Some(parent.id().to_string()),
        checked,
        side,
        path,
        now,
    )
}

/// The source commit of a build and whether the files it read differ from it: `REV`
/// and clean for `--rev`; `HEAD` and "differs" for the working tree and the index.
pub fn provenance(
    repo: &Repo,
    side: Side<'_>,
    read: &BTreeMap<String, Oid>,
) -> (Option<String>, bool) {
    match side {
        Side::Commit(c) => (Some(c.id().to_string()), false),
        _ => match repo.head() {
            Some(head) => (Some(head.id().to_string()), differs_from(repo, &head, read)),
            None => (None, true),
        },
    }
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
        let tree = GitTreeSource::new(&repo, &head, Path::new(""));
        let index = GitIndexSource::new(&repo, Path::new("")).unwrap();
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
