//! Writing a build to disk: the imperative edge of `catrust build`.
//!
//! The output folder is replaced atomically: everything is written into a temporary
//! folder beside it, flushed, and then swapped in with `renameat2(RENAME_EXCHANGE)`,
//! so readers see either the old output or the new one, never a mix. Where the file
//! system cannot exchange, two renames are used (a reader may then briefly find no
//! folder, but never a partial one).
//!
//! The staging folder is `.<out>.catrust-<pid>-<random>`. A build that was killed
//! mid-write leaves its staging folder behind; the next build removes every such
//! folder whose process is gone (never one of a build still running).
//!
//! Failpoints (test-only `failpoints` feature, see `failpoint`): `output.after_file`
//! after each staged file is written and fsynced.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::render::{Rendered, LOCK_FILE};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("refusing to replace {0}: it exists and is not a catrust output (no {LOCK_FILE}); choose an empty or new folder")]
    NotOurs(PathBuf),
    #[error("refusing to write {0:?}: an output path must be a plain relative path (no `..`, `.`, empty or absolute part)")]
    UnsafePath(String),
    #[error(transparent)]
    Read(#[from] crate::source::SourceError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// May `dir` be replaced by a build? Yes if it does not exist, is empty, or holds a
/// lock file of ours.
pub fn replaceable(dir: &Path) -> Result<(), OutputError> {
    match fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(dir)(e)),
        Ok(mut entries) => {
            if entries.next().is_none() || dir.join(LOCK_FILE).is_file() {
                Ok(())
            } else {
                Err(OutputError::NotOurs(dir.to_path_buf()))
            }
        }
    }
}

/// Whether `rel` is a plain relative path that stays under the folder it is joined
/// to: `/`-separated parts, none empty, `.` or `..`, no backslash or NUL.
pub fn is_plain_relative(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.contains(['\\', '\0'])
        && rel.split('/').all(|part| !matches!(part, "" | "." | ".."))
}

/// Writes `rendered` as the folder `dir`, atomically. Every path is checked before
/// anything is written: one unsafe path and nothing is written at all.
pub fn write(dir: &Path, rendered: &Rendered) -> Result<(), OutputError> {
    if let Some(bad) = rendered.files.keys().find(|p| !is_plain_relative(p)) {
        return Err(OutputError::UnsafePath(bad.clone()));
    }
    replaceable(dir)?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(io(&parent))?;
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    remove_stale_staging(&parent, &base);
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{base}.catrust-{}-", std::process::id()))
        .tempdir_in(&parent)
        .map_err(io(&parent))?;
    for (rel, bytes) in &rendered.files {
        let path = staging.path().join(rel);
        if let Some(p) = path.parent() {
            fs::create_dir_all(p).map_err(io(p))?;
        }
        let mut f = fs::File::create(&path).map_err(io(&path))?;
        f.write_all(bytes).map_err(io(&path))?;
        f.sync_all().map_err(io(&path))?;
        if rel.ends_with(".sh") {
            set_executable(&path)?;
        }
        crate::failpoint::hit("output.after_file").map_err(io(&path))?;
    }
    sync_dirs(staging.path())?;
    let staged = staging.keep();
    let result = swap_in(&staged, dir);
    if result.is_err() {
        let _ = fs::remove_dir_all(&staged);
    }
    result?;
    if let Ok(d) = fs::File::open(&parent) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes the staging folders (`.<base>.catrust-<pid>-*`, and their `.old` form) that
/// builds killed mid-write left in `parent`. A folder whose process still runs is left
/// alone; so are names without a pid (nothing to tell whether they are in use).
fn remove_stale_staging(parent: &Path, base: &str) {
    let prefix = format!(".{base}.catrust-");
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = Path::new("/proc").join(pid.to_string()).exists();
        if !alive && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn set_executable(path: &Path) -> Result<(), OutputError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).map_err(io(path))
}

fn sync_dirs(root: &Path) -> Result<(), OutputError> {
    for entry in fs::read_dir(root).map_err(io(root))? {
        let entry = entry.map_err(io(root))?;
        if entry.file_type().map_err(io(root))?.is_dir() {
            sync_dirs(&entry.path())?;
        }
    }
    fs::File::open(root)
        .and_then(|d| d.sync_all())
        .map_err(io(root))
}

/// Puts `staged` at `dir`. The previous `dir` (if any) ends up at `staged` and is removed.
fn swap_in(staged: &Path, dir: &Path) -> Result<(), OutputError> {
    if !dir.exists() {
        return fs::rename(staged, dir).map_err(io(dir));
    }
    let exchanged = rustix::fs::renameat_with(
        rustix::fs::CWD,
        staged,
        rustix::fs::CWD,
        dir,
        rustix::fs::RenameFlags::EXCHANGE,
    );
    match exchanged {
        Ok(()) => {}
        Err(_) => {
            // No RENAME_EXCHANGE here: move the old folder aside, then the new one in.
            let aside = staged.with_extension("old");
            fs::rename(dir, &aside).map_err(io(dir))?;
            if let Err(e) = fs::rename(staged, dir) {
                let _ = fs::rename(&aside, dir);
                return Err(io(dir)(e));
            }
            fs::rename(&aside, staged).map_err(io(staged))?;
        }
    }
    fs::remove_dir_all(staged).map_err(io(staged))
}

/// The files of an existing output folder (relative path → bytes).
pub fn read_tree(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, OutputError> {
    fn walk(
        root: &Path,
        dir: &Path,
        out: &mut BTreeMap<String, Vec<u8>>,
    ) -> Result<(), OutputError> {
        for entry in fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let path = entry.path();
            if entry.file_type().map_err(io(&path))?.is_dir() {
                walk(root, &path, out)?;
            } else {
                let rel = path
                    .strip_prefix(root)
                    .expect("walked below root")
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, fs::read(&path).map_err(io(&path))?);
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out)?;
    }
    Ok(out)
}

/// Paths that differ between `dir` and `rendered` (added, removed or changed).
pub fn stale_paths(dir: &Path, rendered: &Rendered) -> Result<Vec<String>, OutputError> {
    let existing = read_tree(dir)?;
    let mut paths: Vec<String> = rendered
        .files
        .iter()
        .filter(|(p, b)| existing.get(*p) != Some(b))
        .map(|(p, _)| p.clone())
        .chain(
            existing
                .keys()
                .filter(|p| !rendered.files.contains_key(*p))
                .cloned(),
        )
        .collect();
    paths.sort();
    Ok(paths)
}

/// Reads a `--templates` folder: every `*.j2` file in it, by name.
pub fn read_templates(dir: &Path) -> Result<BTreeMap<String, String>, OutputError> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".j2") {
            let path = entry.path();
            let shown = path.display().to_string();
            let bytes = crate::source::read_regular(&path, &shown)?;
            let text = String::from_utf8(bytes)
                .map_err(|e| io(&path)(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
            out.insert(name, text);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_written() {
        for ok in ["kustomization.yaml", "agent/daemonset-gpu.yaml", "a..b/c"] {
            assert!(is_plain_relative(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/x",
            "agent/daemonset-/../../../../x.yaml",
            "../x",
            "a//b",
            "./a",
            "a/",
            "a\\..\\b",
            "a\0b",
        ] {
            assert!(!is_plain_relative(bad), "{bad}");
        }
        let tmp = tempfile::tempdir().unwrap();
        let mut rendered = Rendered::default();
        rendered.files.insert("ok.yaml".into(), b"x".to_vec());
        rendered
            .files
            .insert("agent/../../escape.yaml".into(), b"x".to_vec());
        let out = tmp.path().join("sub/out");
        let err = write(&out, &rendered).unwrap_err();
        assert!(matches!(err, OutputError::UnsafePath(_)), "{err}");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
