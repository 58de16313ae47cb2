//! What `catrust plan` compares the checked state against, read from git: the earlier
//! state [`FromState`] names, loaded, and the rotation check it says to run.

use std::path::Path;

use super::{load_at, path_in, rotation, rotation_against, GitError, Repo, Rotation, Side};
use crate::load::Loaded;
use crate::plan::request::{self, FromState};
use crate::plan::StateRef;
use crate::source::SourceError;

/// Why the earlier state or the rotation check could not be read (an invocation error).
#[derive(Debug, thiserror::Error)]
pub enum PlanStatesError {
    /// `--from REV` names no commit.
    #[error(transparent)]
    Revision(GitError),
    #[error("git: {0}")]
    Git(#[from] GitError),
    #[error("cannot read trust.yaml at {label}: {source}")]
    Load {
        label: String,
        #[source]
        source: SourceError,
    },
}

/// The earlier side of a plan and the rotation check between the two sides.
#[derive(Debug)]
pub struct PlanStates {
    pub from: StateRef,
    /// Empty when there is no earlier state (everything is added).
    pub from_loaded: Loaded,
    pub rotation: Rotation,
}

/// The state `from` names, loaded, and CT401 for `checked` (at repository path `path`
/// on `side`) against it: the checked state's own history when `from` is its parent,
/// else against that state alone.
pub fn plan_states(
    repo: &Repo,
    from: &FromState,
    checked: &Loaded,
    side: Side<'_>,
    path: &str,
    now: i64,
    shown_root: &Path,
) -> Result<PlanStates, PlanStatesError> {
    let label = from.label();
    let commit = from_commit(repo, from, side)?;
    let loaded = match &commit {
        Some(c) => load_earlier(repo, c, side, path, shown_root, &label)?,
        None => None,
    };
    let from_loaded = loaded.unwrap_or_else(|| request::nothing_before(path));
    let commit = commit.map(|c| c.id().to_string());
    let rotation = if from.is_parent() {
        rotation(repo, checked, side, path, now, shown_root)?
    } else {
        let parent = from_loaded.clone();
        rotation_against(repo, parent, commit.clone(), checked, side, path, now)?
    };
    Ok(PlanStates {
        from: StateRef { label, commit },
        from_loaded,
        rotation,
    })
}

/// The commit `from` names: `--from REV`, the checked commit's first parent, or HEAD
/// (`None` for a root commit or an empty repository).
fn from_commit<'a>(
    repo: &'a Repo,
    from: &FromState,
    side: Side<'a>,
) -> Result<Option<git2::Commit<'a>>, PlanStatesError> {
    Ok(match from {
        FromState::Rev(rev) => Some(repo.commit(rev).map_err(PlanStatesError::Revision)?),
        FromState::ParentOf(_) => match side {
            Side::Commit(c) => c.parent(0).ok(),
            _ => None,
        },
        FromState::Head => repo.head(),
    })
}

/// trust.yaml at `commit`, followed across renames from `side`; `None` when it did not
/// exist there.
fn load_earlier(
    repo: &Repo,
    commit: &git2::Commit<'_>,
    side: Side<'_>,
    path: &str,
    shown_root: &Path,
    label: &str,
) -> Result<Option<Loaded>, PlanStatesError> {
    let tree = commit.tree().map_err(GitError::from)?;
    let Some(earlier_path) = path_in(repo, &tree, side, path)? else {
        return Ok(None);
    };
    match load_at(repo, commit, &earlier_path, shown_root) {
        Ok(loaded) => Ok(Some(loaded)),
        Err(source) => Err(PlanStatesError::Load {
            label: label.to_string(),
            source,
        }),
    }
}
