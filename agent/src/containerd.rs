//! containerd per-registry trust: `etc/containerd/certs.d/<host>/hosts.toml` edits.
//! Pure functions over TOML text (toml_edit keeps every comment, key order and
//! spacing of a file the agent does not own); what was added is returned as a
//! [`HostsEdit`] so it can be reverted exactly, and marked in the file by a comment.

use catrust_bundle::RegistryHost;
use toml_edit::{Array, DocumentMut, Item, Table, Value};

use crate::state::HostsEdit;

pub const MARK: &str = "# managed by catrust-agent (removed on uninstall)";

/// The `[host."…"]` key and `server` value for a registry `host[:port]`.
pub fn host_key(registry: &RegistryHost) -> String {
    format!("https://{registry}")
}

/// The folder containerd reads for `registry` under its certs.d folder `base`
/// (host-relative): [`RegistryHost::certs_d_dir`], the host verbatim on Linux
/// (containerd's `hostDirectory`; only Windows strips the colon), one path component.
pub fn hosts_dir(base: &str, registry: &RegistryHost) -> String {
    format!("{base}/{}", registry.certs_d_dir())
}

/// A hosts.toml that is not TOML, or not the shape containerd reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HostsTomlError(String);

fn parse(content: &str) -> Result<DocumentMut, HostsTomlError> {
    content
        .parse::<DocumentMut>()
        .map_err(|e| HostsTomlError(format!("not valid TOML: {e}")))
}

/// Removes from `content` exactly what `edit` added.
pub fn revert(content: &str, edit: &HostsEdit) -> Result<String, HostsTomlError> {
    let mut doc = parse(content)?;
    if edit.added_server {
        doc.remove("server");
    }
    if let Some(hosts) = doc.get_mut("host").and_then(Item::as_table_mut) {
        if edit.added_table {
            hosts.remove(&edit.host_key);
        } else if let Some(table) = hosts.get_mut(&edit.host_key).and_then(Item::as_table_mut) {
            if let Some(arr) = table.get_mut("ca").and_then(Item::as_array_mut) {
                arr.retain(|v| {
                    !v.as_str()
                        .is_some_and(|s| edit.added_ca.iter().any(|a| a == s))
                });
                if arr.is_empty() {
                    table.remove("ca");
                }
            }
        }
        if hosts.is_empty() {
            doc.remove("host");
        }
    }
    Ok(doc.to_string())
}

/// Makes `[host."https://<registry>"]` list `cas` (file names relative to the
/// hosts.toml folder: containerd joins a relative `ca` with that folder, see
/// `makeAbsPath` in containerd's `remotes/docker/config/hosts.go`).
pub fn ensure(
    content: &str,
    registry: &RegistryHost,
    cas: &[String],
    created_file: bool,
) -> Result<(String, HostsEdit), HostsTomlError> {
    let mut doc = parse(content)?;
    let key = host_key(registry);
    let mut edit = HostsEdit {
        created_file,
        host_key: key.clone(),
        ..HostsEdit::default()
    };
    // Without an explicit server containerd 1.6 speaks plain HTTP to 127.0.0.1/localhost.
    if !doc.contains_key("server") {
        doc.insert("server", toml_edit::value(key.clone()));
        if let Some(mut k) = doc.key_mut("server") {
            k.leaf_decor_mut().set_prefix(format!("{MARK}\n"));
        }
        edit.added_server = true;
    }
    if !doc.contains_key("host") {
        let mut hosts = Table::new();
        hosts.set_implicit(true);
        doc.insert("host", Item::Table(hosts));
    }
    let hosts = doc
        .get_mut("host")
        .and_then(Item::as_table_mut)
        .ok_or_else(|| HostsTomlError("`host` is not a table".into()))?;
    hosts.set_implicit(true);
    match hosts.get_mut(&key) {
        None => {
            let mut table = Table::new();
            table.insert("ca", toml_edit::value(cas.iter().collect::<Array>()));
            table.decor_mut().set_prefix(format!("\n{MARK}\n"));
            hosts.insert(&key, Item::Table(table));
            edit.added_table = true;
        }
        Some(item) => {
            let table = item
                .as_table_mut()
                .ok_or_else(|| HostsTomlError(format!("[host.{key:?}] is not a table")))?;
            let mut arr = match table.get("ca") {
                None => Array::new(),
                Some(v) => match v.as_value() {
                    Some(Value::String(s)) => [s.value().clone()].into_iter().collect(),
                    Some(Value::Array(a)) => a.clone(),
                    _ => {
                        return Err(HostsTomlError(format!(
                            "[host.{key:?}] ca is neither a string nor a list"
                        )))
                    }
                },
            };
            for ca in cas {
                if !arr.iter().any(|v| v.as_str() == Some(ca.as_str())) {
                    arr.push(ca.as_str());
                    edit.added_ca.push(ca.clone());
                }
            }
            if !edit.added_ca.is_empty() {
                table.insert("ca", toml_edit::value(arr));
            }
        }
    }
    Ok((doc.to_string(), edit))
}

/// Nothing but comments and blank lines: a file the agent created may be removed.
pub fn is_blank(content: &str) -> bool {
    content
        .lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> RegistryHost {
        s.parse().unwrap()
    }

    const FOREIGN: &str = "# ops team: mirror first\nserver = \"https://registry.corp:5000\"\n\n[host.\"https://mirror.corp\"]\n  capabilities = [\"pull\"] # keep\n";

    #[test]
    fn foreign_file_is_edited_and_reverted_byte_for_byte() {
        let cas = vec!["catrust-a.crt".to_string()];
        let (edited, edit) = ensure(FOREIGN, &host("registry.corp:5000"), &cas, false).unwrap();
        assert!(edited.starts_with(FOREIGN.trim_end()), "{edited}");
        assert!(edited.contains(MARK));
        assert!(edited.contains("[host.\"https://registry.corp:5000\"]"));
        assert!(!edit.added_server && edit.added_table);
        assert_eq!(revert(&edited, &edit).unwrap(), FOREIGN);
    }

    #[test]
    fn appends_to_a_foreign_table_and_removes_only_its_entries() {
        let foreign = "[host.\"https://r:5000\"]\nca = \"/etc/ops.crt\"\n";
        let (edited, edit) =
            ensure(foreign, &host("r:5000"), &["catrust-a.crt".into()], false).unwrap();
        assert!(
            edited.contains("\"/etc/ops.crt\", \"catrust-a.crt\""),
            "{edited}"
        );
        assert_eq!(edit.added_ca, ["catrust-a.crt"]);
        let reverted = revert(&edited, &edit).unwrap();
        assert!(reverted.contains("/etc/ops.crt") && !reverted.contains("catrust"));
    }

    #[test]
    fn created_file_reverts_to_blank() {
        let (text, edit) =
            ensure("", &host("127.0.0.1:5000"), &["catrust-a.crt".into()], true).unwrap();
        assert!(text.contains("server = \"https://127.0.0.1:5000\""));
        assert!(is_blank(&revert(&text, &edit).unwrap()));
        assert_eq!(
            hosts_dir("etc/containerd/certs.d", &host("[::1]:5000")),
            "etc/containerd/certs.d/[::1]:5000"
        );
    }
}
