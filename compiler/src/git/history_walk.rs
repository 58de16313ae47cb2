//! The first-parent history walk that dates every certificate (CT401): trust.yaml
//! followed across renames, states read cheaply and remembered by blob id.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

use git2::{Oid, Repository};

use super::tree_source::{blob_bytes, resolve_traced, tree_lookup};
use super::{GitError, Repo, Side};
use crate::history::Seen;
use crate::source::{repo_dir, repo_join};

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

/// Values read once per key and remembered, including "could not be read" (`None`).
struct Memo<K, V>(HashMap<K, Option<Rc<V>>>);

impl<K: Eq + std::hash::Hash, V> Memo<K, V> {
    fn new() -> Self {
        Memo(HashMap::new())
    }

    /// The value for `key`, read with `read` the first time only.
    fn get_or_read(&mut self, key: K, read: impl FnOnce() -> Option<V>) -> Option<Rc<V>> {
        self.0
            .entry(key)
            .or_insert_with(|| read().map(Rc::new))
            .clone()
    }
}

/// The fingerprints a state trusts (its `authorities`), read cheaply: trust.yaml is
/// parsed, certificate files are PEM-decoded and hashed, no X.509 parsing. Cached by
/// blob id. `None` for a state catrust could not have built (trust.yaml does not
/// parse, a file is missing): such a commit leaves the nodes as they were, so the walk
/// looks through it.
struct StateReader<'r> {
    repo: &'r Repository,
    configs: Memo<(Oid, String), ConfigFiles>,
    certs: Memo<Oid, Vec<String>>,
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

/// The certificate sources of the trust.yaml blob `blob` at `path`.
fn read_config(repo: &Repository, blob: Oid, path: &str) -> Option<ConfigFiles> {
    let bytes = blob_bytes(repo, blob, path).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let file = crate::span::SourceFile::new(path.to_string(), text);
    let (config, _) = crate::parse::parse(&file);
    let config = config?;
    let mut files = Vec::new();
    let mut inline = Vec::new();
    for a in &config.authorities {
        match &a.source {
            crate::config::CertSource::File(f) => files.push(repo_join(repo_dir(path), &f.value)?),
            crate::config::CertSource::Pem(p) => inline.extend(fingerprints(p.value.as_bytes())?),
        }
    }
    Some(ConfigFiles { files, inline })
}

/// The identity of a state: trust.yaml's blob and every file it names.
type StateKey = (Oid, Vec<Option<Oid>>);

impl<'r> StateReader<'r> {
    fn new(repo: &'r Repository) -> Self {
        StateReader {
            repo,
            configs: Memo::new(),
            certs: Memo::new(),
        }
    }

    fn config(&mut self, blob: Oid, path: &str) -> Option<Rc<ConfigFiles>> {
        let repo = self.repo;
        self.configs
            .get_or_read((blob, path.to_string()), || read_config(repo, blob, path))
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
                .get_or_read(id, || fingerprints(&blob_bytes(repo, id, "").ok()?))?;
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

/// What a commit's state trusts; `None` for a state catrust could not have built.
type State = Option<Rc<BTreeSet<String>>>;

/// The state last read and what it was read for: a commit with the same key has the
/// same state, so nothing is read again.
struct LastState<K>(Option<(K, State)>);

impl<K> LastState<K> {
    /// The remembered state, if `same` says its key holds for this commit too.
    fn get(&self, same: impl FnOnce(&K) -> bool) -> Option<State> {
        self.0
            .as_ref()
            .filter(|(key, _)| same(key))
            .map(|(_, state)| state.clone())
    }

    fn set(&mut self, key: K, state: State) {
        self.0 = Some((key, state));
    }

    fn forget(&mut self) {
        self.0 = None;
    }
}

/// The ids of the root entries `names` in `tree`.
fn root_ids(tree: &git2::Tree<'_>, names: &[String]) -> Vec<Option<Oid>> {
    names
        .iter()
        .map(|n| tree.get_name(n).map(|e| e.id()))
        .collect()
}

/// The states of trust.yaml along the walk: where it is, and the states last read.
struct States<'r> {
    repo: &'r Repo,
    reader: StateReader<'r>,
    /// trust.yaml's path at the commit being read; `None` once it did not exist yet.
    path: Option<String>,
    /// Keyed by the root entries the last parsed state depends on, and their ids.
    by_roots: LastState<(Vec<String>, Vec<Option<Oid>>)>,
    /// Keyed by the last parsed state's [`StateKey`].
    by_key: LastState<StateKey>,
    empty: Rc<BTreeSet<String>>,
    stats: WalkStats,
}

impl<'r> States<'r> {
    fn new(repo: &'r Repo, path: &str) -> Self {
        States {
            repo,
            reader: StateReader::new(&repo.repo),
            path: Some(path.to_string()),
            by_roots: LastState(None),
            by_key: LastState(None),
            empty: Rc::default(),
            stats: WalkStats::default(),
        }
    }

    /// The state of `commit`; `child` is the commit walked just before it.
    fn at(
        &mut self,
        commit: &git2::Commit<'_>,
        child: Option<&git2::Commit<'_>>,
    ) -> Result<State, GitError> {
        self.stats.commits += 1;
        let tree = commit.tree()?;
        if let Some(state) = self
            .by_roots
            .get(|(names, ids)| root_ids(&tree, names) == *ids)
        {
            return Ok(state);
        }
        self.follow_rename(&tree, child)?;
        let Some(path) = self.path.clone() else {
            self.by_roots.forget();
            return Ok(Some(self.empty.clone()));
        };
        let mut roots = BTreeSet::new();
        let state = self.parse(&tree, &path, &mut roots);
        let names: Vec<String> = roots.into_iter().collect();
        let ids = root_ids(&tree, &names);
        self.by_roots.set((names, ids), state.clone());
        Ok(state)
    }

    /// trust.yaml gone at this commit: renamed (seen from the child), or added.
    fn follow_rename(
        &mut self,
        tree: &git2::Tree<'_>,
        child: Option<&git2::Commit<'_>>,
    ) -> Result<(), GitError> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        if tree.get_path(Path::new(&path)).is_ok() {
            return Ok(());
        }
        self.path = match child {
            Some(c) => path_in(self.repo, tree, Side::Commit(c), &path)?,
            None => None,
        };
        self.by_key.forget();
        Ok(())
    }

    /// The state trust.yaml at `path` of `tree` describes, read unless it is the last
    /// one read; `roots` gets the root entries it depends on.
    fn parse(&mut self, tree: &git2::Tree<'_>, path: &str, roots: &mut BTreeSet<String>) -> State {
        let (key, files) = self.reader.key(tree, path, roots)?;
        if let Some(state) = self.by_key.get(|k| *k == key) {
            return state;
        }
        self.stats.states_read += 1;
        let state = self.reader.state(&key, &files).map(Rc::new);
        self.by_key.set(key, state.clone());
        state
    }
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

/// Where each target's run stands as the walk goes back.
struct Runs<'t> {
    targets: &'t BTreeMap<String, u64>,
    status: BTreeMap<&'t String, Status>,
}

impl<'t> Runs<'t> {
    fn new(targets: &'t BTreeMap<String, u64>) -> Self {
        Runs {
            targets,
            status: targets.keys().map(|t| (t, Status::Unseen)).collect(),
        }
    }

    /// Extends or ends every run with `state`, the state of the commit `commit` at
    /// `order`, committed at `time`.
    fn observe(&mut self, state: &BTreeSet<String>, order: u64, time: i64, commit: Oid) {
        for (fp, st) in self.status.iter_mut() {
            let here = state.contains(*fp);
            *st = match (st.clone(), here) {
                (Status::Unseen | Status::Present { .. }, true) => Status::Present {
                    order,
                    time,
                    commit,
                },
                (
                    Status::Present {
                        order,
                        time,
                        commit,
                    },
                    false,
                ) => Status::Done(Some(seen_of(order, time, commit, false))),
                (Status::Unseen, false) if order >= self.targets[*fp] => Status::Done(None),
                (other, _) => other,
            };
        }
    }

    /// Whether any target is not dated yet.
    fn pending(&self) -> bool {
        self.status
            .values()
            .any(|s| matches!(s, Status::Unseen | Status::Present { .. }))
    }

    /// History ends: a run still going began at its oldest commit walked.
    fn end(&mut self, truncated: bool) {
        for st in self.status.values_mut() {
            if let Status::Present {
                order,
                time,
                commit,
            } = st.clone()
            {
                *st = Status::Done(Some(seen_of(order, time, commit, truncated)));
            }
        }
    }

    /// The targets dated.
    fn dated(self) -> BTreeMap<String, Seen> {
        self.status
            .into_iter()
            .filter_map(|(fp, st)| match st {
                Status::Done(Some(seen)) => Some((fp.clone(), seen)),
                _ => None,
            })
            .collect()
    }
}

/// One step back along the first-parent chain.
enum Step<'r> {
    Parent(git2::Commit<'r>),
    /// History ends here; `truncated`: cut by a shallow boundary or a missing parent.
    End {
        truncated: bool,
    },
}

fn step<'r>(commit: &git2::Commit<'r>, boundary: &HashSet<Oid>) -> Step<'r> {
    let cut = boundary.contains(&commit.id());
    let parent = if cut || commit.parent_count() == 0 {
        None
    } else {
        commit.parent(0).ok()
    };
    match parent {
        Some(parent) => Step::Parent(parent),
        None => Step::End {
            truncated: cut || commit.parent_count() > 0,
        },
    }
}

/// Dates every fingerprint in `targets` by walking the first-parent chain back from
/// `start` (where trust.yaml is at `path`): a fingerprint's `Seen` is the oldest
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
    let boundary = repo.shallow_boundary();
    let mut states = States::new(repo, path);
    let mut runs = Runs::new(targets);
    let mut commit = start.clone();
    let mut child: Option<git2::Commit<'_>> = None;
    let mut order: u64 = 1;
    loop {
        if let Some(state) = states.at(&commit, child.as_ref())? {
            runs.observe(&state, order, commit.time().seconds(), commit.id());
        }
        if !runs.pending() {
            break;
        }
        match step(&commit, &boundary) {
            Step::Parent(parent) => {
                child = Some(std::mem::replace(&mut commit, parent));
                order += 1;
            }
            Step::End { truncated } => {
                runs.end(truncated);
                break;
            }
        }
    }
    Ok((runs.dated(), states.stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(fps: &[&str]) -> BTreeSet<String> {
        fps.iter().map(|f| f.to_string()).collect()
    }

    fn commit(n: u8) -> Oid {
        Oid::from_bytes(&[n; 20]).unwrap()
    }

    #[test]
    fn a_run_is_dated_by_its_oldest_commit_and_a_gap_ends_it() {
        let targets = BTreeMap::from([("a".to_string(), 1), ("b".to_string(), 2)]);
        let mut runs = Runs::new(&targets);
        // Newest first: a at positions 1 to 3, b at 2 only, neither at 4.
        runs.observe(&state(&["a"]), 1, 300, commit(1));
        assert!(runs.pending());
        runs.observe(&state(&["a", "b"]), 2, 200, commit(2));
        runs.observe(&state(&["a"]), 3, 100, commit(3));
        runs.observe(&state(&[]), 4, 50, commit(4));
        assert!(!runs.pending());
        let dated = runs.dated();
        assert_eq!(dated["a"], seen_of(3, 100, commit(3), false));
        assert_eq!(dated["b"], seen_of(2, 200, commit(2), false));
    }

    #[test]
    fn a_target_absent_where_its_run_must_have_begun_is_left_out() {
        let targets = BTreeMap::from([("a".to_string(), 1), ("b".to_string(), 2)]);
        let mut runs = Runs::new(&targets);
        runs.observe(&state(&[]), 1, 300, commit(1));
        assert!(runs.pending(), "b may still begin at position 2");
        runs.observe(&state(&[]), 2, 200, commit(2));
        assert!(!runs.pending());
        assert!(runs.dated().is_empty());
    }

    #[test]
    fn where_history_ends_a_run_still_going_is_dated_and_marked_if_cut() {
        let targets = BTreeMap::from([("a".to_string(), 1)]);
        for truncated in [false, true] {
            let mut runs = Runs::new(&targets);
            runs.observe(&state(&["a"]), 1, 300, commit(1));
            runs.end(truncated);
            assert!(!runs.pending());
            assert_eq!(runs.dated()["a"], seen_of(1, 300, commit(1), truncated));
        }
    }

    #[test]
    fn the_last_state_is_reused_only_for_the_same_key() {
        let mut last = LastState(None);
        assert_eq!(last.get(|_: &u8| true), None);
        let read: State = Some(Rc::new(state(&["a"])));
        last.set(7, read.clone());
        assert_eq!(last.get(|k| *k == 7), Some(read));
        assert_eq!(last.get(|k| *k == 8), None);
        last.forget();
        assert_eq!(last.get(|_| true), None);
    }
}
