//! The apply's transaction on the host: the write-ahead record, the plan's actions
//! carried out with a backup of what each path held, and the restore of that backup.
//! The engine decides when to commit or roll back; this module does the file work in an
//! order a crash at any point recovers from (the record lists a file before it exists).

use std::path::{Path, PathBuf};

use crate::failpoint;
use crate::fsops::{self, Entry};
use crate::host::Family;
use crate::plan::{Action, Observed, Plan};
use crate::state::State;

/// A step of [`carry_out`] that failed; nothing after it ran.
#[derive(Debug, thiserror::Error)]
pub enum TxError {
    #[error("{path}: {error}")]
    CreateDir { path: String, error: std::io::Error },
    #[error("cannot write {path}: {error}")]
    Write { path: String, error: std::io::Error },
    #[error("cannot remove {path}: {error}")]
    Remove { path: String, error: std::io::Error },
}

/// The write-ahead record (pure): what was recorded, plus every file and hosts.toml
/// edit the plan will make, and a containerd restart owed if the plan restarts, so a
/// crash anywhere after the first change still ends in a restart on the next apply.
pub fn intent(recorded: &State, plan: &Plan, family: Family) -> State {
    let mut intent = recorded.clone();
    intent.files.extend(plan.state.files.clone());
    intent.hosts_edits.extend(plan.state.hosts_edits.clone());
    intent.family = Some(family);
    intent.restart_pending = recorded.restart_pending || plan.restart.is_some();
    intent
}

/// Files touched by an apply and what they held before, to restore on failure.
pub struct Backup {
    root: PathBuf,
    saved: Vec<(String, Entry)>,
}

impl Backup {
    pub fn new(root: &Path) -> Self {
        Backup {
            root: root.to_path_buf(),
            saved: Vec::new(),
        }
    }

    /// Puts back what every touched path held, newest first. Returns what could not
    /// be restored.
    pub fn restore(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for (path, before) in self.saved.iter().rev() {
            let full = self.root.join(path);
            let r = match before {
                Entry::File(bytes) => fsops::write_atomic(&full, bytes),
                Entry::Missing => fsops::remove(&full),
                // The plan never touches links or folders.
                Entry::Symlink(_) | Entry::Other => Ok(()),
            };
            if let Err(e) = r {
                errors.push(format!("{path}: {e}"));
            }
        }
        errors
    }
}

/// Carries out `actions` in order, each after `backup` has saved what its path held
/// (as `obs` saw it); folders it creates are added to `st.dirs`.
pub fn carry_out(
    root: &Path,
    actions: &[Action],
    obs: &Observed,
    st: &mut State,
    backup: &mut Backup,
) -> Result<(), TxError> {
    for a in actions {
        let before = obs.entries.get(a.path()).cloned().unwrap_or(Entry::Missing);
        backup.saved.push((a.path().to_owned(), before));
        let full = root.join(a.path());
        match a {
            Action::Write { path, bytes } => {
                if let Some(parent) = full.parent() {
                    let created =
                        fsops::create_dirs(parent).map_err(|error| TxError::CreateDir {
                            path: path.clone(),
                            error,
                        })?;
                    for d in created {
                        st.dirs.insert(rel_of(root, &d));
                    }
                }
                fsops::write_atomic_then(&full, bytes, |step| {
                    failpoint::hit(match step {
                        fsops::Step::TmpWritten => "apply.tmp_written",
                        fsops::Step::Renamed => "apply.renamed",
                    })
                })
                .map_err(|error| TxError::Write {
                    path: path.clone(),
                    error,
                })?;
            }
            Action::Remove { path } => fsops::remove(&full).map_err(|error| TxError::Remove {
                path: path.clone(),
                error,
            })?,
        }
    }
    Ok(())
}

/// Removes the given folders, deepest first, each only if empty.
pub fn remove_empty_dirs<'a>(root: &Path, dirs: impl Iterator<Item = &'a String>) {
    let mut dirs: Vec<&String> = dirs.collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.len()));
    for d in dirs {
        let _ = std::fs::remove_dir(root.join(d));
    }
}

/// `path` relative to the host root, as the record spells it.
pub fn rel_of(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_writing(path: &str, restart: Option<&str>) -> Plan {
        let mut state = State::default();
        state.files.insert(path.into(), "f".repeat(64));
        Plan {
            actions: vec![Action::Write {
                path: path.into(),
                bytes: b"PEM".to_vec(),
            }],
            store_changed: true,
            fresh: false,
            restart: restart.map(str::to_owned),
            warnings: Vec::new(),
            expect_present: Default::default(),
            expect_absent: Default::default(),
            removed: Default::default(),
            state,
        }
    }

    #[test]
    fn the_intent_lists_new_files_beside_the_recorded_ones_and_owes_the_restart() {
        let mut recorded = State::default();
        recorded.files.insert("old.crt".into(), "0".repeat(64));
        let plan = plan_writing("new.crt", Some("the system trust store changed"));
        let record = intent(&recorded, &plan, Family::Debian);
        let files: Vec<&str> = record.files.keys().map(String::as_str).collect();
        assert_eq!(files, ["new.crt", "old.crt"]);
        assert!(record.restart_pending);
        assert_eq!(record.family, Some(Family::Debian));
        // No restart planned and none owed: none recorded.
        let record = intent(&recorded, &plan_writing("new.crt", None), Family::Rhel);
        assert!(!record.restart_pending);
    }

    #[test]
    fn restore_puts_back_what_each_path_held_and_removes_what_was_new() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::write(root.join("kept.crt"), "before").unwrap();
        let mut obs = Observed::default();
        obs.entries
            .insert("kept.crt".into(), Entry::File(b"before".to_vec()));
        let actions = [
            Action::Write {
                path: "kept.crt".into(),
                bytes: b"after".to_vec(),
            },
            Action::Write {
                path: "sub/new.crt".into(),
                bytes: b"new".to_vec(),
            },
        ];
        let (mut st, mut backup) = (State::default(), Backup::new(root));
        carry_out(root, &actions, &obs, &mut st, &mut backup).unwrap();
        assert_eq!(std::fs::read(root.join("sub/new.crt")).unwrap(), b"new");
        assert!(st.dirs.contains("sub"), "{:?}", st.dirs);
        assert!(backup.restore().is_empty());
        assert_eq!(std::fs::read(root.join("kept.crt")).unwrap(), b"before");
        assert!(!root.join("sub/new.crt").exists());
    }
}
