//! Where the node's containerd reads per-registry `hosts.toml` files: its CRI
//! `config_path`, found in `/etc/containerd/config.toml` and the files it `imports`.
//! Pure: config texts in, the decision out; the shell ([`read`]) only loads the files.
//!
//! - Version 2 (containerd 1.x; also read by 2.x): `[plugins."io.containerd.grpc.v1.cri".registry]`;
//!   version 1 (no `version`): `[plugins.cri.registry]`. `containerd config default`
//!   of 1.6 and 1.7 has `config_path = ""`, and an absent key means the same: then
//!   `certs.d` is not read at all.
//! - Version 3 (containerd 2.x): `[plugins."io.containerd.cri.v1.images".registry]`,
//!   whose default is `/etc/containerd/certs.d:/etc/docker/certs.d`.
//! - `config_path` may be a colon-separated list: the agent writes under the first
//!   entry. `imports` are loaded after the file naming them, and a plugin section in a
//!   later file replaces an earlier one (as containerd's `mergeConfig` does).

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item};

/// containerd's main config, relative to the host root.
pub const CONFIG: &str = "etc/containerd/config.toml";
/// The certs.d folder assumed when no config says otherwise (containerd 2.x default).
pub const DEFAULT_CERTS_D: &str = "etc/containerd/certs.d";
/// At most this many config files (the main one and its imports, transitively).
const MAX_FILES: usize = 16;
/// At most this many bytes per config file.
const MAX_BYTES: u64 = 1 << 20;

/// Where `hosts.toml` files go, or why nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertsDir {
    /// containerd reads `hosts.toml` files here (host-relative, no leading slash).
    /// `note` says when it was assumed rather than read from a config.
    Enabled { dir: String, note: Option<String> },
    /// containerd ignores `hosts.toml` files: registry CAs need the system store and a
    /// containerd restart.
    Disabled { why: String },
}

impl Default for CertsDir {
    fn default() -> Self {
        CertsDir::Enabled {
            dir: DEFAULT_CERTS_D.into(),
            note: None,
        }
    }
}

/// A containerd config that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{file} is not valid TOML: {reason}")]
    Toml { file: String, reason: String },
    #[error("{file}: config_path entry {entry:?} is not an absolute path inside the host root")]
    Escapes { file: String, entry: String },
    #[error("{file}: {what}")]
    Shape { file: String, what: String },
    #[error("cannot read {file}: {reason}")]
    Read { file: String, reason: String },
    #[error("more than {MAX_FILES} containerd config files (imports), or one over {MAX_BYTES} bytes: {file}")]
    TooMany { file: String },
}

/// The CRI registry table's plugin key for a config `version`.
fn cri_plugin(version: i64) -> &'static str {
    match version {
        3 => "io.containerd.cri.v1.images",
        2 => "io.containerd.grpc.v1.cri",
        _ => "cri",
    }
}

/// `imports` of one config text (as written: absolute, or relative to its folder).
pub fn imports(file: &str, text: &str) -> Result<Vec<String>, ConfigError> {
    let doc = parse(file, text)?;
    let Some(item) = doc.get("imports") else {
        return Ok(Vec::new());
    };
    let arr = item
        .as_array()
        .ok_or_else(|| shape(file, "imports is not a list"))?;
    arr.iter()
        .map(|v| string(file, v.as_str(), "imports holds a non-string"))
        .collect()
}

fn shape(file: &str, what: &str) -> ConfigError {
    ConfigError::Shape {
        file: file.into(),
        what: what.into(),
    }
}

/// A TOML string value, or a shape error naming `what`.
fn string(file: &str, value: Option<&str>, what: &str) -> Result<String, ConfigError> {
    value.map(str::to_owned).ok_or_else(|| shape(file, what))
}

fn parse(file: &str, text: &str) -> Result<DocumentMut, ConfigError> {
    text.parse::<DocumentMut>().map_err(|e| ConfigError::Toml {
        file: file.into(),
        reason: e.to_string().trim().to_owned(),
    })
}

/// The decision from the config files in load order (the main one first), each as
/// (host path, text). No file at all: containerd runs on its built-in defaults, which
/// differ by version, so the 2.x default is assumed and said.
pub fn certs_dir(files: &[(String, String)]) -> Result<CertsDir, ConfigError> {
    let Some((main, main_text)) = files.first() else {
        return Ok(CertsDir::Enabled {
            dir: DEFAULT_CERTS_D.into(),
            note: Some(format!(
                "no /{CONFIG}: assuming containerd reads /{DEFAULT_CERTS_D} (the 2.x default; 1.x reads no certs.d without config_path)"
            )),
        });
    };
    let version = parse(main, main_text)?
        .get("version")
        .and_then(Item::as_integer)
        .unwrap_or(1);
    let plugin = cri_plugin(version);
    // The last file with the plugin's registry table decides.
    let mut found: Option<(&str, Option<String>)> = None;
    for (file, text) in files {
        let doc = parse(file, text)?;
        let Some(section) = doc.get("plugins").and_then(|p| p.get(plugin)) else {
            continue;
        };
        let path = section
            .get("registry")
            .and_then(|r| r.get("config_path"))
            .map(|v| string(file, v.as_str(), "config_path is not a string"))
            .transpose()?;
        found = Some((file, path));
    }
    let (file, path) = match found {
        Some((file, Some(path))) => (file.to_owned(), path),
        Some((file, None)) if version >= 3 => {
            return Ok(CertsDir::Enabled {
                dir: DEFAULT_CERTS_D.into(),
                note: Some(format!(
                    "{file} sets no config_path: containerd 2.x reads /{DEFAULT_CERTS_D} by default"
                )),
            })
        }
        None if version >= 3 => return Ok(CertsDir::default()),
        Some((file, None)) => {
            return Ok(CertsDir::Disabled {
                why: format!("{file} sets no [plugins.\"{plugin}\".registry] config_path"),
            })
        }
        None => {
            return Ok(CertsDir::Disabled {
                why: format!("{main} has no [plugins.\"{plugin}\".registry] config_path"),
            })
        }
    };
    let Some(first) = path.split(':').map(str::trim).find(|e| !e.is_empty()) else {
        return Ok(CertsDir::Disabled {
            why: format!("{file} sets config_path = \"\""),
        });
    };
    let rel = first.strip_prefix('/').filter(|r| {
        !r.is_empty()
            && Path::new(r)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
    });
    match rel {
        Some(r) => Ok(CertsDir::Enabled {
            dir: r.trim_end_matches('/').to_owned(),
            note: None,
        }),
        None => Err(ConfigError::Escapes {
            file,
            entry: first.into(),
        }),
    }
}

/// Loads `etc/containerd/config.toml` under `root` and its imports (breadth first,
/// at most [`MAX_FILES`] files of [`MAX_BYTES`]; a `*` in the last component is a glob,
/// as containerd allows) and decides. Host paths are named as the host sees them.
pub fn read(root: &Path) -> Result<CertsDir, ConfigError> {
    let mut files: Vec<(String, String)> = Vec::new();
    let mut pending = vec![format!("/{CONFIG}")];
    while let Some(host_path) = (!pending.is_empty()).then(|| pending.remove(0)) {
        if files.iter().any(|(f, _)| *f == host_path) {
            continue;
        }
        if files.len() >= MAX_FILES {
            return Err(ConfigError::TooMany { file: host_path });
        }
        let full = under(root, &host_path);
        let text = match std::fs::metadata(&full) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && files.is_empty() => {
                return certs_dir(&[]);
            }
            Err(e) => {
                return Err(ConfigError::Read {
                    file: host_path,
                    reason: e.to_string(),
                })
            }
            Ok(m) if m.len() > MAX_BYTES => return Err(ConfigError::TooMany { file: host_path }),
            Ok(_) => std::fs::read_to_string(&full).map_err(|e| ConfigError::Read {
                file: host_path.clone(),
                reason: e.to_string(),
            })?,
        };
        let dir = Path::new(&host_path)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        for imp in imports(&host_path, &text)? {
            let abs = if imp.starts_with('/') {
                PathBuf::from(&imp)
            } else {
                dir.join(&imp)
            };
            pending.extend(expand(root, &abs));
        }
        files.push((host_path, text));
    }
    certs_dir(&files)
}

/// `host_path` (absolute on the host) under `root`.
fn under(root: &Path, host_path: &str) -> PathBuf {
    root.join(host_path.trim_start_matches('/'))
}

/// An import path, with a `*` glob in its last component expanded (sorted).
fn expand(root: &Path, abs: &Path) -> Vec<String> {
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some((prefix, suffix)) = name.split_once('*') else {
        return vec![abs.display().to_string()];
    };
    let parent = abs.parent().unwrap_or(Path::new("/"));
    let mut out: Vec<String> = std::fs::read_dir(under(root, &parent.display().to_string()))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix) && n.ends_with(suffix) && n.len() >= name.len() - 1)
        .map(|n| parent.join(n).display().to_string())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<CertsDir, ConfigError> {
        certs_dir(&[("/etc/containerd/config.toml".into(), text.into())])
    }

    fn enabled(dir: &str) -> CertsDir {
        CertsDir::Enabled {
            dir: dir.into(),
            note: None,
        }
    }

    #[test]
    fn version_2_reads_the_cri_plugins_config_path_and_takes_the_first_entry() {
        let eks = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/etc/containerd/certs.d:/etc/docker/certs.d\"\n";
        assert_eq!(one(eks), Ok(enabled("etc/containerd/certs.d")));
        let custom = "version = 2\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    [plugins.\"io.containerd.grpc.v1.cri\".registry]\n      config_path = \"/var/lib/certs.d/\"\n";
        assert_eq!(one(custom), Ok(enabled("var/lib/certs.d")));
    }

    #[test]
    fn version_3_reads_the_images_plugin_and_defaults_to_certs_d() {
        let v3 = "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\nconfig_path = '/etc/containerd/certs.d'\n";
        assert_eq!(one(v3), Ok(enabled("etc/containerd/certs.d")));
        // The v2 key means nothing in a v3 file.
        let wrong = "version = 3\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/elsewhere\"\n";
        assert_eq!(one(wrong), Ok(CertsDir::default()));
        let Ok(CertsDir::Enabled { note: Some(n), .. }) =
            one("version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n")
        else {
            panic!()
        };
        assert!(n.contains("2.x reads /etc/containerd/certs.d"), "{n}");
    }

    #[test]
    fn empty_or_absent_config_path_disables_certs_d() {
        // `containerd config default` of 1.6 and 1.7.
        let default =
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"\"\n";
        let Ok(CertsDir::Disabled { why }) = one(default) else {
            panic!()
        };
        assert!(why.contains("config_path = \"\""), "{why}");
        let Ok(CertsDir::Disabled { why }) = one(
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\nsandbox_image = \"pause\"\n",
        ) else {
            panic!()
        };
        assert!(why.contains("sets no"), "{why}");
        assert!(matches!(
            one("version = 2\n"),
            Ok(CertsDir::Disabled { .. })
        ));
        // Version 1 (no version key): plugins.cri.
        assert_eq!(
            one("[plugins.cri.registry]\nconfig_path = \"/etc/containerd/certs.d\"\n"),
            Ok(enabled("etc/containerd/certs.d"))
        );
        let Ok(CertsDir::Enabled { note: Some(_), .. }) = certs_dir(&[]) else {
            panic!()
        };
    }

    #[test]
    fn a_later_import_replaces_the_plugin_section() {
        let main = "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"\"\n";
        let import = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/etc/containerd/certs.d\"\n";
        let files = [
            ("/etc/containerd/config.toml".to_string(), main.to_string()),
            ("/etc/containerd/conf.d/10-certs.toml".into(), import.into()),
        ];
        assert_eq!(certs_dir(&files), Ok(enabled("etc/containerd/certs.d")));
        assert_eq!(
            imports(&files[0].0, main).unwrap(),
            ["/etc/containerd/conf.d/*.toml"]
        );
    }

    #[test]
    fn paths_that_leave_the_host_root_and_bad_toml_are_errors() {
        for bad in ["relative/certs.d", "/etc/../../x", "/"] {
            let text = format!("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"{bad}\"\n");
            assert!(
                matches!(one(&text), Err(ConfigError::Escapes { .. })),
                "{bad}: {:?}",
                one(&text)
            );
        }
        assert!(matches!(
            one("version = = 2"),
            Err(ConfigError::Toml { .. })
        ));
    }

    #[test]
    fn the_shell_follows_imports_with_a_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        assert!(matches!(
            read(root),
            Ok(CertsDir::Enabled { note: Some(_), .. })
        ));
        std::fs::create_dir_all(root.join("etc/containerd/conf.d")).unwrap();
        std::fs::write(
            root.join(CONFIG),
            "version = 2\nimports = [\"conf.d/*.toml\"]\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/containerd/conf.d/certs.toml"),
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/etc/containerd/certs.d\"\n",
        )
        .unwrap();
        assert_eq!(read(root), Ok(enabled("etc/containerd/certs.d")));
        // An import loop ends; too many files is an error.
        std::fs::write(
            root.join("etc/containerd/conf.d/loop.toml"),
            "imports = [\"/etc/containerd/config.toml\"]\n",
        )
        .unwrap();
        assert_eq!(read(root), Ok(enabled("etc/containerd/certs.d")));
        for i in 0..MAX_FILES {
            std::fs::write(root.join(format!("etc/containerd/conf.d/{i:02}.toml")), "").unwrap();
        }
        assert!(matches!(read(root), Err(ConfigError::TooMany { .. })));
    }
}
