//! The agent's record of what it installed (`<host-root>/var/lib/catrust/state.json`)
//! and of its last outcome (`status.json`). The record is the only authority for
//! removal: the agent deletes a file or reverts a line only when the record lists it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsops;

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

/// Loads the record; a missing record is an empty one, a corrupt one an error (the
/// agent must not forget what it installed and start over).
pub fn load(root: &Path) -> Result<State, String> {
    let path = state_path(root);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{} is corrupt ({e}); refusing to guess what is installed",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State {
            version: STATE_VERSION,
            ..State::default()
        }),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

pub fn save(root: &Path, state: &State) -> Result<(), String> {
    let mut state = state.clone();
    state.version = STATE_VERSION;
    let mut json = serde_json::to_vec_pretty(&state).map_err(|e| e.to_string())?;
    json.push(b'\n');
    write_own(root, &state_path(root), &json)
}

pub fn load_outcome(root: &Path) -> Option<Outcome> {
    serde_json::from_slice(&std::fs::read(outcome_path(root)).ok()?).ok()
}

pub fn save_outcome(root: &Path, outcome: &Outcome) -> Result<(), String> {
    let mut json = serde_json::to_vec_pretty(outcome).map_err(|e| e.to_string())?;
    json.push(b'\n');
    write_own(root, &outcome_path(root), &json)
}

fn write_own(root: &Path, path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::create_dir_all(root.join(STATE_DIR))
        .map_err(|e| format!("cannot create {}: {e}", root.join(STATE_DIR).display()))?;
    fsops::write_atomic(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Serialises applies on one host (a `run` and an admin's `apply --once`, or two pods
/// during a surge): an exclusive lock on `var/lib/catrust/lock`, released on drop.
pub fn lock(root: &Path) -> Result<std::fs::File, String> {
    let dir = root.join(STATE_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .map_err(|e| format!("cannot open the apply lock: {e}"))?;
    file.lock()
        .map_err(|e| format!("cannot take the apply lock: {e}"))?;
    Ok(file)
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
