//! Paths under the host root, resolved component by component the way the host itself
//! would see them (`openat2(RESOLVE_IN_ROOT)` semantics, without unsafe code): an
//! absolute link target starts again at the host root, `..` stops at it, and at most
//! [`MAX_LINKS`] links are followed. The resolution is a pure function over what
//! `lstat`/`readlink` report ([`resolve`]), with a small adapter for the disk.
//!
//! Two uses:
//! - **reads of host files** (`etc/os-release`): the file is read where the host would
//!   find it, never on the machine the agent runs on;
//! - **writes**: the agent writes through plain paths (`<root>/<rel>`), which the kernel
//!   resolves without the root in mind. So before the first write every path it will
//!   touch is checked ([`check_inside`]): a link the kernel would follow out of the root
//!   (an absolute target, or `..` above the root) is a refusal naming the link; links
//!   that stay inside are fine, because the kernel lands where the host would.
//!
//! The agent's own files (`state.json`, `status.json`, `lock`) are never links:
//! [`read_regular`] opens with `O_NOFOLLOW` and refuses anything but a regular file.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

/// Links followed in one resolution before giving up (the kernel's own limit).
pub const MAX_LINKS: usize = 40;
/// Largest `os-release` the agent reads.
pub const MAX_OS_RELEASE: u64 = 64 << 10;

/// Why a path under the host root was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootError {
    #[error("{path}: more than {MAX_LINKS} symlinks (a loop?) resolving it under the host root")]
    TooManyLinks { path: String },
    #[error("{path}: {component} is not a folder")]
    NotAFolder { path: String, component: String },
    #[error("{path}: {link} is a symlink to {target}, which leaves the host root; refusing to write through it")]
    Leaves {
        path: String,
        link: String,
        target: String,
    },
    #[error("{path} is a symlink; the agent's own files and the host files it reads are never followed through one")]
    IsLink { path: String },
    #[error("{path} is not a regular file")]
    NotAFile { path: String },
    #[error("{path} is larger than {max} bytes")]
    TooLarge { path: String, max: u64 },
    #[error("cannot read {path}: {error}")]
    Io { path: String, error: String },
}

/// What is at a path, as `lstat` (and `readlink`) report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Missing,
    Dir,
    Link(PathBuf),
    /// A file, device, socket, …
    Other,
}

/// Where a path resolved to, relative to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// No links, no `.` or `..` in it (the rest may not exist yet).
    pub rel: PathBuf,
    /// The first link (and its target) that the kernel, unaware of the root, would
    /// have followed out of it; `None` when `<root>/<rel as given>` stays inside.
    pub leaves: Option<(String, String)>,
}

/// Resolves `rel` under a root, asking `look` what is at each prefix (relative to the
/// root). With `follow_last` false a final link is not followed (it is the entry
/// itself that will be replaced). Pure: all I/O is in `look`.
pub fn resolve(
    rel: &Path,
    follow_last: bool,
    mut look: impl FnMut(&Path) -> std::io::Result<Node>,
) -> Result<Resolved, RootError> {
    let name = || rel.display().to_string();
    let mut todo: VecDeque<OsString> = VecDeque::new();
    push_front(&mut todo, rel);
    let mut done = PathBuf::new();
    let mut leaves = None;
    let mut links = 0usize;
    let mut missing = false;
    if rel.is_absolute() {
        leaves = Some((name(), name()));
    }
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            // `done` holds no links, so `..` is lexical; above the root it stays there.
            if !done.pop() && leaves.is_none() {
                leaves = Some((name(), "..".into()));
            }
            continue;
        }
        let next = done.join(&c);
        if missing {
            done = next;
            continue;
        }
        let last = todo.is_empty();
        match look(&next).map_err(|e| RootError::Io {
            path: next.display().to_string(),
            error: e.to_string(),
        })? {
            Node::Missing => {
                missing = true;
                done = next;
            }
            Node::Dir => done = next,
            Node::Other if last => done = next,
            Node::Other => {
                return Err(RootError::NotAFolder {
                    path: name(),
                    component: next.display().to_string(),
                })
            }
            Node::Link(_) if last && !follow_last => done = next,
            Node::Link(target) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(RootError::TooManyLinks { path: name() });
                }
                if target.is_absolute() {
                    if leaves.is_none() {
                        leaves = Some((next.display().to_string(), target.display().to_string()));
                    }
                    done = PathBuf::new();
                }
                push_front(&mut todo, &target);
            }
        }
    }
    Ok(Resolved { rel: done, leaves })
}

/// Puts the components of `p` (without `/` and `.`) in front of `todo`, in order.
fn push_front(todo: &mut VecDeque<OsString>, p: &Path) {
    for c in p.components().rev() {
        match c {
            Component::Normal(n) => todo.push_front(n.to_os_string()),
            Component::ParentDir => todo.push_front("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
}

/// `lstat` + `readlink` of one path, for [`resolve`].
fn look_at(root: &Path) -> impl FnMut(&Path) -> std::io::Result<Node> + '_ {
    move |rel| {
        let p = root.join(rel);
        match std::fs::symlink_metadata(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Node::Missing),
            Err(e) => Err(e),
            Ok(m) if m.file_type().is_symlink() => Ok(Node::Link(std::fs::read_link(&p)?)),
            Ok(m) if m.is_dir() => Ok(Node::Dir),
            Ok(_) => Ok(Node::Other),
        }
    }
}

/// Refuses (before anything is written) any of `rels` that the kernel would resolve
/// out of `root` through a link; a final link is the entry itself and not followed.
pub fn check_inside<'a>(
    root: &Path,
    rels: impl IntoIterator<Item = &'a str>,
) -> Result<(), RootError> {
    for rel in rels {
        let r = resolve(Path::new(rel), false, look_at(root))?;
        if let Some((link, target)) = r.leaves {
            return Err(RootError::Leaves {
                path: rel.to_owned(),
                link,
                target,
            });
        }
    }
    Ok(())
}

/// Reads a regular file of at most `max` bytes without following a link at `path`
/// (`O_NOFOLLOW`, `O_NONBLOCK` so a FIFO cannot block, `fstat`). `None` if missing.
pub fn read_regular(path: &Path, max: u64) -> Result<Option<Vec<u8>>, RootError> {
    let name = || path.display().to_string();
    let io = |e: std::io::Error| RootError::Io {
        path: name(),
        error: e.to_string(),
    };
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP) => return Err(RootError::IsLink { path: name() }),
        Err(e) => return Err(io(e.into())),
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| io(e.into()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(RootError::NotAFile { path: name() });
    }
    let too_large = || RootError::TooLarge { path: name(), max };
    if u64::try_from(stat.st_size).unwrap_or(u64::MAX) > max {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(too_large());
    }
    Ok(Some(bytes))
}

/// The host's os-release text: `etc/os-release`, else `usr/lib/os-release` (as
/// os-release(5) says), each resolved under the root.
pub fn read_os_release(root: &Path) -> Result<String, RootError> {
    for rel in ["etc/os-release", "usr/lib/os-release"] {
        let r = resolve(Path::new(rel), true, look_at(root))?;
        if let Some(bytes) = read_regular(&root.join(&r.rel), MAX_OS_RELEASE)? {
            return Ok(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    Err(RootError::Io {
        path: root.join("etc/os-release").display().to_string(),
        error: "no such file (nor usr/lib/os-release)".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::symlink;

    /// An in-memory tree: path → node; unlisted paths are missing.
    fn tree(entries: &[(&str, Node)]) -> impl FnMut(&Path) -> std::io::Result<Node> {
        let map: BTreeMap<PathBuf, Node> = entries
            .iter()
            .map(|(p, n)| (PathBuf::from(p), n.clone()))
            .collect();
        move |p| Ok(map.get(p).cloned().unwrap_or(Node::Missing))
    }

    fn link(t: &str) -> Node {
        Node::Link(PathBuf::from(t))
    }

    #[test]
    fn links_resolve_as_the_host_sees_them() {
        let host = [
            ("etc", Node::Dir),
            ("etc/os-release", link("../usr/lib/os-release")),
            ("etc/abs", link("/usr/lib/os-release")),
            ("etc/up", link("../../../../usr/lib/os-release")),
            ("usr", Node::Dir),
            ("usr/lib", Node::Dir),
            ("usr/lib/os-release", Node::Other),
            ("var", link("/data/var")),
            ("data", Node::Dir),
            ("data/var", Node::Dir),
        ];
        let r = |p: &str, follow| resolve(Path::new(p), follow, tree(&host));
        let os = PathBuf::from("usr/lib/os-release");
        assert_eq!(
            r("etc/os-release", true).unwrap(),
            Resolved {
                rel: os.clone(),
                leaves: None
            }
        );
        let abs = r("etc/abs", true).unwrap();
        assert_eq!(abs.rel, os);
        assert_eq!(
            abs.leaves,
            Some(("etc/abs".into(), "/usr/lib/os-release".into()))
        );
        let up = r("etc/up", true).unwrap();
        assert_eq!(up.rel, os);
        assert!(up.leaves.is_some());
        // A missing tail is kept as written.
        let st = r("var/lib/catrust", true).unwrap();
        assert_eq!(st.rel, PathBuf::from("data/var/lib/catrust"));
        assert_eq!(st.leaves, Some(("var".into(), "/data/var".into())));
        // A final link is not followed when the entry itself is what counts.
        assert_eq!(r("etc/abs", false).unwrap().leaves, None);
        assert!(matches!(
            r("usr/lib/os-release/x", true),
            Err(RootError::NotAFolder { .. })
        ));
        assert!(r("/etc/x", false).unwrap().leaves.is_some());
        assert!(r("../x", false).unwrap().leaves.is_some());
    }

    #[test]
    fn loops_end_at_the_link_limit() {
        let host = [("a", link("b")), ("b", link("a"))];
        assert_eq!(
            resolve(Path::new("a/x"), true, tree(&host)),
            Err(RootError::TooManyLinks { path: "a/x".into() })
        );
        let self_loop = [("var", Node::Dir), ("var/lib", link("lib"))];
        assert!(matches!(
            resolve(Path::new("var/lib/catrust"), true, tree(&self_loop)),
            Err(RootError::TooManyLinks { .. })
        ));
    }

    #[test]
    fn os_release_links_resolve_under_the_host_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::write(root.join("etc/azl-release"), "ID=azurelinux\n").unwrap();
        // Two absolute hops: the second one used to be read on the agent's machine.
        symlink("/usr/lib/os-release", root.join("etc/os-release")).unwrap();
        symlink("/etc/azl-release", root.join("usr/lib/os-release")).unwrap();
        assert_eq!(read_os_release(root).unwrap(), "ID=azurelinux\n");
        // `..` above the root stays at the root.
        std::fs::remove_file(root.join("etc/os-release")).unwrap();
        symlink(
            "../../../../../../../etc/azl-release",
            root.join("etc/os-release"),
        )
        .unwrap();
        assert_eq!(read_os_release(root).unwrap(), "ID=azurelinux\n");
        // Not a regular file, too large.
        std::fs::remove_file(root.join("etc/azl-release")).unwrap();
        std::fs::create_dir(root.join("etc/azl-release")).unwrap();
        assert!(matches!(
            read_os_release(root),
            Err(RootError::NotAFile { .. })
        ));
        std::fs::remove_dir(root.join("etc/azl-release")).unwrap();
        std::fs::write(
            root.join("etc/azl-release"),
            vec![b'#'; MAX_OS_RELEASE as usize + 1],
        )
        .unwrap();
        assert!(matches!(
            read_os_release(root),
            Err(RootError::TooLarge { .. })
        ));
    }

    #[test]
    fn writes_through_a_link_leaving_the_root_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(root.join("var/lib")).unwrap();
        std::fs::create_dir_all(root.join("opt/catrust")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        assert_eq!(check_inside(&root, ["var/lib/catrust/state.json"]), Ok(()));
        symlink("../../opt/catrust", root.join("var/lib/catrust")).unwrap();
        assert_eq!(check_inside(&root, ["var/lib/catrust/state.json"]), Ok(()));
        std::fs::remove_file(root.join("var/lib/catrust")).unwrap();
        symlink(&outside, root.join("var/lib/catrust")).unwrap();
        let e = check_inside(&root, ["var/lib/catrust/state.json"]).unwrap_err();
        assert!(
            matches!(&e, RootError::Leaves { link, .. } if link == "var/lib/catrust"),
            "{e}"
        );
        assert!(check_inside(&root, ["/etc/passwd"]).is_err());
        assert!(check_inside(&root, ["../x"]).is_err());
        // The final entry itself may be a link: the plan refuses or replaces it.
        assert_eq!(check_inside(&root, ["var/lib/catrust"]), Ok(()));
    }

    #[test]
    fn own_files_are_never_links() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("state.json");
        assert_eq!(read_regular(&p, 10), Ok(None));
        std::fs::write(tmp.path().join("elsewhere"), "{}").unwrap();
        symlink(tmp.path().join("elsewhere"), &p).unwrap();
        assert!(matches!(
            read_regular(&p, 10),
            Err(RootError::IsLink { .. })
        ));
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, "{}").unwrap();
        assert_eq!(read_regular(&p, 10), Ok(Some(b"{}".to_vec())));
        assert!(matches!(
            read_regular(&p, 1),
            Err(RootError::TooLarge { .. })
        ));
    }
}
