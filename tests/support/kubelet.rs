//! A Secret volume written exactly as kubelet's `AtomicWriter` writes one
//! (`pkg/volume/util/atomic_writer.go`): every version goes into a fresh
//! `..<timestamp>` folder, `..data_tmp` is pointed at it and renamed over `..data`
//! (the atomic swap), user-visible `<key> -> ..data/<key>` links are created for new
//! keys and removed for gone keys, and the old version folder is removed.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A Secret volume folder.
#[derive(Debug, Clone)]
pub struct SecretVolume {
    pub dir: PathBuf,
}

impl SecretVolume {
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("create the volume folder");
        SecretVolume {
            dir: dir.to_path_buf(),
        }
    }

    fn current(&self) -> Option<String> {
        std::fs::read_link(self.dir.join("..data"))
            .ok()
            .map(|t| t.to_string_lossy().into_owned())
    }

    /// The keys of the current version.
    pub fn keys(&self) -> Vec<String> {
        let Some(v) = self.current() else {
            return Vec::new();
        };
        let mut keys: Vec<String> = std::fs::read_dir(self.dir.join(v))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        keys.sort();
        keys
    }

    /// Publishes a new version. Keys are validated as kubelet does (no `/`, no `..`
    /// prefix), so a test that wants a forbidden entry must plant it by hand.
    pub fn write(&self, payload: &BTreeMap<String, Vec<u8>>) {
        self.write_with_mode(payload, 0o644);
    }

    /// Publishes a new version whose files have `mode` (the volume's `defaultMode`).
    pub fn write_with_mode(&self, payload: &BTreeMap<String, Vec<u8>>, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        for key in payload.keys() {
            assert!(
                !key.is_empty() && !key.contains('/') && !key.starts_with(".."),
                "kubelet refuses the key {key:?}"
            );
        }
        let old = self.current();
        let old_keys = self.keys();
        // kubelet: os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let ts = format!(
            "..{}_{:09}.{}{}",
            now.as_secs(),
            now.subsec_nanos(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let ts_dir = self.dir.join(&ts);
        std::fs::create_dir(&ts_dir).expect("create the version folder");
        for (key, bytes) in payload {
            std::fs::write(ts_dir.join(key), bytes).expect("write a key");
            std::fs::set_permissions(ts_dir.join(key), std::fs::Permissions::from_mode(mode))
                .expect("chmod a key");
        }
        let tmp = self.dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        symlink(&ts, &tmp).expect("create ..data_tmp");
        std::fs::rename(&tmp, self.dir.join("..data")).expect("swap ..data");
        for key in payload.keys() {
            let visible = self.dir.join(key);
            if std::fs::symlink_metadata(&visible).is_err() {
                symlink(format!("..data/{key}"), &visible).expect("create a user-visible link");
            }
        }
        for key in old_keys.iter().filter(|k| !payload.contains_key(*k)) {
            let _ = std::fs::remove_file(self.dir.join(key));
        }
        if let Some(old) = old {
            let _ = std::fs::remove_dir_all(self.dir.join(old));
        }
    }

    /// The folder of the current version (to tamper with it in place).
    pub fn version_dir(&self) -> PathBuf {
        self.dir
            .join(self.current().expect("a version is published"))
    }
}
