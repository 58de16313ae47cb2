//! Git at the edge: sources that read a commit's tree or the index, the source commit of
//! a build, and the first-parent history walk that dates every certificate (CT401).
//!
//! Everything here goes through libgit2 (`git2`, bundled, no system library); catrust
//! never runs the `git` program. The rules themselves ([`crate::history`],
//! [`crate::plan`]) are pure and only see the facts this module gathers.
//!
//! In pipeline order: `tree_source` reads files from a commit's tree or the index,
//! `history_walk` dates certificates along the first-parent chain, `rotation` puts both
//! together into one CT401 check, and `plan_states` reads what `catrust plan` compares.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use git2::{Oid, Repository};

mod history_walk;
mod plan_states;
mod rotation;
mod tree_source;

pub use history_walk::{first_seen, path_in, WalkStats};
pub use plan_states::{plan_states, PlanStates, PlanStatesError};
pub use rotation::{provenance, rotation, rotation_against, Rotation};
pub use tree_source::{differs_from, load_at, GitSource, Recording};

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

/// Which state is being checked against its parent.
#[derive(Clone, Copy)]
pub enum Side<'a> {
    WorkingTree,
    Index,
    Commit(&'a git2::Commit<'a>),
}
