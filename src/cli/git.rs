//! The git side of the command line: which state a command reads (`--rev`, `--staged`,
//! the working tree), the CT401 check, provenance, and `catrust plan`.

use std::path::{Path, PathBuf};

use catrust::compile::Context;
use catrust::diag::Diagnostic;
use catrust::git::{self, GitSource, Recording, Repo, Side};
use catrust::load::Loaded;
pub(super) use catrust::plan::request::Input;
use catrust::plan::request::{self, FromState};
use catrust::plan::{self, StateRef};
use catrust::source::Source;

use super::{print_findings, usage_error, EXIT_INPUT, EXIT_OK};

/// A source opened for one command.
pub(super) struct Opened {
    pub source: Box<dyn Source>,
    /// Repository path of trust.yaml.
    pub config_path: String,
    pub repo: Option<Repo>,
    pub shown_root: PathBuf,
    /// The commit of `--rev`.
    pub commit: Option<git2::Oid>,
    pub input: Input,
}

impl Opened {
    fn commit(&self) -> Option<git2::Commit<'_>> {
        let repo = self.repo.as_ref()?;
        repo.repo.find_commit(self.commit?).ok()
    }

    /// Runs `f` with the [`Side`] this source reads.
    fn with_side<T>(&self, f: impl FnOnce(Side<'_>) -> T) -> T {
        match self.commit() {
            Some(c) => f(Side::Commit(&c)),
            None if self.input == Input::Index => f(Side::Index),
            None => f(Side::WorkingTree),
        }
    }
}

fn shown_root(root: &Path) -> Result<PathBuf, String> {
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let cwd = cwd.canonicalize().unwrap_or(cwd);
    Ok(root
        .strip_prefix(&cwd)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| root.to_path_buf()))
}

/// `file` (relative to the current folder, possibly absent from the working tree) as
/// a repository path of the repository around it.
fn repo_path_of(file: &Path) -> Result<(Repo, String), String> {
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let abs = cwd.join(file);
    // The deepest folder that exists, canonical, plus the rest as written.
    let mut existing = abs.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut rest: Vec<std::ffi::OsString> = vec![abs.file_name().unwrap_or_default().to_owned()];
    while !existing.is_dir() {
        rest.push(existing.file_name().unwrap_or_default().to_owned());
        if !existing.pop() {
            break;
        }
    }
    let existing = existing
        .canonicalize()
        .map_err(|e| format!("{}: {e}", existing.display()))?;
    let repo = Repo::discover(&existing).ok_or_else(|| {
        format!(
            "{} is not in a git repository (--rev, --staged and plan read git)",
            file.display()
        )
    })?;
    let mut full = existing;
    for part in rest.iter().rev() {
        full.push(part);
    }
    let rel = full.strip_prefix(&repo.workdir).map_err(|_| {
        format!(
            "{} is outside the repository {}",
            file.display(),
            repo.workdir.display()
        )
    })?;
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    Ok((repo, parts.join("/")))
}

/// Opens the state `input` of the trust.yaml named `file`.
pub(super) fn open(file: &Path, input: Input) -> Result<Opened, String> {
    // Like git itself, do not re-hash every object read from the local object
    // database (libgit2 does by default): the CT401 walk reads thousands of commits
    // and trees, and this is a read-only use of a repository the user already trusts.
    git2::opts::strict_hash_verification(false);
    if input == Input::WorkingTree {
        let (source, config_path) = super::working_tree(file)?;
        let repo = Repo::discover(source.root()).filter(|r| r.workdir == source.root());
        let shown_root = shown_root(source.root())?;
        return Ok(Opened {
            source: Box::new(source) as Box<dyn Source>,
            config_path,
            repo,
            shown_root,
            commit: None,
            input,
        });
    }
    let (repo, config_path) = repo_path_of(file)?;
    let shown_root = shown_root(&repo.workdir)?;
    let (source, commit): (Box<dyn Source>, _) = match &input {
        Input::Rev(rev) => {
            let commit = repo.commit(rev).map_err(|e| e.to_string())?;
            (
                Box::new(GitSource::tree(&repo, &commit, &shown_root)),
                Some(commit.id()),
            )
        }
        _ => (
            Box::new(GitSource::index(&repo, &shown_root).map_err(|e| e.to_string())?),
            None,
        ),
    };
    Ok(Opened {
        source,
        config_path,
        repo: Some(repo),
        shown_root,
        commit,
        input,
    })
}

/// Loads trust.yaml from `opened` (an unreadable trust.yaml is an invocation error).
pub(super) fn load(opened: &Opened, source: &dyn Source) -> Result<Loaded, String> {
    catrust::load::load(source, &opened.config_path)
        .map_err(|e| format!("cannot read trust.yaml ({}): {e}", opened.input.label()))
}

/// The CT401 findings for `loaded` (none outside git).
pub(super) fn rotation_findings(
    opened: &Opened,
    loaded: &Loaded,
    now: i64,
) -> Result<Vec<Diagnostic>, git::GitError> {
    let Some(repo) = &opened.repo else {
        return Ok(Vec::new());
    };
    let rotation = opened.with_side(|side| {
        git::rotation(
            repo,
            loaded,
            side,
            &opened.config_path,
            now,
            &opened.shown_root,
        )
    })?;
    Ok(rotation.diagnostics(loaded))
}

/// The build context: CT401 findings and the source commit. With `recorded` (from the
/// lock of the folder `--check` compares against), the recorded provenance is used,
/// so that `--check` compares content, not which commit rendered it.
pub(super) fn build_context(
    opened: &Opened,
    recording: &Recording<'_>,
    loaded: &Loaded,
    now: i64,
    recorded: Option<(Option<String>, bool)>,
) -> Result<Context, catrust::compile::Error> {
    let diagnostics = rotation_findings(opened, loaded, now)?;
    let (commit, dirty) = match (recorded, &opened.repo) {
        (Some(r), _) => r,
        (None, Some(repo)) => {
            opened.with_side(|side| git::provenance(repo, side, &recording.read.borrow()))
        }
        (None, None) => (None, false),
    };
    Ok(Context {
        diagnostics,
        commit,
        dirty,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum PlanFormat {
    Human,
    Json,
}

/// Opens and loads the state a plan checks, which must be in a repository.
fn open_checked(file: &Path, to: Input) -> Result<(Opened, Repo, Loaded), String> {
    let opened = open(file, to)?;
    let Some(repo) = opened.repo.clone() else {
        return Err(format!(
            "{} is not in a git repository: plan compares git states",
            file.display()
        ));
    };
    let loaded = load(&opened, &*opened.source)?;
    Ok((opened, repo, loaded))
}

/// `catrust plan`.
pub(super) fn plan(
    file: &Path,
    from: Option<String>,
    to: Input,
    format: PlanFormat,
    now: i64,
) -> i32 {
    let (opened, repo, to_loaded) = match open_checked(file, to) {
        Ok(o) => o,
        Err(e) => return usage_error(e),
    };
    let from_state = FromState::choose(from.as_deref(), opened.input.rev());
    let states = match opened.with_side(|side| {
        git::plan_states(
            &repo,
            &from_state,
            &to_loaded,
            side,
            &opened.config_path,
            now,
            &opened.shown_root,
        )
    }) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    let to_ref = StateRef {
        label: opened.input.label(),
        commit: opened.commit.map(|c| c.to_string()),
    };
    let plan = plan::diff(
        (&states.from, &states.from_loaded),
        (&to_ref, &to_loaded),
        states.rotation.removals.clone(),
        states.rotation.facts.check_time,
    );
    match format {
        PlanFormat::Human => print!("{}", plan::human(&plan)),
        PlanFormat::Json => print!("{}", plan::json(&plan)),
    }
    let findings = request::failing_findings(
        catrust::lint::lint(&to_loaded, now),
        states.rotation.diagnostics(&to_loaded),
    );
    print_findings(&findings, &to_loaded.sources);
    if request::fails(&findings, plan.breaks_ct401) {
        EXIT_INPUT
    } else {
        EXIT_OK
    }
}
