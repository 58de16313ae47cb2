//! Which state a command reads, and what `catrust plan` compares and when it fails,
//! decided from the flags alone; the CLI resolves the revisions, loads the states and
//! prints.

use crate::diag::Diagnostic;
use crate::load::Loaded;
use crate::rules::Severity;

/// Which state of trust.yaml a command reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    WorkingTree,
    Index,
    Rev(String),
}

impl Input {
    /// `--rev REV` (or `plan --to REV`) wins over `--staged`; neither is the working tree.
    pub fn from_flags(staged: bool, rev: Option<String>) -> Input {
        match (staged, rev) {
            (_, Some(r)) => Input::Rev(r),
            (true, None) => Input::Index,
            (false, None) => Input::WorkingTree,
        }
    }

    /// How reports and the plan name this state.
    pub fn label(&self) -> String {
        match self {
            Input::WorkingTree => "working tree".into(),
            Input::Index => "index".into(),
            Input::Rev(r) => r.clone(),
        }
    }

    /// The revision read, if a commit.
    pub fn rev(&self) -> Option<&str> {
        match self {
            Input::Rev(r) => Some(r),
            _ => None,
        }
    }
}

/// The earlier state a plan compares against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromState {
    /// `--from REV`: that revision, and the rotation checked against it alone.
    Rev(String),
    /// No `--from`, `--to REV`: REV's first parent (none for a root commit).
    ParentOf(String),
    /// No `--from`, the working tree or the index: HEAD (none in an empty repository).
    Head,
}

impl FromState {
    /// `--from` defaults to the checked state's parent: HEAD for the working tree and
    /// the index, `REV^` for `--to REV`.
    pub fn choose(from: Option<&str>, to_rev: Option<&str>) -> FromState {
        match (from, to_rev) {
            (Some(rev), _) => FromState::Rev(rev.to_string()),
            (None, Some(rev)) => FromState::ParentOf(rev.to_string()),
            (None, None) => FromState::Head,
        }
    }

    /// How the plan names this state.
    pub fn label(&self) -> String {
        match self {
            FromState::Rev(rev) => rev.clone(),
            FromState::ParentOf(rev) => format!("{rev}^"),
            FromState::Head => "HEAD".into(),
        }
    }

    /// Whether the from state is the checked state's parent, so the rotation rule reads
    /// the checked state's own history (`git::rotation`) rather than comparing against
    /// an arbitrary revision (`git::rotation_against`).
    pub fn is_parent(&self) -> bool {
        !matches!(self, FromState::Rev(_))
    }
}

/// The earlier state when there is none (no earlier commit, or trust.yaml did not exist
/// there): nothing is trusted, so everything is added.
pub fn nothing_before(config_file: &str) -> Loaded {
    Loaded {
        config_file: config_file.to_string(),
        config: None,
        certificates: Vec::new(),
        diagnostics: Vec::new(),
        sources: Default::default(),
    }
}

/// The findings that make a plan fail: the target state's errors (warnings do not),
/// then the rotation's (CT401).
pub fn failing_findings(
    target_lint: Vec<Diagnostic>,
    rotation: Vec<Diagnostic>,
) -> Vec<Diagnostic> {
    let mut findings: Vec<Diagnostic> = target_lint
        .into_iter()
        .filter(|d| d.severity() == Severity::Error)
        .collect();
    findings.extend(rotation);
    findings
}

/// Whether `catrust plan` fails: any failing finding, or a removal CT401 blocks
/// (`Plan::breaks_ct401`).
pub fn fails(findings: &[Diagnostic], breaks_ct401: bool) -> bool {
    !findings.is_empty() || breaks_ct401
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Code;

    #[test]
    fn a_revision_wins_over_staged_and_names_the_state() {
        let rev = Input::from_flags(true, Some("v2".into()));
        assert_eq!(rev, Input::Rev("v2".into()));
        assert_eq!((rev.label(), rev.rev()), ("v2".to_string(), Some("v2")));
        let index = Input::from_flags(true, None);
        assert_eq!(index, Input::Index);
        assert_eq!((index.label(), index.rev()), ("index".to_string(), None));
        let tree = Input::from_flags(false, None);
        assert_eq!(tree, Input::WorkingTree);
        assert_eq!(
            (tree.label(), tree.rev()),
            ("working tree".to_string(), None)
        );
    }

    #[test]
    fn no_earlier_state_trusts_nothing() {
        let before = nothing_before("ca/trust.yaml");
        assert_eq!(before.config_file, "ca/trust.yaml");
        assert!(before.config.is_none());
        assert!(before.certificates.is_empty() && before.diagnostics.is_empty());
    }

    #[test]
    fn from_defaults_to_the_checked_states_parent() {
        let head = FromState::choose(None, None);
        assert_eq!(head, FromState::Head);
        assert_eq!(head.label(), "HEAD");
        assert!(head.is_parent());

        let parent = FromState::choose(None, Some("v2"));
        assert_eq!(parent, FromState::ParentOf("v2".into()));
        assert_eq!(parent.label(), "v2^");
        assert!(parent.is_parent());
    }

    #[test]
    fn an_explicit_from_wins_and_is_compared_against_alone() {
        for to in [None, Some("v2")] {
            let from = FromState::choose(Some("v1"), to);
            assert_eq!(from, FromState::Rev("v1".into()));
            assert_eq!(from.label(), "v1");
            assert!(!from.is_parent());
        }
    }

    #[test]
    fn only_errors_and_rotation_findings_fail_the_plan() {
        let error = Diagnostic::new(Code::Ct202, "certificate expired");
        let warning = Diagnostic::new(Code::Ct203, "expires soon");
        let rotation = Diagnostic::new(Code::Ct401, "removed too soon");
        assert_eq!(error.severity(), Severity::Error);
        assert_ne!(warning.severity(), Severity::Error);
        let found = failing_findings(vec![warning, error], vec![rotation]);
        let codes: Vec<Code> = found.iter().map(|d| d.code).collect();
        assert_eq!(codes, [Code::Ct202, Code::Ct401]);

        assert!(!fails(&[], false));
        assert!(fails(&found, false));
        assert!(fails(&[], true));
    }
}
