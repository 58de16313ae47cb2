//! Where trust.yaml and the certificate files are read from.
//!
//! Every path catrust reads is a repository path: relative to the repository root,
//! `/`-separated, with no `..`. [`repo_join`] turns a `file:` value into one (and
//! refuses paths that leave the repository); a [`Source`] reads it from the working
//! tree, the git index or a commit. The model and the lints never touch the file
//! system themselves.

use std::path::{Path, PathBuf};

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0} leaves the repository")]
    Escapes(String),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

/// Reads files by repository path.
pub trait Source {
    fn read(&self, repo_path: &str) -> Result<Vec<u8>, SourceError>;

    /// How diagnostics name a repository path (relative to where the user stands).
    fn display_path(&self, repo_path: &str) -> String {
        repo_path.to_string()
    }
}

/// Joins `relative` (as written in trust.yaml) onto the folder `base` (a repository
/// path, `""` for the root), normalising `.` and `..`. `None` when the result would
/// leave the repository or `relative` is absolute.
pub fn repo_join(base: &str, relative: &str) -> Option<String> {
    if relative.starts_with('/') || relative.starts_with('\\') || relative.contains('\0') {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in relative.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// The folder part of a repository path (`""` at the root).
pub fn repo_dir(repo_path: &str) -> &str {
    repo_path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The working tree: files on disk under a root folder. Symlinks are followed only
/// while they stay inside the root.
#[derive(Debug, Clone)]
pub struct FsSource {
    root: PathBuf,
    /// Prefix shown in diagnostics: the root relative to the current directory.
    shown_root: PathBuf,
}

impl FsSource {
    /// `root` must exist; it is canonicalised so that symlink escapes can be detected.
    pub fn new(root: &Path, shown_root: &Path) -> std::io::Result<Self> {
        Ok(FsSource {
            root: root.canonicalize()?,
            shown_root: shown_root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Source for FsSource {
    fn read(&self, repo_path: &str) -> Result<Vec<u8>, SourceError> {
        let full = self.root.join(repo_path);
        let shown = self.display_path(repo_path);
        let real = match full.canonicalize() {
            Ok(real) => real,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SourceError::NotFound(shown))
            }
            Err(e) => {
                return Err(SourceError::Io {
                    path: shown,
                    message: e.to_string(),
                })
            }
        };
        if !real.starts_with(&self.root) {
            return Err(SourceError::Escapes(format!(
                "{shown} (it resolves to {})",
                real.display()
            )));
        }
        std::fs::read(&real).map_err(|e| SourceError::Io {
            path: shown,
            message: e.to_string(),
        })
    }

    fn display_path(&self, repo_path: &str) -> String {
        let p = self.shown_root.join(repo_path);
        let s = p.to_string_lossy();
        s.strip_prefix("./").unwrap_or(&s).to_string()
    }
}

/// The repository root for a trust.yaml on disk: the closest folder above it that
/// holds `.git`, or the trust.yaml's own folder when it is not in a git repository.
pub fn find_repo_root(trust_file: &Path) -> PathBuf {
    let dir = trust_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(abs) = dir.canonicalize() else {
        return dir.to_path_buf();
    };
    abs.ancestors()
        .find(|a| a.join(".git").exists())
        .map_or(abs.clone(), Path::to_path_buf)
}

/// An in-memory source, for tests, fuzzing and callers that already hold the files.
#[derive(Debug, Clone, Default)]
pub struct MemSource {
    pub files: std::collections::BTreeMap<String, Vec<u8>>,
}

impl Source for MemSource {
    fn read(&self, repo_path: &str) -> Result<Vec<u8>, SourceError> {
        self.files
            .get(repo_path)
            .cloned()
            .ok_or_else(|| SourceError::NotFound(repo_path.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_stay_inside_the_repository() {
        assert_eq!(repo_join("a/b", "c.pem").as_deref(), Some("a/b/c.pem"));
        assert_eq!(repo_join("a/b", "../c.pem").as_deref(), Some("a/c.pem"));
        assert_eq!(repo_join("a", "./x/../y.pem").as_deref(), Some("a/y.pem"));
        assert_eq!(repo_join("a", "../../x.pem"), None);
        assert_eq!(repo_join("", "/etc/ssl/x.pem"), None);
        assert_eq!(repo_dir("a/b/trust.yaml"), "a/b");
        assert_eq!(repo_dir("trust.yaml"), "");
    }
}
