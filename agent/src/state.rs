//! The agent's record of what it installed (`<host-root>/var/lib/catrust/state.json`)
//! and of its last outcome (`status.json`). The record is the only authority for
//! removal: the agent deletes a file or reverts a line only when the record lists it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::fsops;
use crate::rootfs::{self, RootError};

pub const STATE_DIR: &str = "var/lib/catrust";
const STATE_VERSION: u32 = 1;

/// What the agent installed on this host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub version: u32,
    /// Family the files were written for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<crate::host::Family>,
    /// Hash of the bundle that is fully installed (None while none is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_sha256: Option<String>,
    /// Every file the agent created: host-relative path → SHA-256 of what it wrote.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Folders the agent created (removed on uninstall when empty).
    #[serde(default)]
    pub dirs: BTreeSet<String>,
    /// Lines changed in `ca-certificates.conf` (Debian distrust).
    #[serde(default)]
    pub conf_edits: Vec<ConfEdit>,
    /// Edits to containerd `hosts.toml` files: path → what was added.
    #[serde(default)]
    pub hosts_edits: BTreeMap<String, HostsEdit>,
    /// Fingerprints the agent has distrusted on this host.
    #[serde(default)]
    pub distrusted: BTreeSet<String>,
    /// A containerd restart is owed (the last one failed or was interrupted).
    #[serde(default)]
    pub restart_pending: bool,
}

/// One distrust line in Debian's `ca-certificates.conf`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfEdit {
    pub sha256: String,
    /// The `!<path>` line the agent wrote.
    pub line: String,
    /// The selected line it replaced, if there was one (restored on revert).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
}

/// What the agent added to one `hosts.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostsEdit {
    /// The agent created the file (remove it when nothing else is left in it).
    pub created_file: bool,
    /// The agent added the top-level `server` key.
    pub added_server: bool,
    /// The `[host."…"]` table key the agent touched.
    pub host_key: String,
    /// The agent added the whole table.
    pub added_table: bool,
    /// `ca` entries the agent added to a table it did not add.
    #[serde(default)]
    pub added_ca: Vec<String>,
}

/// The last outcome, for `status` and readiness across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_sha256: Option<String>,
    /// Hash of the bundle last read from the volume (verified or not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_sha256: Option<String>,
    /// Unix seconds of the outcome.
    pub at: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

pub fn state_path(root: &Path) -> PathBuf {
    root.join(STATE_DIR).join("state.json")
}

pub fn outcome_path(root: &Path) -> PathBuf {
    root.join(STATE_DIR).join("status.json")
}

/// Largest record the agent reads back (a record lists a few paths per authority).
const MAX_RECORD: u64 = 16 << 20;

/// Why the record, the outcome or the lock could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// `var/lib/catrust` (or a folder above it) is a link leaving the host root, or the
    /// file is a link, not a regular file, or too large.
    #[error(transparent)]
    Refused(#[from] RootError),
    #[error("{path} is corrupt ({error}); refusing to guess what is installed")]
    Corrupt { path: String, error: String },
    #[error("cannot write {path}: {error}")]
    Write { path: String, error: String },
    #[error("cannot take the apply lock {path}: {error}")]
    Lock { path: String, error: String },
}

/// The engine reports reasons as text (logs, `status.json`, `/readyz`).
impl From<StateError> for String {
    fn from(e: StateError) -> Self {
        e.to_string()
    }
}

/// Refuses a state folder that the kernel would resolve out of the host root (the
/// folder or any folder above it a link with an absolute target, or `..` above the
/// root); links that stay inside are followed as the host would.
fn check_dir(root: &Path) -> Result<(), RootError> {
    rootfs::check_inside(root, [format!("{STATE_DIR}/lock").as_str()])
}

/// Loads the record; a missing record is an empty one, a corrupt one an error (the
/// agent must not forget what it installed and start over).
pub fn load(root: &Path) -> Result<State, StateError> {
    check_dir(root)?;
    let path = state_path(root);
    match rootfs::read_regular(&path, MAX_RECORD)? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
            path: path.display().to_string(),
            error: e.to_string(),
        }),
        None => Ok(State {
            version: STATE_VERSION,
            ..State::default()
        }),
    }
}

pub fn save(root: &Path, state: &State) -> Result<(), StateError> {
    let mut state = state.clone();
    state.version = STATE_VERSION;
    write_own(root, &state_path(root), &state)
}

pub fn load_outcome(root: &Path) -> Option<Outcome> {
    check_dir(root).ok()?;
    serde_json::from_slice(&rootfs::read_regular(&outcome_path(root), MAX_RECORD).ok()??).ok()
}

pub fn save_outcome(root: &Path, outcome: &Outcome) -> Result<(), StateError> {
    write_own(root, &outcome_path(root), outcome)
}

fn write_own(root: &Path, path: &Path, value: &impl Serialize) -> Result<(), StateError> {
    check_dir(root)?;
    let write = |what: &Path, e: &dyn std::fmt::Display| StateError::Write {
        path: what.display().to_string(),
        error: e.to_string(),
    };
    let mut json = serde_json::to_vec_pretty(value).map_err(|e| write(path, &e))?;
    json.push(b'\n');
    let dir = root.join(STATE_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| write(&dir, &e))?;
    fsops::write_atomic(path, &json).map_err(|e| write(path, &e))
}

/// Serialises applies on one host (a `run` and an admin's `apply --once`, or two pods
/// during a surge): an exclusive lock on `var/lib/catrust/lock` (never opened through
/// a link), released on drop.
pub fn lock(root: &Path) -> Result<std::fs::File, StateError> {
    check_dir(root)?;
    let dir = root.join(STATE_DIR);
    let path = dir.join("lock");
    let err = |e: &dyn std::fmt::Display| StateError::Lock {
        path: path.display().to_string(),
        error: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(|e| err(&e))?;
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::open(&path, flags, Mode::from_raw_mode(0o644)).map_err(|e| match e {
        Errno::LOOP => StateError::Refused(RootError::IsLink {
            path: path.display().to_string(),
        }),
        e => err(&std::io::Error::from(e)),
    })?;
    let file = std::fs::File::from(fd);
    file.lock().map_err(|e| err(&e))?;
    Ok(file)
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
