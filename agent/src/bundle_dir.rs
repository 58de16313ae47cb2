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
//!
//! Every access is relative to an open folder (`openat` with `O_NOFOLLOW`): the version
//! folder is opened as a folder that is not a link, each key as a regular file that is
//! not a link (`O_NONBLOCK`, so a FIFO cannot block the open), checked with `fstat` and
//! read up to the size cap. Nothing outside `DIR` is ever opened, even if an entry is
//! swapped for a link between two steps; the only link read is `..data` (and the
//! targets of the visible `<key>` links, which are compared, never followed).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

/// Largest file accepted from the volume (a CA certificate is a few KiB).
pub const MAX_FILE: u64 = 1 << 20;
pub const MAX_KEYS: usize = 512;
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
    #[error("..data points to {0:?}, which is a link or not a folder; refusing to follow it out of the bundle volume")]
    NotAFolder(String),
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
    // The volume folder itself is the operator's `--bundle-dir` (a mount point).
    let volume = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::NOENT | Errno::NOTDIR => ReadError::NoData(dir.display().to_string()),
        e => io_error(dir, e),
    })?;
    for _ in 0..ATTEMPTS {
        if let Attempt::Done(read) = read_once(&volume, dir)? {
            return Ok(read);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(ReadError::Unstable)
}

fn io_error(path: &Path, e: Errno) -> ReadError {
    ReadError::Io(format!("{}: {}", path.display(), std::io::Error::from(e)))
}

fn data_target(volume: &OwnedFd, dir: &Path) -> Result<String, ReadError> {
    let target = rustix::fs::readlinkat(volume, "..data", Vec::new()).map_err(|e| match e {
        Errno::NOENT | Errno::INVAL => ReadError::NoData(dir.display().to_string()),
        e => io_error(&dir.join("..data"), e),
    })?;
    let target = target.to_string_lossy().into_owned();
    // kubelet's target is a sibling folder "..<timestamp>": one component, no way out.
    if !target.starts_with("..") || target.contains('/') || target == ".." || target == "..data" {
        return Err(ReadError::BadTarget(target));
    }
    Ok(target)
}

/// The entries of an open folder (without `.` and `..`), as `(name, type)`; a name that
/// is not UTF-8 comes back lossily converted with `None` (never a real name).
fn entries(
    dir: &OwnedFd,
    path: &Path,
) -> Result<Vec<(Option<String>, String, FileType)>, ReadError> {
    let mut out = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir).map_err(|e| io_error(path, e))? {
        let entry = entry.map_err(|e| io_error(path, e))?;
        let raw = entry.file_name().to_bytes();
        if raw == b"." || raw == b".." {
            continue;
        }
        let lossy = String::from_utf8_lossy(raw).into_owned();
        let name = std::str::from_utf8(raw).ok().map(str::to_owned);
        out.push((name, lossy, entry.file_type()));
    }
    Ok(out)
}

fn read_once(volume: &OwnedFd, dir: &Path) -> Result<Attempt, ReadError> {
    let version = data_target(volume, dir)?;
    let vpath = dir.join(&version);
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let vdir = match rustix::fs::openat(volume, version.as_str(), flags, Mode::empty()) {
        Ok(fd) => fd,
        // The version folder vanished: kubelet swapped and cleaned up; read again.
        Err(Errno::NOENT) => return Ok(Attempt::Retry),
        Err(Errno::LOOP | Errno::NOTDIR) => return Err(ReadError::NotAFolder(version)),
        Err(e) => return Err(io_error(&vpath, e)),
    };
    let mut files = BTreeMap::new();
    for (name, lossy, kind) in entries(&vdir, &vpath)? {
        let unexpected = || ReadError::Unexpected(format!("{version}/{lossy}"));
        // Secret keys are UTF-8 and never start with "..", and kubelet writes plain
        // files only (the type from the folder entry spares opening anything else).
        let Some(name) = name else {
            return Err(unexpected());
        };
        if name.starts_with("..") || !matches!(kind, FileType::RegularFile | FileType::Unknown) {
            return Err(unexpected());
        }
        if files.len() >= MAX_KEYS {
            return Err(ReadError::TooMany);
        }
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&vdir, name.as_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(Attempt::Retry),
            Err(Errno::LOOP | Errno::NXIO) => return Err(unexpected()),
            Err(e) => return Err(io_error(&vpath.join(&name), e)),
        };
        let stat = rustix::fs::fstat(&fd).map_err(|e| io_error(&vpath.join(&name), e))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(unexpected());
        }
        if u64::try_from(stat.st_size).unwrap_or(u64::MAX) > MAX_FILE {
            return Err(ReadError::TooLarge(name));
        }
        let mut bytes = Vec::new();
        std::fs::File::from(fd)
            .take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ReadError::Io(format!("{}: {e}", vpath.join(&name).display())))?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(ReadError::TooLarge(name));
        }
        files.insert(name, bytes);
        if files.len() == 1 {
            crate::failpoint::hit("bundle.read_mid").map_err(|e| ReadError::Io(e.to_string()))?;
        }
    }
    if data_target(volume, dir)? != version {
        return Ok(Attempt::Retry);
    }
    check_top_level(volume, dir)?;
    Ok(Attempt::Done(BundleRead { files, version }))
}

/// The visible entries must be kubelet's `<key> -> ..data/<key>` links (compared, never
/// followed). One whose key is gone is a swap in progress: kubelet removes old links
/// after the swap.
fn check_top_level(volume: &OwnedFd, dir: &Path) -> Result<(), ReadError> {
    for (name, lossy, _) in entries(volume, dir)? {
        if lossy.starts_with("..") {
            continue;
        }
        let Some(name) = name else {
            return Err(ReadError::Unexpected(lossy));
        };
        match rustix::fs::readlinkat(volume.as_fd(), name.as_str(), Vec::new()) {
            Ok(target) if target.to_bytes() == format!("..data/{name}").as_bytes() => {}
            // Removed since the folder was listed.
            Err(Errno::NOENT) => {}
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

    /// A folder outside the volume that looks like a version folder, holding `marker`.
    /// Plants an entry at `rel` in the volume, expects the reader to refuse it as an
    /// entry kubelet never writes, and takes it away again.
    fn refused_as_unexpected(vol: &Path, rel: &str, plant: impl FnOnce(&Path)) {
        let path = vol.join(rel);
        plant(&path);
        assert_eq!(read(vol), Err(ReadError::Unexpected(rel.into())), "{rel}");
        std::fs::remove_file(&path)
            .or_else(|_| std::fs::remove_dir(&path))
            .unwrap();
    }

    /// A one-key volume `vol/` beside a folder `outside/` whose `a.crt` holds a marker
    /// that must never be read: (temp dir, outside, volume).
    fn volume_beside_outside() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("outside");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("a.crt"), "OUTSIDE").unwrap();
        let vol = tmp.path().join("vol");
        layout(&vol, "..v1", &[("a.crt", "A")]);
        (tmp, out, vol)
    }

    #[test]
    fn data_never_leads_out_of_the_volume() {
        // ..data -> ..x -> (a link leaving the volume), with or without a hash given.
        let (_tmp, out, vol) = volume_beside_outside();
        symlink(&out, vol.join("..x")).unwrap();
        std::fs::remove_file(vol.join("..data")).unwrap();
        symlink("..x", vol.join("..data")).unwrap();
        assert_eq!(read(&vol), Err(ReadError::NotAFolder("..x".into())));
        // A link to a real version folder inside the volume is refused too: kubelet
        // points ..data at the folder itself.
        std::fs::remove_file(vol.join("..x")).unwrap();
        symlink("..v1", vol.join("..x")).unwrap();
        assert_eq!(read(&vol), Err(ReadError::NotAFolder("..x".into())));
        // ..data -> a file.
        std::fs::remove_file(vol.join("..x")).unwrap();
        std::fs::write(vol.join("..x"), "file").unwrap();
        assert_eq!(read(&vol), Err(ReadError::NotAFolder("..x".into())));
    }

    #[test]
    fn keys_that_are_links_fifos_or_folders_are_refused_unopened() {
        let (_tmp, out, vol) = volume_beside_outside();
        refused_as_unexpected(&vol, "..v1/b.crt", |p| {
            symlink(out.join("a.crt"), p).unwrap()
        });
        // A FIFO would block a plain open forever.
        refused_as_unexpected(&vol, "..v1/b.crt", |p| {
            let fifo = Mode::from_raw_mode(0o600);
            rustix::fs::mknodat(rustix::fs::CWD, p, FileType::Fifo, fifo, 0).unwrap()
        });
        refused_as_unexpected(&vol, "..v1/sub", |p| std::fs::create_dir(p).unwrap());

        std::fs::write(vol.join("..v1/big.crt"), vec![b'x'; MAX_FILE as usize + 1]).unwrap();
        assert_eq!(read(&vol), Err(ReadError::TooLarge("big.crt".into())));
    }

    #[test]
    fn visible_links_are_compared_not_followed() {
        let (_tmp, out, vol) = volume_beside_outside();
        // A link leaving the volume, dangling or not, is never kubelet's.
        refused_as_unexpected(&vol, "b.crt", |p| symlink(out.join("a.crt"), p).unwrap());
        refused_as_unexpected(&vol, "b.crt", |p| symlink("/nonexistent/b.crt", p).unwrap());
        // kubelet's link to a key the new version no longer has: a swap in progress.
        symlink("..data/gone.crt", vol.join("gone.crt")).unwrap();
        assert_eq!(read(&vol).unwrap().files.len(), 1);
    }
}
