//! Throwaway host roots laid out like a Debian node or a RHEL-family node, the real
//! refresh tools run against them with explicit paths, and tree snapshots to prove
//! what an operation changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{require_tool, run};

/// A host root in a temp folder.
pub struct TestHost {
    pub tmp: tempfile::TempDir,
    pub family: &'static str,
}

pub use crate::Node;

/// Where the test's containerd restart command logs each run, under the host root.
pub const RESTART_LOG: &str = "containerd-restarts";

impl TestHost {
    /// Debian layout: os-release, ca-certificates.conf, the certificate folders, an
    /// empty hooks folder (so the machine's own hooks never run).
    pub fn debian() -> Self {
        require_tool("update-ca-certificates", "ca-certificates");
        let h = Self::with_folders(
            "debian",
            &[
                "etc/ssl/certs",
                "etc/ca-certificates/update.d",
                "usr/share/ca-certificates",
                "usr/local/share/ca-certificates",
            ],
        );
        h.write(
            "etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        );
        h.write(
            "etc/ca-certificates.conf",
            "# This file lists certificates that you wish to use or to ignore to be\n# installed in /etc/ssl/certs.\n",
        );
        h
    }

    /// RHEL-family layout (Azure Linux os-release), refreshed with p11-kit `trust`.
    pub fn rhel() -> Self {
        require_tool("trust", "p11-kit");
        require_tool("unshare", "util-linux");
        let h = Self::with_folders(
            "rhel",
            &[
                "etc/pki/ca-trust/source/anchors",
                "etc/pki/ca-trust/source/blocklist",
                "etc/pki/ca-trust/extracted/pem",
                "usr/share/pki/ca-trust-source/anchors",
            ],
        );
        h.write(
            "etc/os-release",
            "NAME=\"Microsoft Azure Linux\"\nID=azurelinux\nVERSION_ID=\"3.0\"\n",
        );
        h
    }

    /// A temp root holding `folders` and `var/lib` (where the agent keeps its record).
    fn with_folders(family: &'static str, folders: &[&str]) -> Self {
        let h = TestHost {
            tmp: tempfile::tempdir().expect("temp host root"),
            family,
        };
        for d in folders.iter().chain(&["var/lib"]) {
            std::fs::create_dir_all(h.root().join(d)).unwrap();
        }
        h
    }

    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// Adds a distribution-shipped CA: Debian: `usr/share/ca-certificates/<rel>` and its
    /// line in ca-certificates.conf; RHEL: `usr/share/pki/ca-trust-source/anchors/`.
    pub fn add_system_ca(&self, rel: &str, pem: &str) {
        if self.family == "debian" {
            self.write(&format!("usr/share/ca-certificates/{rel}"), pem);
            let mut conf = String::from_utf8(self.read("etc/ca-certificates.conf")).unwrap();
            conf.push_str(rel);
            conf.push('\n');
            self.write("etc/ca-certificates.conf", conf);
        } else {
            let name = Path::new(rel)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            self.write(
                &format!("usr/share/pki/ca-trust-source/anchors/{name}"),
                pem,
            );
        }
    }

    /// The bundle the refresh generates (what `curl --cacert` is pointed at).
    pub fn generated_bundle(&self) -> PathBuf {
        match self.family {
            "debian" => self.path("etc/ssl/certs/ca-certificates.crt"),
            _ => self.path("etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"),
        }
    }

    /// The distribution's refresh, run by the test itself (the baseline a node starts
    /// from; also the reference time for the benchmark).
    pub fn refresh(&self) {
        let r = |p: &str| self.path(p).display().to_string();
        let out = if self.family == "debian" {
            run(
                Command::new(require_tool("update-ca-certificates", "ca-certificates"))
                    .args(["--fresh", "--certsconf", &r("etc/ca-certificates.conf")])
                    .args(["--certsdir", &r("usr/share/ca-certificates")])
                    .args(["--localcertsdir", &r("usr/local/share/ca-certificates")])
                    .args(["--etccertsdir", &r("etc/ssl/certs")])
                    .args(["--hooksdir", &r("etc/ca-certificates/update.d")]),
            )
        } else {
            let moddir = tempfile::tempdir().unwrap();
            std::fs::write(
                moddir.path().join("p11-kit-trust.module"),
                format!(
                    "module: p11-kit-trust.so\npriority: 1\ntrust-policy: yes\nx-init-reserved: paths={}:{}\n",
                    r("etc/pki/ca-trust/source"),
                    r("usr/share/pki/ca-trust-source")
                ),
            )
            .unwrap();
            run(Command::new("unshare").args([
                "--mount",
                "sh",
                "-c",
                "mount --bind \"$1\" /usr/share/p11-kit/modules && exec trust extract --format=pem-bundle --filter=ca-anchors --overwrite --purpose server-auth \"$2\"",
                "sh",
                &moddir.path().display().to_string(),
                &self.generated_bundle().display().to_string(),
            ]))
        };
        assert!(
            out.status.success(),
            "refresh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Every entry under the root except the agent's own record (`var/lib/catrust`).
    pub fn snapshot(&self) -> BTreeMap<String, Node> {
        let mut tree = crate::tree(self.root());
        tree.retain(|rel, _| rel != "var/lib/catrust" && !rel.starts_with("var/lib/catrust/"));
        tree
    }

    /// How often the test's containerd restart command ran ([`crate::agent::host_flags`]
    /// logs each run in `containerd-restarts`).
    pub fn containerd_restarts(&self) -> usize {
        std::fs::read_to_string(self.path(RESTART_LOG))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// [`TestHost::snapshot`] without the test's restart log.
    pub fn node_snapshot(&self) -> BTreeMap<String, Node> {
        let mut s = self.snapshot();
        s.remove(RESTART_LOG);
        s
    }
}

/// The paths where two snapshots differ (for readable assertion messages).
pub fn diff(a: &BTreeMap<String, Node>, b: &BTreeMap<String, Node>) -> Vec<String> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}
