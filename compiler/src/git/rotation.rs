//! One CT401 check: the parent state, the dates the history walk gives, the verdicts;
//! and the source commit of a build.

use std::collections::BTreeMap;
use std::path::Path;

use git2::Oid;

use super::{differs_from, first_seen, load_at, path_in, GitError, Repo, Side, WalkStats};

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
