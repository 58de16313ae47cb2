//! The compiler's integration tests in one binary: every module runs the real
//! `catrust` (or Argo CD plugin) binary against temp folders and git repositories.
//! One module per file, as each file was once a binary of its own.

mod lint_corpus;
mod lint_formats;
mod pre_commit;
mod compile_aks;
mod compile_agent;
mod compile_platforms;
mod hostile;
mod argocd_plugin;
mod examples;
mod git_rotation;
mod readme;
mod compiler_faults;
