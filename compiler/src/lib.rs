//! catrust: compiles a declarative `trust.yaml` into what Kubernetes nodes need to trust
//! a set of CA certificates.
#![forbid(unsafe_code)]

mod azure;
mod bundle;
mod cert;
pub mod compile;
mod config;
pub mod diag;
pub mod docs;
mod failpoint;
/// The git edge (libgit2): behind the default `git` feature, which the Argo CD plugin
/// turns off (it reads the checked-out folder Argo CD gives it, never a repository).
#[cfg(feature = "git")]
pub mod git;
pub mod history;
pub mod init;
mod inline;
pub mod inspect;
pub mod lint;
pub mod load;
pub mod output;
mod parse;
pub mod pem;
pub mod plan;
pub mod render;
pub mod report;
pub mod rules;
pub mod sarif;
pub mod source;
mod span;
pub mod templates;
