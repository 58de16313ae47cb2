//! End to end on a real containerd: "x509: certificate signed by unknown authority",
//! reproduced and fixed from a commit.
//!
//! Each test owns a throwaway Debian host root, Debian's `docker-registry` serving TLS
//! on a free 127.0.0.1 port with a tiny OCI image (built with `umoci`, pushed with
//! `skopeo`), containerd 1.6 with its CRI plugin as a supervised child (its
//! `SSL_CERT_FILE` is the host root's generated bundle, `config_path` the host root's
//! `etc/containerd/certs.d`), and a real git repository. Every step commits trust.yaml,
//! runs the real `catrust build --rev HEAD`, lays the bundle Secret out as kubelet does,
//! runs the real `catrust-agent apply --once --host-exec direct` with the DaemonSet's
//! `catrust.dev/bundle-sha256`, and pulls through CRI `ImageService/PullImage` over
//! containerd's socket, as kubelet does. containerd restarts go through the agent's
//! host-exec layer (`--containerd-restart-command`) to the test's supervisor.
//!
//! Run with `-- --nocapture --test-threads=1` to watch the story step by step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use catrust_tests::agent::fingerprint;
use catrust_tests::containerd::{
    node_hosts_toml, push_tiny_image, tail, test_trust_yaml, Auth, Containerd, PullResult,
    Registry, UNKNOWN_AUTHORITY,
};
use catrust_tests::gitrepo::{now, GitRepo, DAY, HOUR};
use catrust_tests::host::TestHost;
use catrust_tests::kubelet::SecretVolume;
use catrust_tests::pki::{make_ca, make_server_cert, Issued};
use catrust_tests::{bin, isolate_tls_env, require_tool, run};

const IMAGE_REPO: &str = "catrust/demo:1";

fn trust_yaml(auths: &[Auth], distrust: &[(String, &str)], containerd: &str) -> String {
    test_trust_yaml(
        auths,
        distrust,
        &[
            ("image", "registry.example/catrust-agent:0.1.0"),
            ("containerd", containerd),
        ],
    )
}

/// What `catrust build` rendered for the agent: the bundle Secret's data (decoded) and
/// the DaemonSet's `catrust.dev/bundle-sha256`.
struct Rendered {
    secret: BTreeMap<String, Vec<u8>>,
    sha256: String,
}

#[derive(serde::Deserialize)]
struct SecretYaml {
    data: BTreeMap<String, String>,
}

/// A node and everything around it.
struct World {
    // Children first: they stop before their folders are removed.
    containerd: Containerd,
    registry: Registry,
    host: TestHost,
    repo: GitRepo,
    vol: SecretVolume,
    tmp: tempfile::TempDir,
    name: &'static str,
    pki: PathBuf,
}

impl World {
    /// A registry serving `leaf` with the image pushed (trusting `ca` for the push),
    /// a Debian host root whose store holds one unrelated distribution CA, containerd.
    fn new(name: &'static str, leaf: &Issued, ca: &Issued, pki: &Path) -> World {
        require_tool("update-ca-certificates", "ca-certificates");
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let host = TestHost::debian();
        let distro = make_ca(t, "distribution-root", 365);
        host.add_system_ca("mozilla/Distribution_Root.crt", &distro.pem());
        host.refresh();
        std::fs::create_dir_all(t.join("registry")).unwrap();
        let registry = Registry::start(&t.join("registry"), leaf);
        push_tiny_image(t, &registry, IMAGE_REPO, ca);
        std::fs::create_dir_all(t.join("containerd")).unwrap();
        // The node's own registry configuration (not the agent's): containerd 1.6 speaks
        // plain HTTP to a 127.0.0.1 registry unless hosts.toml names an https server.
        host.write(
            &format!("etc/containerd/certs.d/{}/hosts.toml", registry.host()),
            node_hosts_toml(&registry.host()),
        );
        let containerd = Containerd::start(&t.join("containerd"), host.root());
        let vol = SecretVolume::new(&t.join("kubelet/volumes/bundle"));
        let w = World {
            containerd,
            registry,
            host,
            repo: GitRepo::init(),
            vol,
            tmp,
            name,
            pki: pki.to_path_buf(),
        };
        w.step(&format!(
            "registry https://{} serves {}, containerd pid {} (socket {})",
            w.registry.host(),
            w.image(),
            w.containerd.pid(),
            w.containerd.sock.display()
        ));
        w
    }

    fn step(&self, what: &str) {
        eprintln!("[{}] {what}", self.name);
    }

    fn image(&self) -> String {
        format!("{}/{IMAGE_REPO}", self.registry.host())
    }

    /// CRI PullImage of the test image.
    fn pull(&self) -> PullResult {
        self.containerd.pull(&self.image())
    }

    #[track_caller]
    fn pull_fails_unknown_authority(&self) {
        match self.pull() {
            Ok(r) => panic!(
                "[{}] the pull succeeded ({r}); expected {UNKNOWN_AUTHORITY}",
                self.name
            ),
            Err(e) => {
                assert!(
                    e.contains(UNKNOWN_AUTHORITY),
                    "[{}] unexpected error: {e}\ncontainerd log:\n{}",
                    self.name,
                    self.containerd.log()
                );
                self.step(&format!("  PullImage failed: …{}", tail(&e)));
            }
        }
    }

    #[track_caller]
    fn pull_succeeds(&self) {
        match self.pull() {
            Ok(r) => self.step(&format!("  PullImage ok: {r}")),
            Err(e) => panic!(
                "[{}] the pull failed: {e}\ncontainerd log:\n{}",
                self.name,
                self.containerd.log()
            ),
        }
    }

    /// Copies a CA into the repository as `certs/<name>.pem`.
    fn add_cert(&self, name: &str, ca: &Issued) -> String {
        let rel = format!("certs/{name}.pem");
        self.repo.write(&rel, ca.pem());
        rel
    }

    /// Writes trust.yaml and commits everything at `when`.
    fn commit(&self, yaml: &str, message: &str, when: i64) {
        self.repo.write("trust.yaml", yaml);
        let id = self.repo.commit_all(message, when);
        self.step(&format!(
            "git commit {} \"{message}\" ({})",
            &id.to_string()[..10],
            catrust_tests::gitrepo::utc(when)
        ));
    }

    /// `catrust build -f trust.yaml --rev <rev> --target agent --out <dir>`.
    fn catrust_build(&self, rev: &str, out: &Path) -> Output {
        run(Command::new(bin("catrust"))
            .args([
                "build",
                "-f",
                "trust.yaml",
                "--rev",
                rev,
                "--target",
                "agent",
                "--out",
            ])
            .arg(out)
            .current_dir(self.repo.path())
            .env("NO_COLOR", "1"))
    }

    /// Builds HEAD (CT401 judged at HEAD's commit time) and reads the rendered bundle.
    fn build(&self) -> Rendered {
        let out = self.tmp.path().join("rendered");
        let o = self.catrust_build("HEAD", &out);
        assert!(
            o.status.success(),
            "[{}] catrust build failed: {}",
            self.name,
            String::from_utf8_lossy(&o.stderr)
        );
        let secret: SecretYaml =
            serde_saphyr::from_slice(&std::fs::read(out.join("agent/bundle-secret.yaml")).unwrap())
                .unwrap();
        let secret = secret
            .data
            .into_iter()
            .map(|(k, v)| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .expect("Secret data is base64");
                (k, bytes)
            })
            .collect();
        let ds = std::fs::read_to_string(out.join("agent/daemonset.yaml")).unwrap();
        let sha256 = ds
            .lines()
            .find_map(|l| l.trim().strip_prefix("catrust.dev/bundle-sha256: "))
            .expect("the DaemonSet announces its bundle hash")
            .trim_matches('"')
            .to_string();
        self.step(&format!("catrust build: bundle {}", &sha256[..12]));
        Rendered { secret, sha256 }
    }

    /// kubelet publishes the Secret volume; `catrust-agent apply --once` on the node.
    fn apply(&self, r: &Rendered) -> Output {
        self.vol.write(&r.secret);
        let mut cmd = Command::new(bin("catrust-agent"));
        isolate_tls_env(&mut cmd)
            .args(["apply", "--once", "--host-exec", "direct", "--bundle-dir"])
            .arg(&self.vol.dir)
            .arg("--host-root")
            .arg(self.host.root())
            .args(["--expected-sha256", &r.sha256])
            .arg("--containerd-restart-command")
            .arg(self.containerd.restart_command())
            .env_remove("CATRUST_EXPECTED_SHA256");
        run(&mut cmd)
    }

    #[track_caller]
    fn apply_ok(&self, r: &Rendered) {
        let before = self.containerd.restarts();
        let o = self.apply(r);
        assert!(
            o.status.success(),
            "[{}] catrust-agent apply failed ({}): {}",
            self.name,
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        let restarted = self.containerd.restarts() - before;
        self.step(&format!(
            "catrust-agent apply --once: installed{}",
            if restarted > 0 {
                format!(", restarted containerd (pid {})", self.containerd.pid())
            } else {
                ", no containerd restart".into()
            }
        ));
    }

    /// Does the host root's generated bundle verify `leaf` (`openssl verify`)?
    fn node_store_trusts(&self, leaf: &Issued) -> bool {
        let mut cmd = Command::new(require_tool("openssl", "openssl"));
        isolate_tls_env(&mut cmd)
            .args(["verify", "-CAfile"])
            .arg(self.host.generated_bundle())
            .arg(&leaf.cert);
        run(&mut cmd).status.success()
    }

    fn leaf(&self, name: &str, ca: &Issued) -> Issued {
        make_server_cert(&self.pki, name, ca)
    }
}

/// A registry CA through `certs.d/<host>/hosts.toml` (`registries-only`): no restart.
/// Then the emergency path: the CA moved to `distrust`; the agent restarts containerd
/// (a running one keeps the roots it loaded) and pulls fail again.
#[test]
fn registry_ca_needs_no_restart_and_distrust_revokes_it() {
    let pki = tempfile::tempdir().unwrap();
    let p = pki.path();
    let corp = make_ca(p, "corp-registry-ca", 365);
    let proxy = make_ca(p, "corp-proxy-ca", 365);
    let leaf = make_server_cert(p, "registry", &corp);
    let w = World::new("registries-only", &leaf, &corp, p);
    let host = w.registry.host();

    w.step("1. before any CA: containerd does not trust the registry");
    w.pull_fails_unknown_authority();

    w.step("2. commit the registry CA with `containerd: registries-only`");
    let corp_file = w.add_cert("corp-registry-ca", &corp);
    let proxy_file = w.add_cert("corp-proxy-ca", &proxy);
    let proxy_auth = Auth {
        name: "corp-proxy-ca",
        file: &proxy_file,
        registries: &[],
        replaces: None,
    };
    let yaml = trust_yaml(
        &[
            Auth {
                name: "corp-registry-ca",
                file: &corp_file,
                registries: &[&host],
                replaces: None,
            },
            proxy_auth,
        ],
        &[],
        "registries-only",
    );
    w.commit(&yaml, "trust the registry CA", now() - DAY);
    let pid = w.containerd.pid();
    w.apply_ok(&w.build());
    let hosts_toml = w
        .host
        .path(&format!("etc/containerd/certs.d/{host}/hosts.toml"));
    let hosts = std::fs::read_to_string(&hosts_toml).unwrap();
    assert!(hosts.contains("catrust-corp-registry-ca.crt"), "{hosts}");
    assert_eq!(
        w.containerd.pid(),
        pid,
        "registries-only: containerd was restarted"
    );
    assert_eq!(w.containerd.restarts(), 0);
    w.step(&format!(
        "  certs.d/{host}/hosts.toml names the CA; containerd pid {pid} unchanged"
    ));
    w.pull_succeeds();
    assert_eq!(w.containerd.pid(), pid);

    w.step("3. emergency: the registry CA moved to `distrust`");
    let yaml = trust_yaml(
        &[Auth {
            name: "corp-proxy-ca",
            file: &proxy_file,
            registries: &[],
            replaces: None,
        }],
        &[(fingerprint(&corp), "compromised")],
        "registries-only",
    );
    w.repo.remove(&corp_file);
    w.commit(&yaml, "distrust the registry CA (compromised)", now());
    w.apply_ok(&w.build());
    assert_eq!(
        std::fs::read_to_string(&hosts_toml).unwrap(),
        node_hosts_toml(&host),
        "the node's own hosts.toml is restored byte for byte"
    );
    // The CA leaves certs.d and the node's store. (The restart a distrust of a CA the
    // agent installed owes containerd is checked by
    // `distrust_of_an_agent_installed_ca_reaches_a_running_containerd` below.)
    assert!(!w.node_store_trusts(&leaf));
    w.step("  the CA left certs.d and the node's store");
    w.pull_fails_unknown_authority();
}

/// The AKS document's troubleshooting case: the CA is in the node's system store, yet
/// the running containerd (Go loaded its roots at the first TLS handshake) still says
/// unknown authority. With `containerd: none` (what AKS's own node script does) it
/// stays so.
#[test]
fn system_store_alone_does_not_reach_a_running_containerd() {
    let pki = tempfile::tempdir().unwrap();
    let p = pki.path();
    let corp = make_ca(p, "corp-root", 365);
    let leaf = make_server_cert(p, "registry", &corp);
    let w = World::new("policy-none", &leaf, &corp, p);

    w.step("1. a first pull fails: containerd's Go runtime loads its system roots");
    w.pull_fails_unknown_authority();
    let pid = w.containerd.pid();

    w.step("2. commit the CA for the system store, `containerd: none`");
    let file = w.add_cert("corp-root", &corp);
    let auth = [Auth {
        name: "corp-root",
        file: &file,
        registries: &[],
        replaces: None,
    }];
    w.commit(&trust_yaml(&auth, &[], "none"), "trust corp-root", now());
    w.apply_ok(&w.build());
    assert!(
        w.node_store_trusts(&leaf),
        "the node's store must hold the CA"
    );
    w.step("  the node's ca-certificates.crt now verifies the registry (openssl verify)");
    assert_eq!(w.containerd.pid(), pid);
    assert_eq!(w.containerd.restarts(), 0);
    w.step(&format!("  containerd pid {pid} unchanged, so:"));
    w.pull_fails_unknown_authority();
}

/// The fix: under `containerd: restart` the agent restarts containerd through the
/// host-exec layer after the store changed. The restart is first refused (as a failing
/// `systemctl restart` would be): the CA is in the store, the still-running containerd
/// fails the pull, and the agent records the restart as owed; on its next apply the
/// agent restarts containerd and the pull succeeds.
#[test]
fn system_store_change_restarts_containerd_through_the_host_exec_layer() {
    let pki = tempfile::tempdir().unwrap();
    let p = pki.path();
    let corp = make_ca(p, "corp-root", 365);
    let leaf = make_server_cert(p, "registry", &corp);
    let w = World::new("policy-restart", &leaf, &corp, p);

    w.step("1. a first pull fails: containerd's Go runtime loads its system roots");
    w.pull_fails_unknown_authority();
    let pid = w.containerd.pid();

    w.step("2. commit the CA for the system store, `containerd: restart`; the restart is refused");
    let file = w.add_cert("corp-root", &corp);
    let auth = [Auth {
        name: "corp-root",
        file: &file,
        registries: &[],
        replaces: None,
    }];
    w.commit(&trust_yaml(&auth, &[], "restart"), "trust corp-root", now());
    let rendered = w.build();
    w.containerd.refuse_restarts(true);
    let o = w.apply(&rendered);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "the refused restart must fail the apply: {err}"
    );
    assert!(err.contains("restarting containerd failed"), "{err}");
    w.step("  catrust-agent apply: trust installed, restarting containerd failed (owed)");
    assert!(w.node_store_trusts(&leaf));
    assert_eq!(w.containerd.pid(), pid);
    w.step(&format!(
        "  the store has the CA; containerd pid {pid} still runs with its old roots:"
    ));
    w.pull_fails_unknown_authority();

    w.step("3. restarts allowed again: the agent's next apply restarts containerd");
    w.containerd.refuse_restarts(false);
    w.apply_ok(&rendered);
    assert_eq!(w.containerd.restarts(), 1);
    assert_ne!(w.containerd.pid(), pid, "containerd was not restarted");
    w.pull_succeeds();
}

/// Rotation: a new CA and a new registry certificate. The successor is committed with
/// `replaces`; removing the old CA too soon is CT401 (nothing is built); after
/// minOverlap the removal builds. Pulls work at every step, with the registry's
/// certificate swapped between steps as an operator would.
#[test]
fn rotation_keeps_pulls_working() {
    let pki = tempfile::tempdir().unwrap();
    let p = pki.path();
    let old = make_ca(p, "corp-root-2025", 365);
    let new = make_ca(p, "corp-root-2026", 365);
    let leaf_old = make_server_cert(p, "registry-2025", &old);
    let mut w = World::new("rotation", &leaf_old, &old, p);
    let leaf_new = w.leaf("registry-2026", &new);
    let t0 = now() - 10 * DAY;

    w.step("1. commit corp-root-2025 (`containerd: restart`)");
    let old_file = w.add_cert("corp-root-2025", &old);
    let old_auth = || Auth {
        name: "corp-root-2025",
        file: &old_file,
        registries: &[],
        replaces: None,
    };
    w.commit(
        &trust_yaml(&[old_auth()], &[], "restart"),
        "trust corp-root-2025",
        t0,
    );
    w.apply_ok(&w.build());
    w.pull_succeeds();

    w.step("2. commit corp-root-2026 replacing corp-root-2025 (both trusted)");
    let new_file = w.add_cert("corp-root-2026", &new);
    let new_auth = || Auth {
        name: "corp-root-2026",
        file: &new_file,
        registries: &[],
        replaces: Some("corp-root-2025"),
    };
    let t1 = t0 + DAY;
    w.commit(
        &trust_yaml(&[old_auth(), new_auth()], &[], "restart"),
        "add corp-root-2026 (replaces corp-root-2025)",
        t1,
    );
    let c1 = w.repo.head().unwrap();
    let pid = w.containerd.pid();
    w.apply_ok(&w.build());
    assert_ne!(w.containerd.pid(), pid, "the store changed: restart");
    w.pull_succeeds();
    w.step("  the operator swaps the registry to a corp-root-2026 certificate");
    w.registry.swap_certificate(&leaf_new);
    w.pull_succeeds();

    w.step("3. removing corp-root-2025 an hour after its successor: CT401, nothing built");
    w.repo.remove(&old_file);
    w.repo
        .write("trust.yaml", trust_yaml(&[new_auth()], &[], "restart"));
    w.repo.stage_all();
    let too_soon =
        w.repo
            .commit_with_parents("remove corp-root-2025 (too soon)", t1 + HOUR, &[c1], None);
    let out = w.tmp.path().join("rejected");
    let o = w.catrust_build(&too_soon.to_string(), &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("CT401"), "{err}");
    assert!(!out.exists());
    w.step("  catrust build --rev <that commit>: exit 1, CT401");

    w.step("4. removing corp-root-2025 after minOverlap (72h)");
    w.repo
        .commit_index("remove corp-root-2025 after the overlap", t1 + 4 * DAY);
    w.step(&format!(
        "git commit \"remove corp-root-2025 after the overlap\" ({})",
        catrust_tests::gitrepo::utc(t1 + 4 * DAY)
    ));
    let pid = w.containerd.pid();
    w.apply_ok(&w.build());
    assert_ne!(w.containerd.pid(), pid, "the store changed: restart");
    assert!(w.node_store_trusts(&leaf_new) && !w.node_store_trusts(&leaf_old));
    w.pull_succeeds();
    w.step("  a registry still on a corp-root-2025 certificate is no longer trusted:");
    w.registry.swap_certificate(&leaf_old);
    w.pull_fails_unknown_authority();
}

/// docs/contract.md §5: "A distrust restarts containerd under `registries-only` too (a running
/// containerd keeps trusting the roots it loaded)" — also when the distrusted CA is one
/// the agent had installed itself and now removes. A containerd that loaded the system
/// roots while that CA was in the store (here: restarted, as after a reboot) must be
/// restarted to stop trusting it. (Regression test: the agent once counted only the
/// distribution's CAs as newly distrusted.)
#[test]
fn distrust_of_an_agent_installed_ca_reaches_a_running_containerd() {
    let pki = tempfile::tempdir().unwrap();
    let p = pki.path();
    let corp = make_ca(p, "corp-registry-ca", 365);
    let proxy = make_ca(p, "corp-proxy-ca", 365);
    let leaf = make_server_cert(p, "registry", &corp);
    let w = World::new("distrust-own-ca", &leaf, &corp, p);
    let corp_file = w.add_cert("corp-registry-ca", &corp);
    let proxy_file = w.add_cert("corp-proxy-ca", &proxy);
    let proxy_auth = || Auth {
        name: "corp-proxy-ca",
        file: &proxy_file,
        registries: &[],
        replaces: None,
    };
    w.step("1. the registry CA, `registries-only`; containerd restarts later (a reboot)");
    let yaml = trust_yaml(
        &[
            Auth {
                name: "corp-registry-ca",
                file: &corp_file,
                registries: &[],
                replaces: None,
            },
            proxy_auth(),
        ],
        &[],
        "registries-only",
    );
    w.commit(&yaml, "trust the registry CA", now() - DAY);
    w.apply_ok(&w.build());
    let o = run(Command::new("sh").args(["-c", &w.containerd.restart_command()]));
    assert!(o.status.success());
    w.pull_succeeds();

    w.step("2. emergency: the registry CA moved to `distrust`");
    w.repo.remove(&corp_file);
    let yaml = trust_yaml(
        &[proxy_auth()],
        &[(fingerprint(&corp), "compromised")],
        "registries-only",
    );
    w.commit(&yaml, "distrust the registry CA (compromised)", now());
    let pid = w.containerd.pid();
    w.apply_ok(&w.build());
    assert!(!w.node_store_trusts(&leaf));
    // Today: the pull still succeeds with the distrusted CA (containerd pid unchanged).
    w.pull_fails_unknown_authority();
    assert_ne!(w.containerd.pid(), pid);
}

/// The demo script tells the same story to a person; it must stay valid shell.
#[test]
fn the_demo_script_passes_shellcheck() {
    let script = catrust_tests::workspace_root().join("examples/containerd-demo/run.sh");
    let o = run(Command::new(require_tool("shellcheck", "shellcheck")).arg(&script));
    assert!(
        o.status.success(),
        "shellcheck: {}",
        String::from_utf8_lossy(&o.stdout)
    );
}
