//! The compiler's integration tests in one binary: every module runs the real
//! `catrust` (or Argo CD plugin) binary against temp folders and git repositories.
//! One module per file, as each file was once a binary of its own.

mod argocd_plugin;
mod compile_agent;
mod compile_aks;
mod compile_platforms;
mod compiler_faults;
mod examples;
mod git_rotation;
mod hostile;
mod lint_corpus;
mod lint_formats;
mod pre_commit;
mod readme;
