//! The whole compiler as one call: load → lint → render. Used by the `catrust` binary
//! and the Argo CD plugin alike, so both refuse exactly the same inputs.

use crate::diag::{Diagnostic, Sources};
use crate::lint;
use crate::load::{self, Loaded};
use crate::render::{self, Provenance, RenderError, Rendered, TargetSelection};
use crate::rules::Severity;
use crate::source::{Source, SourceError};
use crate::templates::Templates;

/// What a build is asked to do.
pub struct Request<'a> {
    pub source: &'a dyn Source,
    /// Repository path of trust.yaml.
    pub config_path: &'a str,
    pub selection: TargetSelection,
    pub templates: &'a Templates,
    /// Unix seconds, for validity rules.
    pub now: i64,
    /// Treat warnings as errors.
    pub deny_warnings: bool,
}

/// The outcome of a build whose invocation was sound.
#[derive(Debug)]
pub struct Outcome {
    /// Every finding, sorted.
    pub diagnostics: Vec<Diagnostic>,
    /// The files findings point into.
    pub sources: Sources,
    /// `None` when a finding blocks the build (nothing may be written then).
    pub rendered: Option<Rendered>,
    pub loaded: Loaded,
}

/// Problems with the invocation or environment (exit code 2), as opposed to findings
/// about the input (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read trust.yaml: {0}")]
    Config(#[from] SourceError),
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Reading git history for the build context (CT401, provenance) failed.
    #[cfg(feature = "git")]
    #[error("git: {0}")]
    Git(#[from] crate::git::GitError),
}

/// What a build learns beyond the files: findings that need more than the loaded state
/// (CT401 from git history) and the source commit. See [`build_with`].
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub diagnostics: Vec<Diagnostic>,
    pub commit: Option<String>,
    pub dirty: bool,
}

/// Does this set of findings block a build?
pub fn blocks(diagnostics: &[Diagnostic], deny_warnings: bool) -> bool {
    diagnostics.iter().any(|d| match d.severity() {
        Severity::Error => true,
        Severity::Warning => deny_warnings,
        Severity::Info => false,
    })
}

/// Lints, and renders when nothing blocks.
pub fn build(request: &Request) -> Result<Outcome, Error> {
    build_with(request, &|_| Ok(Context::default()))
}

/// [`build`], with `context` called on the loaded state (after every file was read)
/// to add findings (CT401) and the provenance; an `Err` is an invocation error.
pub fn build_with(
    request: &Request,
    context: &dyn Fn(&Loaded) -> Result<Context, Error>,
) -> Result<Outcome, Error> {
    let loaded = load::load(request.source, request.config_path)?;
    let extra = context(&loaded)?;
    let mut diagnostics = lint::lint(&loaded, request.now);
    if !extra.diagnostics.is_empty() {
        diagnostics.extend(extra.diagnostics);
        crate::diag::sort(&mut diagnostics);
    }
    let rendered = match (&loaded.config, blocks(&diagnostics, request.deny_warnings)) {
        (Some(config), false) => Some(render::render(
            config,
            &loaded.certificates,
            request.templates,
            request.selection,
            &Provenance {
                config_path: request.config_path.to_string(),
                commit: extra.commit,
                dirty: extra.dirty,
            },
        )?),
        _ => None,
    };
    Ok(Outcome {
        sources: loaded.sources.clone(),
        diagnostics,
        rendered,
        loaded,
    })
}
