//! Reads a bundle from a Secret volume laid out by kubelet's atomic writer:
//!
//! ```text
//! DIR/..2026_11_28_13_00_00.123456789/<key>   the files of one version
//! DIR/..data -> ..2026_11_28_13_00_00.123456789
//! DIR/<key>  -> ..data/<key>
//! ```
//!
//! `..data` is resolved once and every file is read from that one version folder, then
//! `..data` is read again: if kubelet swapped it meanwhile the read is retried, so a
//! bundle is never a mix of two versions. Anything kubelet would not have written is
//! refused with the entry named, never followed.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::Path;

/// Largest file accepted from the volume (a CA certificate is a few KiB).
const MAX_FILE: u64 = 1 << 20;
const MAX_KEYS: usize = 512;
const ATTEMPTS: usize = 10;

/// One consistent read of the volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleRead {
    /// key → bytes.
    pub files: BTreeMap<String, Vec<u8>>,
    /// The version folder `..data` pointed to.
    pub version: String,
}

/// Why the volume could not be read as a bundle.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    #[error("{0}: no ..data link: not a Secret volume (or not mounted yet)")]
    NoData(String),
    #[error("..data points to {0:?}, which is not a kubelet version folder")]
    BadTarget(String),
    #[error("the bundle volume holds {0:?}, which kubelet's atomic writer never writes")]
    Unexpected(String),
    #[error("the bundle volume holds more than {MAX_KEYS} keys")]
    TooMany,
    #[error("key {0:?} is larger than {MAX_FILE} bytes")]
    TooLarge(String),
    #[error("..data kept changing during {ATTEMPTS} reads")]
    Unstable,
    #[error("cannot read the bundle volume: {0}")]
    Io(String),
}

enum Attempt {
    Done(BundleRead),
    Retry,
}

/// Reads the bundle through `..data` (see the module doc).
pub fn read(dir: &Path) -> Result<BundleRead, ReadError> {
    for _ in 0..ATTEMPTS {
        if let Attempt::Done(read) = read_once(dir)? {
            return Ok(read);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(ReadError::Unstable)
}

fn data_target(dir: &Path) -> Result<String, ReadError> {
    let link = dir.join("..data");
    let target = std::fs::read_link(&link).map_err(|e| match e.kind() {
        ErrorKind::NotFound | ErrorKind::InvalidInput => {
            ReadError::NoData(dir.display().to_string())
        }
        _ => ReadError::Io(format!("{}: {e}", link.display())),
    })?;
    let target = target.to_str().unwrap_or("").to_owned();
    // kubelet's target is a sibling folder "..<timestamp>": one component, no way out.
    if !target.starts_with("..") || target.contains('/') || target == ".." || target == "..data" {
        return Err(ReadError::BadTarget(target));
    }
    Ok(target)
}

fn read_once(dir: &Path) -> Result<Attempt, ReadError> {
    let version = data_target(dir)?;
    let data = dir.join(&version);
    let io = |e: std::io::Error, what: &Path| ReadError::Io(format!("{}: {e}", what.display()));
    let entries = match std::fs::read_dir(&data) {
        Ok(entries) => entries,
        // The version folder vanished: kubelet swapped and cleaned up; read again.
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Attempt::Retry),
        Err(e) => return Err(io(e, &data)),
    };
    let mut files = BTreeMap::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Attempt::Retry),
            Err(e) => return Err(io(e, &data)),
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Attempt::Retry),
            Err(e) => return Err(io(e, &path)),
        };
        // Secret keys never start with "..", and kubelet writes plain files only.
        if name.starts_with("..") || !meta.is_file() {
            return Err(ReadError::Unexpected(format!("{version}/{name}")));
        }
        if meta.len() > MAX_FILE {
            return Err(ReadError::TooLarge(name));
        }
        if files.len() >= MAX_KEYS {
            return Err(ReadError::TooMany);
        }
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Attempt::Retry),
            Err(e) => return Err(io(e, &path)),
        };
        files.insert(name, bytes);
        if files.len() == 1 {
            crate::failpoint::hit("bundle.read_mid").map_err(|e| ReadError::Io(e.to_string()))?;
        }
    }
    if data_target(dir)? != version {
        return Ok(Attempt::Retry);
    }
    check_top_level(dir, &files)?;
    Ok(Attempt::Done(BundleRead { files, version }))
}

/// The visible entries must be kubelet's `<key> -> ..data/<key>` links. A link to a key
/// that is gone is a swap in progress (kubelet removes old links after the swap).
fn check_top_level(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<(), ReadError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| ReadError::Io(format!("{}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("..") {
            continue;
        }
        let expected = format!("..data/{name}");
        match std::fs::read_link(entry.path()) {
            Ok(target) if target.to_str() == Some(expected.as_str()) => {}
            Ok(_) | Err(_) if !files.contains_key(&name) && !entry.path().exists() => {}
            _ => return Err(ReadError::Unexpected(name)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn layout(dir: &Path, version: &str, files: &[(&str, &str)]) {
        let v = dir.join(version);
        std::fs::create_dir_all(&v).unwrap();
        for (k, c) in files {
            std::fs::write(v.join(k), c).unwrap();
            let _ = symlink(format!("..data/{k}"), dir.join(k));
        }
        let _ = std::fs::remove_file(dir.join("..data"));
        symlink(version, dir.join("..data")).unwrap();
    }

    #[test]
    fn reads_through_data_link() {
        let tmp = tempfile::tempdir().unwrap();
        layout(
            tmp.path(),
            "..2026_01_01",
            &[("a.crt", "A"), ("bundle.json", "{}")],
        );
        let read = read(tmp.path()).unwrap();
        assert_eq!(read.version, "..2026_01_01");
        assert_eq!(read.files["a.crt"], b"A");
    }

    /// A writer swapping two versions as fast as it can; every read must be one of
    /// them whole, never a mix.
    #[test]
    fn a_swap_during_the_read_is_never_seen_half_done() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        layout(
            &dir,
            "..v0",
            &[("a.crt", "0"), ("b.crt", "0"), ("c.crt", "0")],
        );
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (dir, stop) = (dir.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 1u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let v = format!("..v{n}");
                    let c = n.to_string();
                    let files = [
                        ("a.crt", c.as_str()),
                        ("b.crt", c.as_str()),
                        ("c.crt", c.as_str()),
                    ];
                    std::fs::create_dir(dir.join(&v)).unwrap();
                    for (k, c) in files {
                        std::fs::write(dir.join(&v).join(k), c).unwrap();
                    }
                    let old = std::fs::read_link(dir.join("..data")).unwrap();
                    symlink(&v, dir.join("..data_tmp")).unwrap();
                    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
                    std::fs::remove_dir_all(dir.join(old)).unwrap();
                    n += 1;
                }
            })
        };
        let mut reads = 0;
        for _ in 0..300 {
            match read(&dir) {
                Ok(r) => {
                    let first = &r.files["a.crt"];
                    assert!(
                        r.files.values().all(|v| v == first),
                        "mixed read: {:?}",
                        r.files
                    );
                    assert_eq!(r.files.len(), 3);
                    reads += 1;
                }
                Err(ReadError::Unstable) => {}
                Err(e) => panic!("{e}"),
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
        assert!(reads > 0);
    }

    #[test]
    fn refuses_what_kubelet_never_writes() {
        let tmp = tempfile::tempdir().unwrap();
        layout(tmp.path(), "..v1", &[("a.crt", "A")]);
        std::fs::write(tmp.path().join("x"), "planted").unwrap();
        assert_eq!(read(tmp.path()), Err(ReadError::Unexpected("x".into())));

        let tmp = tempfile::tempdir().unwrap();
        layout(tmp.path(), "..v1", &[("a.crt", "A")]);
        std::fs::write(tmp.path().join("..v1/..x"), "planted").unwrap();
        assert!(matches!(read(tmp.path()), Err(ReadError::Unexpected(_))));

        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(read(tmp.path()), Err(ReadError::NoData(_))));
        symlink("/etc", tmp.path().join("..data")).unwrap();
        assert!(matches!(read(tmp.path()), Err(ReadError::BadTarget(_))));
    }
}
