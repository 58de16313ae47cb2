//! Host families and the paths each one uses. Pure: parses os-release text and maps a
//! family to paths relative to the host root. Never touches the disk.

use serde::{Deserialize, Serialize};

/// The trust-store conventions of a Linux distribution family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Debian, Ubuntu: `update-ca-certificates`, `ca-certificates.conf`.
    Debian,
    /// Azure Linux, CBL-Mariner, RHEL, Fedora, CentOS: p11-kit `update-ca-trust`.
    Rhel,
    /// Flatcar: `.pem` files in `/etc/ssl/certs`, its own `update-ca-certificates`.
    Flatcar,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Debian => "debian",
            Family::Rhel => "rhel",
            Family::Flatcar => "flatcar",
        }
    }

    /// Path (relative to the host root) of the anchor for authority `name`. Always
    /// `catrust-` prefixed, also inside the agent's own Debian folder:
    /// `update-ca-certificates` links `/etc/ssl/certs/<basename>.pem` by the basename
    /// alone, so `catrust/<name>.crt` would overwrite (or be overwritten by) the link
    /// of any anchor named `<name>.crt` elsewhere (AKS's `proxyCA.crt`, a distribution
    /// CA's name). Anchors an earlier agent wrote as `catrust/<name>.crt` are in its
    /// record and are removed by the next apply (the plan's rename migration).
    pub fn anchor_path(self, name: &str) -> String {
        match self {
            Family::Debian => format!("{DEBIAN_ANCHORS}/catrust-{name}.crt"),
            Family::Rhel => format!("{RHEL_ANCHORS}/catrust-{name}.crt"),
            Family::Flatcar => format!("{FLATCAR_ANCHORS}/catrust-{name}.pem"),
        }
    }

    /// Is `path` (relative) in the namespace the agent owns for anchors? Debian: its
    /// own folder; the others: its `catrust-` prefix inside a shared folder.
    pub fn is_own_anchor_name(self, file_name: &str) -> bool {
        match self {
            Family::Debian => true,
            Family::Rhel | Family::Flatcar => file_name.starts_with("catrust-"),
        }
    }

    /// The folder holding the agent's anchors (owned wholly on Debian, shared elsewhere).
    pub fn anchors_dir(self) -> &'static str {
        match self {
            Family::Debian => DEBIAN_ANCHORS,
            Family::Rhel => RHEL_ANCHORS,
            Family::Flatcar => FLATCAR_ANCHORS,
        }
    }

    /// The bundle the refresh generates; what the agent checks after a refresh.
    pub fn generated_bundle(self) -> &'static str {
        match self {
            Family::Debian | Family::Flatcar => "etc/ssl/certs/ca-certificates.crt",
            Family::Rhel => "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        }
    }

    /// Where the blocklist entry for a distrusted fingerprint goes (RHEL family only).
    pub fn blocklist_path(self, sha256: &str) -> Option<String> {
        match self {
            Family::Rhel => Some(format!(
                "etc/pki/ca-trust/source/blocklist/catrust-{sha256}.pem"
            )),
            _ => None,
        }
    }
}

pub const DEBIAN_ANCHORS: &str = "usr/local/share/ca-certificates/catrust";
pub const RHEL_ANCHORS: &str = "etc/pki/ca-trust/source/anchors";
pub const FLATCAR_ANCHORS: &str = "etc/ssl/certs";
/// Debian's list of selected system certificates (`!` deselects).
pub const DEBIAN_CONF: &str = "etc/ca-certificates.conf";
/// Debian's system certificates, named in `ca-certificates.conf` relative to here.
pub const DEBIAN_CERTSDIR: &str = "usr/share/ca-certificates";
/// Debian's local certificates (foreign ones live beside the agent's folder).
pub const DEBIAN_LOCALCERTSDIR: &str = "usr/local/share/ca-certificates";

/// A host whose os-release names no family the agent supports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported host: os-release ID={id:?} ID_LIKE={like:?} (supported: debian, ubuntu, azurelinux, mariner, rhel, fedora, centos, flatcar)")]
pub struct UnsupportedHost {
    pub id: String,
    pub like: String,
}

/// Detects the family from the text of `/etc/os-release` (`ID`, then `ID_LIKE`).
pub fn detect(os_release: &str) -> Result<Family, UnsupportedHost> {
    let mut id = None;
    let mut like = Vec::new();
    for line in os_release.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = value
            .trim()
            .trim_matches('"')
            .trim_matches('\'')
            .to_ascii_lowercase();
        match key {
            "ID" => id = Some(value),
            "ID_LIKE" => like = value.split_whitespace().map(str::to_owned).collect(),
            _ => {}
        }
    }
    let candidates = id.iter().cloned().chain(like.iter().cloned());
    for c in candidates {
        let family = match c.as_str() {
            "debian" | "ubuntu" => Family::Debian,
            "azurelinux" | "mariner" | "rhel" | "fedora" | "centos" => Family::Rhel,
            "flatcar" => Family::Flatcar,
            _ => continue,
        };
        return Ok(family);
    }
    Err(UnsupportedHost {
        id: id.unwrap_or_default(),
        like: like.join(" "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_from_os_release() {
        assert_eq!(detect("ID=ubuntu\nID_LIKE=debian\n"), Ok(Family::Debian));
        assert_eq!(detect("ID=\"azurelinux\"\n"), Ok(Family::Rhel));
        assert_eq!(
            detect("ID=rocky\nID_LIKE=\"rhel centos fedora\"\n"),
            Ok(Family::Rhel)
        );
        assert_eq!(detect("ID=flatcar\n"), Ok(Family::Flatcar));
        assert_eq!(detect("ID=alpine\n").unwrap_err().id, "alpine");
        assert!(detect("").is_err());
    }
}
