//! Atomic file operations on the host root. Every write is a temp file in the same
//! folder, fsync, rename over the target, fsync of the folder, so a reader (the
//! refresh, containerd, a crash) sees the old or the new bytes, never a torn file.
//! Nothing here follows a symlink at a target path: rename replaces the link itself,
//! and callers refuse planted links before calling.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically, mode 0644.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_then(path, bytes, |_| Ok(()))
}

/// A step of [`write_atomic_then`], for the failpoints of the fault tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The temp file is written and fsynced, not yet renamed.
    TmpWritten,
    /// The temp file was renamed over the target (the folder not yet fsynced).
    Renamed,
}

/// [`write_atomic`], calling `after` once each step is done; an error from it fails the
/// write like an I/O error would.
pub fn write_atomic_then(
    path: &Path,
    bytes: &[u8],
    mut after: impl FnMut(Step) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("path has no parent"))?;
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("path has no file name"))?
        .to_string_lossy();
    // Leading dot: update-ca-certificates only picks up "*.crt", p11-kit skips dot
    // files, so a half-written temp file is never read as an anchor.
    let tmp = dir.join(format!(".{name}.catrust-tmp.{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        after(Step::TmpWritten)?;
        fs::rename(&tmp, path)?;
        after(Step::Renamed)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Is `name` a temp file of [`write_atomic`] (`.<name>.catrust-tmp.<pid>`)?
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.')
        && name
            .rsplit_once(".catrust-tmp.")
            .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes the temp files [`write_atomic`] left in `dir` when the process died between
/// writing and renaming them. Only call it under the apply lock: then no write is in
/// progress and every such file is an orphan. Returns what it removed.
pub fn remove_orphan_temps(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return removed;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_temp_name(&name)
            && entry.file_type().is_ok_and(|t| t.is_file())
            && fs::remove_file(entry.path()).is_ok()
        {
            removed.push(entry.path());
        }
    }
    removed
}

/// Removes `path` (the entry itself, never what a link points to) and syncs the folder.
/// A missing file is fine.
pub fn remove(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Creates the missing folders of `dir` and returns those it created, outermost first.
pub fn create_dirs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        match fs::symlink_metadata(d) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} exists and is not a folder",
                    d.display()
                )))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => missing.push(d.to_path_buf()),
            Err(e) => return Err(e),
        }
        cur = d.parent();
    }
    missing.reverse();
    for d in &missing {
        fs::create_dir(d)?;
    }
    Ok(missing)
}

/// What is at a path, without following a final symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Missing,
    File(Vec<u8>),
    Symlink(String),
    /// A folder, device, socket, …: never the agent's.
    Other,
}

pub fn observe(path: &Path) -> std::io::Result<Entry> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Entry::Missing),
        Err(e) => Err(e),
        Ok(meta) if meta.file_type().is_symlink() => Ok(Entry::Symlink(
            fs::read_link(path)?.to_string_lossy().into_owned(),
        )),
        Ok(meta) if meta.is_file() => Ok(Entry::File(fs::read(path)?)),
        Ok(_) => Ok(Entry::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_a_link_not_its_target() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        fs::write(&target, "precious").unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"precious");
        assert_eq!(observe(&link).unwrap(), Entry::File(b"new".to_vec()));
        let created = create_dirs(&tmp.path().join("a/b")).unwrap();
        assert_eq!(created.len(), 2);
        remove(&link).unwrap();
        remove(&link).unwrap();
    }

    #[test]
    fn orphan_temp_files_are_recognised_and_removed() {
        assert!(is_temp_name(".corp.crt.catrust-tmp.4711"));
        assert!(!is_temp_name("corp.crt.catrust-tmp.4711"));
        assert!(!is_temp_name(".corp.crt.catrust-tmp."));
        assert!(!is_temp_name(".corp.crt.catrust-tmp.x1"));
        assert!(!is_temp_name(".corp.crt"));
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(".a.crt.catrust-tmp.12"), "half").unwrap();
        fs::write(tmp.path().join("a.crt"), "whole").unwrap();
        fs::write(tmp.path().join(".hidden"), "foreign").unwrap();
        let removed = remove_orphan_temps(tmp.path());
        assert_eq!(removed, [tmp.path().join(".a.crt.catrust-tmp.12")]);
        let mut left: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [".hidden", "a.crt"]);
    }
}
