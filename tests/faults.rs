//! Fault injection into the real `catrust-agent`: crashes after every step of an apply
//! (named failpoints, present in every dev build: `catrust-failpoints`), a failing and a hanging refresh, a corrupt or lost
//! record, a read-only anchors folder, a bundle swapped mid-read and a flapping bundle.
//! Each test's name and doc state the invariant it checks. Every node is a throwaway
//! Debian root with the real `update-ca-certificates` (no Mozilla set: 0.1 s a refresh).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use catrust_bundle::ContainerdPolicy;
use catrust_tests::agent::{bundle, fingerprint, host_flags, status, Ca, RunningAgent};
use catrust_tests::host::{diff, Node, TestHost};
use catrust_tests::kubelet::SecretVolume;
use catrust_tests::node::{check_debian_node, DEBIAN_AGENT_ANCHORS};
use catrust_tests::pki::{make_ca, Issued};
use catrust_tests::{assert_ok, bin, run, spawn_paused_at};

const REGISTRY: &str = "registry.corp:5000";
const FOREIGN_ANCHOR: &str = "usr/local/share/ca-certificates/foreign-root.crt";
const FOREIGN_HOSTS: &str = "etc/containerd/certs.d/mirror.corp/hosts.toml";

type Files = BTreeMap<String, Vec<u8>>;

/// A Debian node with a foreign anchor and a foreign `hosts.toml`, its bundle volume,
/// and two bundles: A = {corp-a}, B = {corp-b} (both for `registry.corp:5000`,
/// containerd policy `restart`).
struct Fixture {
    h: TestHost,
    _vols: tempfile::TempDir,
    vol: SecretVolume,
    flags: Vec<String>,
    a: (Files, String),
    b: (Files, String),
    foreign: Vec<(&'static str, Vec<u8>)>,
    foreign_fp: BTreeSet<String>,
    _pki: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let pki = tempfile::tempdir().unwrap();
    let (ca_a, ca_b, ca_f): (Issued, Issued, Issued) = (
        make_ca(pki.path(), "corp-a", 30),
        make_ca(pki.path(), "corp-b", 30),
        make_ca(pki.path(), "foreign-root", 30),
    );
    let h = TestHost::debian();
    let foreign = vec![
        (FOREIGN_ANCHOR, ca_f.pem().into_bytes()),
        (
            FOREIGN_HOSTS,
            b"server = \"https://mirror.corp\"\n[host.\"https://mirror.corp\"]\n  capabilities = [\"pull\"]\n"
                .to_vec(),
        ),
    ];
    for (p, b) in &foreign {
        h.write(p, b);
    }
    h.refresh();
    let vols = tempfile::tempdir().unwrap();
    let vol = SecretVolume::new(&vols.path().join("bundle"));
    let flags = host_flags(h.root(), &vol.dir);
    let one = |name, cert| {
        bundle(
            &[Ca {
                name,
                cert,
                registries: &[REGISTRY],
            }],
            &[],
            ContainerdPolicy::Restart,
        )
    };
    Fixture {
        a: one("corp-a", &ca_a),
        b: one("corp-b", &ca_b),
        foreign_fp: [fingerprint(&ca_f)].into(),
        h,
        _vols: vols,
        vol,
        flags,
        foreign,
        _pki: pki,
    }
}

impl Fixture {
    fn apply_cmd(&self) -> Command {
        let mut cmd = Command::new(bin("catrust-agent"));
        cmd.args(["apply", "--once"])
            .args(&self.flags)
            .current_dir(self.h.root())
            .env_remove("CATRUST_EXPECTED_SHA256")
            .env_remove("CATRUST_FAILPOINTS");
        cmd
    }

    fn apply(&self) -> Output {
        run(&mut self.apply_cmd())
    }

    fn apply_with(&self, failpoints: &str) -> Output {
        run(self.apply_cmd().env("CATRUST_FAILPOINTS", failpoints))
    }

    #[track_caller]
    fn assert_converged(&self, to: &(Files, String), step: &str) {
        if let Err(e) = check_debian_node(&self.h, &to.0, &self.foreign_fp) {
            panic!("{step}: {e}");
        }
        for (p, b) in &self.foreign {
            assert_eq!(&self.h.read(p), b, "{step}: the foreign file {p} changed");
        }
        let st = status(self.h.root(), Some(&self.vol.dir));
        assert_eq!(st["ready"], true, "{step}: {st}");
        assert_eq!(st["installed"].as_str(), Some(to.1.as_str()), "{step}");
        // The registry folder holds the CA of `to` and no other certificate.
        let dir = self.h.path(&format!("etc/containerd/certs.d/{REGISTRY}"));
        let want: Vec<&Vec<u8>> =
            to.0.iter()
                .filter(|(k, _)| k.ends_with(".crt"))
                .map(|(_, v)| v)
                .collect();
        let mut crts = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.file_name().to_string_lossy().ends_with(".crt") {
                crts.push(std::fs::read(e.path()).unwrap());
            }
        }
        assert_eq!(
            crts.len(),
            want.len(),
            "{step}: registry CAs in {}",
            dir.display()
        );
        assert!(
            crts.iter().all(|c| want.contains(&c)),
            "{step}: a stale registry CA"
        );
    }

    fn restarts(&self) -> usize {
        self.h.containerd_restarts()
    }

    /// The root without the agent's record and the test's restart log. Also without the
    /// hash links `openssl rehash` sometimes makes to `ca-certificates.crt` itself (the
    /// bundle file's first certificate, a duplicate): whether one exists depends on the
    /// order of a run (`--fresh` or not), not on what the node trusts.
    fn snap(&self) -> BTreeMap<String, Node> {
        let mut s = self.h.node_snapshot();
        s.retain(|k, v| {
            !(k.starts_with("etc/ssl/certs/")
                && *v == Node::Link(PathBuf::from("ca-certificates.crt")))
        });
        s
    }
}

/// Installs A, then crashes (`abort`) at `failpoint` while rotating to B, then runs the
/// agent again without the failpoint.
fn crash_then_restart(failpoint: &str) {
    let f = fixture();
    f.vol.write(&f.a.0);
    assert_ok(&f.apply(), "install A");
    f.assert_converged(&f.a, "A installed");
    let restarts_a = f.restarts();

    f.vol.write(&f.b.0);
    let out = f.apply_with(&format!("{failpoint}=abort"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(6),
        "the agent did not abort at {failpoint} ({}): {stderr}",
        out.status
    );
    assert!(
        stderr.contains(&format!("failpoint {failpoint}")),
        "{stderr}"
    );
    for (p, b) in &f.foreign {
        assert_eq!(&f.h.read(p), b, "the crash changed the foreign file {p}");
    }

    assert_ok(&f.apply(), "apply after the crash");
    f.assert_converged(&f.b, &format!("after a crash at {failpoint}"));
    assert!(
        f.restarts() > restarts_a,
        "containerd was not restarted after the store changed (crash at {failpoint})"
    );
    // And the converged node is stable: a resync changes nothing.
    let before = f.snap();
    assert_ok(&f.apply(), "resync");
    assert_eq!(diff(&before, &f.snap()), Vec::<String>::new());
}

/// Crash after the write-ahead record, before any file: the restarted agent installs B
/// fully, leaves no orphan, keeps foreign files, restarts containerd.
#[test]
fn crash_after_intent_recorded_converges_without_orphans() {
    crash_then_restart("apply.intent_recorded");
}

/// Crash with an anchor's temp file written but not renamed: the restarted agent
/// removes the orphan temp file and converges to B; foreign files are untouched.
#[test]
fn crash_after_temp_file_written_leaves_no_orphan_temp_file() {
    crash_then_restart("apply.tmp_written");
}

/// Crash right after the first rename (old and new anchor side by side, no refresh):
/// the record already lists the new file, so the restarted agent finishes the rotation,
/// removes the old anchor and the old registry CA, and refreshes.
#[test]
fn crash_after_rename_finishes_the_rotation() {
    crash_then_restart("apply.renamed");
}

/// Crash after the refresh, before the final record: the restarted agent finds the
/// files right, records B, and still restarts containerd (the restart was owed in the
/// write-ahead record).
#[test]
fn crash_after_refresh_still_restarts_containerd() {
    crash_then_restart("apply.refreshed");
}

/// Crash after B is recorded, before the containerd restart: the restart is still owed
/// and done by the restarted agent.
#[test]
fn crash_after_state_recorded_still_restarts_containerd() {
    crash_then_restart("apply.recorded");
}

/// Crash right after the containerd restart (the record still owes one): the restarted
/// agent restarts containerd again (at least once, never zero times) and is ready.
#[test]
fn crash_after_containerd_restart_converges() {
    crash_then_restart("apply.containerd_restarted");
}

/// A fake `update-ca-certificates` first on PATH running `body`.
fn fake_refresh(body: &str) -> (tempfile::TempDir, String) {
    let fake = tempfile::tempdir().unwrap();
    let tool = fake.path().join("update-ca-certificates");
    std::fs::write(&tool, format!("#!/bin/sh\n{body}\n")).unwrap();
    run(Command::new("chmod").arg("755").arg(&tool));
    let path = format!(
        "{}:{}",
        fake.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (fake, path)
}

/// A refresh that fails, then one that hangs past `--command-timeout`: each time the
/// node keeps exactly its old trust (every file restored) and is not ready; once the
/// refresh works again the next apply converges to B.
#[test]
fn failed_or_hung_refresh_keeps_the_old_trust_then_converges() {
    let f = fixture();
    f.vol.write(&f.a.0);
    assert_ok(&f.apply(), "install A");
    let before = f.snap();
    f.vol.write(&f.b.0);

    let (_fail, path) = fake_refresh("echo 'E: disk on fire' >&2; exit 1");
    let out = run(f.apply_cmd().env("PATH", &path));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        diff(&before, &f.snap()),
        Vec::<String>::new(),
        "not rolled back"
    );
    let st = status(f.h.root(), None);
    assert_eq!(st["ready"], false);
    assert!(
        st["reason"].as_str().unwrap_or("").contains("disk on fire"),
        "{st}"
    );

    let (_hang, path) = fake_refresh("exec sleep 30");
    let t0 = Instant::now();
    let out = run(f
        .apply_cmd()
        .args(["--command-timeout", "1s"])
        .env("PATH", &path));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "the deadline was not kept"
    );
    assert_eq!(
        diff(&before, &f.snap()),
        Vec::<String>::new(),
        "not rolled back"
    );
    assert_eq!(
        status(f.h.root(), None)["installed"].as_str(),
        Some(f.a.1.as_str())
    );

    assert_ok(&f.apply(), "apply with a working refresh");
    f.assert_converged(&f.b, "after the refresh was fixed");
}

/// A corrupt record: the agent refuses to guess what it installed, changes nothing on
/// the host (beyond its status) and is not ready. A deleted record: the agent adopts
/// files that are byte-identical to the bundle it is asked to install (converges), but
/// refuses to remove or overwrite anything it cannot prove it wrote.
#[test]
fn corrupt_or_lost_record_never_deletes_what_it_cannot_prove_it_wrote() {
    let f = fixture();
    f.vol.write(&f.a.0);
    assert_ok(&f.apply(), "install A");
    let state = f.h.path("var/lib/catrust/state.json");

    // Corrupt: truncated JSON.
    let good = std::fs::read(&state).unwrap();
    std::fs::write(&state, &good[..good.len() / 2]).unwrap();
    f.vol.write(&f.b.0);
    let before = f.snap();
    let out = f.apply();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        diff(&before, &f.snap()),
        Vec::<String>::new(),
        "a corrupt record led to changes"
    );
    let st = status(f.h.root(), None);
    assert_eq!(st["ready"], false);
    assert!(
        st["reason"].as_str().unwrap_or("").contains("corrupt"),
        "{st}"
    );

    // Deleted, with a different bundle in the volume: refused, nothing changes.
    std::fs::remove_file(&state).unwrap();
    let out = f.apply();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        diff(&before, &f.snap()),
        Vec::<String>::new(),
        "a lost record led to changes"
    );
    assert!(
        status(f.h.root(), None)["reason"]
            .as_str()
            .unwrap_or("")
            .contains("did not write"),
        "the refusal does not name the unknown file"
    );

    // Deleted, with the installed bundle in the volume: adopted, converged.
    f.vol.write(&f.a.0);
    assert_ok(&f.apply(), "re-apply A without a record");
    f.assert_converged(&f.a, "A adopted after the record was lost");
}

/// A read-only bind mount over `/work`-style paths, undone on drop.
struct RoMount(PathBuf);

impl RoMount {
    fn new(dir: &Path) -> Self {
        let out = run(Command::new("mount")
            .args(["--bind", "-o", "ro"])
            .arg(dir)
            .arg(dir));
        assert!(
            out.status.success(),
            "mount --bind -o ro needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        RoMount(dir.to_path_buf())
    }
}

impl Drop for RoMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The agent's anchors folder on a read-only file system (a read-only bind mount, which
/// stops root too): the write fails, every file is restored, the node keeps its old
/// trust and is not ready; writable again, the next apply converges.
#[test]
fn read_only_anchors_folder_keeps_the_old_trust_then_converges() {
    let f = fixture();
    f.vol.write(&f.a.0);
    assert_ok(&f.apply(), "install A");
    let before = f.snap();
    f.vol.write(&f.b.0);
    {
        let _ro = RoMount::new(&f.h.path(DEBIAN_AGENT_ANCHORS));
        let out = f.apply();
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            diff(&before, &f.snap()),
            Vec::<String>::new(),
            "not rolled back"
        );
        let st = status(f.h.root(), None);
        assert_eq!(st["ready"], false);
        assert!(
            st["reason"].as_str().unwrap_or("").contains("Read-only"),
            "{st}"
        );
        assert_eq!(st["installed"].as_str(), Some(f.a.1.as_str()));
    }
    assert_ok(&f.apply(), "apply on a writable folder");
    f.assert_converged(&f.b, "after the folder became writable");
}

/// kubelet swaps `..data` while the agent is between two files of one version: the
/// agent never installs a mix of two versions; it rereads and installs the new one.
#[test]
fn bundle_swapped_mid_read_installs_one_whole_version() {
    let f = fixture();
    f.vol.write(&f.a.0);
    let (mut child, mut stderr) = spawn_paused_at(&mut f.apply_cmd(), "bundle.read_mid", 700);
    // Paused after the first file of A: publish B (A's folder is removed, as kubelet does).
    f.vol.write(&f.b.0);
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let status_code = child.wait().unwrap();
    assert!(status_code.success(), "{rest}");
    f.assert_converged(&f.b, "after a swap mid-read");
}

/// A flapping bundle (A → B → A … within milliseconds) under `run`: the agent ends on
/// the last version published, fully installed, ready, without orphans; it never stays
/// on an intermediate one.
#[test]
fn flapping_bundle_ends_on_the_last_version() {
    let f = fixture();
    f.vol.write(&f.a.0);
    let agent = RunningAgent::start(&f.flags, &["--resync", "1h"]);
    agent.wait_readyz(200, Duration::from_secs(20));
    for i in 0..6 {
        f.vol.write(if i % 2 == 0 { &f.b.0 } else { &f.a.0 });
        std::thread::sleep(Duration::from_millis(5 * i));
    }
    // Last published: A (i = 5).
    // A is also an intermediate version, so "installed A" alone proves nothing: wait
    // until the node holds A on disk and is ready, then require that it stays so.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = status(f.h.root(), Some(&f.vol.dir));
        let on_disk = check_debian_node(&f.h, &f.a.0, &f.foreign_fp);
        if st["ready"] == true
            && st["installed"].as_str() == Some(f.a.1.as_str())
            && on_disk.is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "did not settle on A: {st} {on_disk:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    f.assert_converged(&f.a, "1 s after settling on A");
    assert_eq!(agent.get("/readyz").map(|r| r.0), Some(200));
}
