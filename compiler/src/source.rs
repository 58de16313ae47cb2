//! Where trust.yaml and the certificate files are read from.
//!
//! Every path catrust reads is a repository path: relative to the repository root,
//! `/`-separated, with no `..`. [`repo_join`] turns a `file:` value into one (and
//! refuses paths that leave the repository); a [`Source`] reads it from the working
//! tree, the git index or a commit. The model and the lints never touch the file
//! system themselves.

use std::io::Read as _;
use std::path::{Path, PathBuf};

/// The largest file catrust reads: trust.yaml and every certificate file it names (and
/// `inspect`/`init` inputs). The whole Mozilla set is 220 KB; 4 MiB is far beyond
/// any real CA file, and small enough that a hostile repository cannot make the
/// compiler or the Argo CD plugin read gigabytes.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// `MAX_FILE_BYTES` as people read it.
pub const MAX_FILE_SHOWN: &str = "4 MiB";

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0} leaves the repository")]
    Escapes(String),
    #[error("{path} is {kind}, not a regular file")]
    NotAFile { path: String, kind: &'static str },
    #[error("{0} is larger than {MAX_FILE_SHOWN}, the limit for trust.yaml and certificate files")]
    TooLarge(String),
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
        read_regular(&real, &shown)
    }

    fn display_path(&self, repo_path: &str) -> String {
        let p = self.shown_root.join(repo_path);
        let s = p.to_string_lossy();
        s.strip_prefix("./").unwrap_or(&s).to_string()
    }
}

/// Reads the regular file at `path` (named `shown` in errors), at most
/// [`MAX_FILE_BYTES`]. Folders, FIFOs, devices and sockets are refused without
/// blocking: the file is opened with `O_NONBLOCK` and checked with `fstat` before
/// anything is read, and the read itself stops one byte past the cap.
pub fn read_regular(path: &Path, shown: &str) -> Result<Vec<u8>, SourceError> {
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => SourceError::NotFound(shown.to_string()),
        _ => SourceError::Io {
            path: shown.to_string(),
            message: e.to_string(),
        },
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let t = meta.file_type();
    let kind = if t.is_dir() {
        Some("a folder")
    } else if t.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if t.is_char_device() || t.is_block_device() {
        Some("a device")
    } else if t.is_socket() {
        Some("a socket")
    } else if !t.is_file() {
        Some("not a file")
    } else {
        None
    };
    if let Some(kind) = kind {
        return Err(SourceError::NotAFile {
            path: shown.to_string(),
            kind,
        });
    }
    check_size(meta.len(), shown)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    check_size(bytes.len() as u64, shown)?;
    Ok(bytes)
}

/// `Err(TooLarge)` when `len` is over [`MAX_FILE_BYTES`].
pub fn check_size(len: u64, shown: &str) -> Result<(), SourceError> {
    if len > MAX_FILE_BYTES {
        Err(SourceError::TooLarge(shown.to_string()))
    } else {
        Ok(())
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
        let bytes = self
            .files
            .get(repo_path)
            .ok_or_else(|| SourceError::NotFound(repo_path.to_string()))?;
        check_size(bytes.len() as u64, repo_path)?;
        Ok(bytes.clone())
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

    #[test]
    fn only_regular_files_within_the_cap_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let err = read_regular(&fifo, "fifo").unwrap_err();
        assert_eq!(
            err.to_string(),
            "fifo is a FIFO (named pipe), not a regular file"
        );
        let err = read_regular(Path::new("/dev/zero"), "/dev/zero").unwrap_err();
        assert!(
            matches!(
                err,
                SourceError::NotAFile {
                    kind: "a device",
                    ..
                }
            ),
            "{err}"
        );
        let err = read_regular(tmp.path(), "certs").unwrap_err();
        assert_eq!(err.to_string(), "certs is a folder, not a regular file");
        let big = tmp.path().join("big.pem");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        let err = read_regular(&big, "big.pem").unwrap_err();
        assert!(err.to_string().contains("larger than 4 MiB"), "{err}");
        f.set_len(MAX_FILE_BYTES).unwrap();
        assert_eq!(
            read_regular(&big, "big.pem").unwrap().len() as u64,
            MAX_FILE_BYTES
        );
    }
}
