//! The first-parent history walk that dates every certificate (CT401): trust.yaml
//! followed across renames, states read cheaply and remembered by blob id.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
