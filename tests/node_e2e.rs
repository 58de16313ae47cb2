//! The agent on a real node, run as kubelet runs the rendered DaemonSet.
//!
//! One node per test process (`tests/support/nodebox.rs`): Debian bookworm booted with
//! `systemd-nspawn`, systemd as PID 1, containerd 1.6 and runc as its units. The agent
//! image (busybox + the agent binary, `tests/support/image.rs`) and a local pause image
//! are imported into the node's containerd. Every scenario commits trust.yaml to a real
//! git repository, runs the real `catrust build`, and starts the rendered DaemonSet's
//! pod template through CRI (`tests/support/podspec.rs`: nothing of the pod spec is
//! written here). TLS registries (Debian's `docker-registry`) run on this machine's
//! 127.0.0.1, which the node shares, and are pulled from through CRI `PullImage`.
//!
//! The DaemonSet fixes the agent's port and `hostNetwork` puts it in this machine's
//! network namespace, so scenarios run one at a time on the one node (a mutex), each
//! starting from the node's pristine trust (restored from the cached root) and a fresh
//! containerd. The renderer emits one host-exec mode, nsenter (the DaemonSet's args
//! say `--host-exec=nsenter`); every scenario runs on it.
//!
//! Run with `-- --nocapture` to watch the story and the measurements.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use catrust_tests::agent::fingerprint;
use catrust_tests::containerd::{
    node_hosts_toml, push_tiny_image, tail, test_trust_yaml, Auth, Registry, UNKNOWN_AUTHORITY,
};
use catrust_tests::gitrepo::{now, GitRepo, DAY};
use catrust_tests::node::{orphan_temps, pem_fingerprints, DEBIAN_AGENT_ANCHORS};
use catrust_tests::nodebox::{cached_root, Node, NODE_PACKAGES, PAUSE_IMAGE};
use catrust_tests::pki::{make_ca, make_server_cert, Issued};
use catrust_tests::podspec::{rendered, wait_ready, Kubelet, Pod, PodPlan, Secrets};
use catrust_tests::{bin, image, run};
use k8s_cri::v1 as cri;

/// The agent image's name (trust.yaml's `targets.agent.image`; imported, never pulled).
const AGENT_IMAGE: &str = "catrust.test/catrust-agent:node-e2e";
const IMAGE_REPO: &str = "catrust/demo:1";
/// The container of the rendered DaemonSet.
const AGENT: &str = "agent";
/// How long a pod may take to become ready.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// The node, booted once per test process; a scenario holds the lock for its run.
fn shared_node() -> MutexGuard<'static, Node> {
    static NODE: OnceLock<Mutex<Node>> = OnceLock::new();
    NODE.get_or_init(|| {
        let node = Node::boot(NODE_PACKAGES, |_| {});
        let work = tempfile::tempdir().unwrap();
        let t = Instant::now();
        node.import_image(&image::pause_image(work.path(), PAUSE_IMAGE));
        node.import_image(&image::agent_image(
            work.path(),
            &bin("catrust-agent"),
            AGENT_IMAGE,
        ));
        eprintln!(
            "node_e2e: images built and imported in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        Mutex::new(node)
    })
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The node's trust paths a scenario may change; restored from the pristine root.
const TRUST_PATHS: &[&str] = &[
    "etc/ssl/certs",
    "etc/ca-certificates.conf",
    "etc/ca-certificates/update.d",
    "usr/local/share/ca-certificates",
    "var/lib/catrust",
    "etc/containerd/certs.d",
];

/// What `catrust build` rendered: the DaemonSet's pod plan, the Secrets, the hash.
struct Build {
    plan: PodPlan,
    secrets: Secrets,
    sha256: String,
}

/// One scenario on the shared node.
struct World<'n> {
    kubelet: Kubelet<'n>,
    node: &'n Node,
    repo: GitRepo,
    tmp: tempfile::TempDir,
    name: String,
    builds: u32,
}

impl<'n> World<'n> {
    /// Resets the node (no pods, pristine trust, a fresh containerd) for scenario `name`.
    fn new(node: &'n Node, name: &str) -> World<'n> {
        Kubelet::new(node).delete_all_pods();
        let pristine = cached_root(NODE_PACKAGES);
        for p in TRUST_PATHS {
            let _ = node.sh(&format!("umount -R /{p} 2>/dev/null; rm -rf /{p}"));
            let from = pristine.join(p);
            if from.exists() {
                let o = run(Command::new("cp").arg("-a").arg(&from).arg(node.path(p)));
                assert!(o.status.success(), "restore {p}");
            }
        }
        // reset-failed: the scenarios restart containerd more often than systemd's
        // default start limit (5 in 10 s) allows.
        node.sh_ok(
            "mkdir -p /etc/containerd/certs.d && systemctl reset-failed containerd; systemctl restart containerd",
        );
        let kubelet = Kubelet::new(node);
        let w = World {
            kubelet,
            node,
            repo: GitRepo::init(),
            tmp: tempfile::tempdir().unwrap(),
            name: name.to_string(),
            builds: 0,
        };
        w.step(&format!(
            "node reset: pristine trust, containerd pid {}",
            node.containerd_main_pid()
        ));
        w
    }

    fn step(&self, what: &str) {
        eprintln!("[{}] {what}", self.name);
    }

    fn pki(&self) -> PathBuf {
        let p = self.tmp.path().join("pki");
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn ca(&self, name: &str) -> Issued {
        make_ca(&self.pki(), name, 365)
    }

    /// A TLS registry on 127.0.0.1 serving a leaf of `ca` with the demo image, and the
    /// node's own `hosts.toml` for it (https).
    fn registry(&self, name: &str, ca: &Issued) -> Registry {
        let leaf = make_server_cert(&self.pki(), &format!("{name}-leaf"), ca);
        let dir = self.tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let r = Registry::start(&dir, &leaf);
        push_tiny_image(&dir, &r, IMAGE_REPO, ca);
        let host = r.host();
        let d = self.node.path(&format!("/etc/containerd/certs.d/{host}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("hosts.toml"), node_hosts_toml(&host)).unwrap();
        r
    }

    fn pull(&mut self, r: &Registry) -> Result<String, String> {
        self.kubelet.cri.pull(&format!("{}/{IMAGE_REPO}", r.host()))
    }

    #[track_caller]
    fn pull_ok(&mut self, r: &Registry) {
        match self.pull(r) {
            Ok(i) => self.step(&format!("  PullImage {} ok: {i}", r.host())),
            Err(e) => panic!(
                "[{}] PullImage {} failed: {e}\ncontainerd:\n{}",
                self.name,
                r.host(),
                self.node.journal("containerd")
            ),
        }
    }

    #[track_caller]
    fn pull_fails(&mut self, r: &Registry) {
        match self.pull(r) {
            Ok(i) => panic!(
                "[{}] PullImage {} succeeded ({i}); expected {UNKNOWN_AUTHORITY}",
                self.name,
                r.host()
            ),
            Err(e) => {
                assert!(e.contains(UNKNOWN_AUTHORITY), "[{}] {e}", self.name);
                self.step(&format!("  PullImage {} failed: …{}", r.host(), tail(&e)));
            }
        }
    }

    fn add_cert(&self, name: &str, ca: &Issued) -> String {
        let rel = format!("certs/{name}.pem");
        self.repo.write(&rel, ca.pem());
        rel
    }

    /// trust.yaml with this scenario's agent settings.
    fn yaml(&self, auths: &[Auth], distrust: &[(String, &str)], containerd: &str) -> String {
        test_trust_yaml(
            auths,
            distrust,
            &[("image", AGENT_IMAGE), ("containerd", containerd)],
        )
    }

    fn commit(&self, yaml: &str, message: &str, when: i64) {
        self.repo.write("trust.yaml", yaml);
        self.repo.commit_all(message, when);
        self.step(&format!("git commit \"{message}\""));
    }

    /// `catrust build --rev HEAD --target agent`, and the one DaemonSet it renders.
    fn build(&mut self) -> Build {
        self.builds += 1;
        let out = self.tmp.path().join(format!("rendered-{}", self.builds));
        let o = run(Command::new(bin("catrust"))
            .args([
                "build",
                "-f",
                "trust.yaml",
                "--rev",
                "HEAD",
                "--target",
                "agent",
            ])
            .arg("--out")
            .arg(&out)
            .current_dir(self.repo.path())
            .env("NO_COLOR", "1"));
        assert!(
            o.status.success(),
            "[{}] catrust build: {}",
            self.name,
            String::from_utf8_lossy(&o.stderr)
        );
        let (daemonsets, secrets) = rendered(&out);
        assert_eq!(daemonsets.len(), 1, "one pool group, one DaemonSet");
        let plan = PodPlan::from_daemonset(&daemonsets[0]);
        let sha256 = plan.annotations["catrust.dev/bundle-sha256"].clone();
        self.step(&format!("catrust build: bundle {}", &sha256[..12]));
        Build {
            plan,
            secrets,
            sha256,
        }
    }

    /// The agent pod of `b`, started as kubelet starts it, and the time from its
    /// container's start to /readyz 200.
    #[track_caller]
    fn deploy(&mut self, b: &Build) -> (Pod, Duration) {
        let pod = self.kubelet.run_pod(&b.plan, &b.secrets);
        let probe = b.plan.containers[0]
            .readiness
            .clone()
            .expect("the agent has a readiness probe");
        match wait_ready(&probe, READY_WITHIN) {
            Ok(at) => {
                let took = at - pod.started(AGENT);
                self.step(&format!(
                    "  pod {} ready: /readyz 200 {} ms after the container started",
                    pod.name,
                    took.as_millis()
                ));
                (pod, took)
            }
            Err(last) => {
                let state = self.kubelet.state(&pod, AGENT);
                panic!(
                    "[{}] the agent pod is not ready within {READY_WITHIN:?} (last /readyz: {last}); container {state:?}\nlog:\n{}",
                    self.name,
                    pod.log(self.node, AGENT)
                )
            }
        }
    }

    /// One CA `name` in trust.yaml under `containerd`, committed and built.
    fn one_ca(&mut self, name: &str, containerd: &str) -> (Issued, Build) {
        let ca = self.ca(name);
        let f = self.add_cert(name, &ca);
        let yaml = self.yaml(
            &[Auth {
                name,
                file: &f,
                registries: &[],
                replaces: None,
            }],
            &[],
            containerd,
        );
        self.commit(&yaml, &format!("trust {name}"), now() - 2 * DAY);
        let b = self.build();
        (ca, b)
    }

    /// `corp-root` for the system store and `corp-registry-ca` for `host` under
    /// `containerd: restart`, committed and built.
    fn system_and_registry_ca(
        &mut self,
        system_ca: &Issued,
        registry_ca: &Issued,
        host: &str,
    ) -> Build {
        let sf = self.add_cert("corp-root", system_ca);
        let rf = self.add_cert("corp-registry-ca", registry_ca);
        let yaml = self.yaml(
            &[
                Auth {
                    name: "corp-root",
                    file: &sf,
                    registries: &[],
                    replaces: None,
                },
                Auth {
                    name: "corp-registry-ca",
                    file: &rf,
                    registries: &[host],
                    replaces: None,
                },
            ],
            &[],
            "restart",
        );
        self.commit(&yaml, "trust corp-root and the registry CA", now() - DAY);
        self.build()
    }

    /// `corp-root-a` installed by a ready pod; then `corp-root-b` added and built (not
    /// deployed): the first build, its pod and the second build.
    fn installed_a_then_built_a_and_b(&mut self, containerd: &str) -> (Build, Pod, Build) {
        let (a, b1) = self.one_ca("corp-root-a", containerd);
        let (pod1, _) = self.deploy(&b1);
        let af = self.add_cert("corp-root-a", &a);
        let bca = self.ca("corp-root-b");
        let bf = self.add_cert("corp-root-b", &bca);
        let yaml = self.yaml(
            &[
                Auth {
                    name: "corp-root-a",
                    file: &af,
                    registries: &[],
                    replaces: None,
                },
                Auth {
                    name: "corp-root-b",
                    file: &bf,
                    registries: &[],
                    replaces: None,
                },
            ],
            &[],
            containerd,
        );
        self.commit(&yaml, "trust corp-root-b too", now() - DAY);
        let b2 = self.build();
        (b1, pod1, b2)
    }

    /// A rolling update on this node: the old pod deleted, the new template's pod started.
    fn rollout(&mut self, old: Pod, b: &Build) -> Pod {
        let old_name = old.name.clone();
        let old_sandbox = old.sandbox_id.clone();
        self.kubelet.delete_pod(old);
        let pods = self.kubelet.cri.pod_ids().unwrap();
        assert!(
            !pods.contains(&old_sandbox),
            "the old pod {old_name} is gone"
        );
        self.step(&format!("  rolling update: pod {old_name} deleted"));
        self.deploy(b).0
    }

    /// A workload pod (hostNetwork, the pause image) and its container's pid.
    fn workload(&mut self) -> (String, String, u32) {
        let uid = format!("workload-{}", std::process::id());
        let host = cri::NamespaceOption {
            network: cri::NamespaceMode::Node as i32,
            ..Default::default()
        };
        let sandbox = cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: "workload".into(),
                uid: uid.clone(),
                namespace: "default".into(),
                attempt: 0,
            }),
            log_directory: format!("/var/log/pods/default_workload_{uid}"),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: format!("/kubepods/besteffort/pod{uid}"),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(host),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let cri = &mut self.kubelet.cri;
        let id = cri
            .run_pod_sandbox(sandbox.clone())
            .expect("workload sandbox");
        let c = cri
            .create_container(
                &id,
                cri::ContainerConfig {
                    metadata: Some(cri::ContainerMetadata {
                        name: "sleep".into(),
                        attempt: 0,
                    }),
                    image: Some(cri::ImageSpec {
                        image: PAUSE_IMAGE.into(),
                        ..Default::default()
                    }),
                    log_path: "sleep/0.log".into(),
                    ..Default::default()
                },
                sandbox,
            )
            .expect("workload container");
        cri.start_container(&c).expect("start the workload");
        let (_, pid) = cri.container_status(&c).unwrap();
        (id, c, pid.expect("the workload has a pid"))
    }

    fn workload_pid(&mut self, container: &str) -> Option<u32> {
        let (s, pid) = self.kubelet.cri.container_status(container).ok()?;
        (s.state == cri::ContainerState::ContainerRunning as i32)
            .then_some(pid)
            .flatten()
    }

    /// Fingerprints of the node's system bundle.
    fn bundle_fingerprints(&self) -> BTreeSet<String> {
        pem_fingerprints(
            &std::fs::read(self.node.path("/etc/ssl/certs/ca-certificates.crt")).unwrap(),
        )
    }

    /// The agent's anchors on the node are exactly the bundle's certificates, the
    /// system bundle holds them, and no temp file is left.
    #[track_caller]
    fn converged(&self, b: &Build) {
        let bundle = &b.secrets[secret_of(&b.plan)];
        // Debian anchors are named `catrust-<key>` (never colliding with another
        // anchor's `/etc/ssl/certs/<basename>.pem` link).
        let want: BTreeMap<String, Vec<u8>> = bundle
            .iter()
            .filter(|(k, _)| k.ends_with(".crt"))
            .map(|(k, v)| (format!("catrust-{k}"), v.clone()))
            .collect();
        let dir = self.node.path(DEBIAN_AGENT_ANCHORS);
        let have: BTreeMap<String, Vec<u8>> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            names(&have),
            names(&want),
            "[{}] the agent's anchors on the node",
            self.name
        );
        assert_eq!(have, want, "[{}] anchor bytes", self.name);
        let system = self.bundle_fingerprints();
        for pem in want.values() {
            for fp in pem_fingerprints(pem) {
                assert!(
                    system.contains(&fp),
                    "[{}] {fp} is not in the node's bundle",
                    self.name
                );
            }
        }
        for p in [
            "/etc",
            "/usr/local/share/ca-certificates",
            "/var/lib/catrust",
        ] {
            let left = orphan_temps(&self.node.path(p));
            assert!(
                left.is_empty(),
                "[{}] temp files under {p}: {left:?}",
                self.name
            );
        }
    }
}

/// The Secret the agent container mounts.
fn secret_of(plan: &PodPlan) -> &str {
    plan.secret_names()
        .into_iter()
        .next()
        .expect("the pod mounts the bundle Secret")
}

/// The rendered `args` are flags the agent in the image accepts: the container keeps
/// running (no usage error) and becomes ready.
#[test]
fn rendered_args_are_accepted_by_the_agent_in_the_image() {
    let node = shared_node();
    let mut w = World::new(&node, "args");
    let (_, b) = w.one_ca("corp-root", "restart");
    w.step(&format!("  args: {:?}", b.plan.containers[0].args()));
    let pod = w.kubelet.run_pod(&b.plan, &b.secrets);
    std::thread::sleep(Duration::from_secs(2));
    let (state, code, _) = w.kubelet.state(&pod, AGENT);
    let log = pod.log(&node, AGENT);
    assert!(
        state == cri::ContainerState::ContainerRunning,
        "[{}] the agent container is {state:?} (exit {code}) 2 s after start; its log:\n{log}",
        w.name
    );
    assert!(!log.contains("Usage:"), "{log}");
    w.kubelet.delete_pod(pod);
}

/// First install of a system CA and a registry CA under `containerd: restart`: pulls
/// fail before and succeed after; containerd restarted (a new MainPID) because the
/// system store changed; a workload container started before keeps its pid.
#[test]
fn first_install_restarts_containerd_as_the_policy_says() {
    let node = shared_node();
    let mut w = World::new(&node, "first-install");
    let system_ca = w.ca("corp-root");
    let registry_ca = w.ca("corp-registry-ca");
    let via_system = w.registry("system-registry", &system_ca);
    let via_certs_d = w.registry("corp-registry", &registry_ca);
    let (_, workload, pid) = w.workload();
    w.step(&format!("workload container running, pid {pid}"));
    w.pull_fails(&via_system);
    w.pull_fails(&via_certs_d);
    let before = w.bundle_fingerprints();

    let host = via_certs_d.host();
    let b = w.system_and_registry_ca(&system_ca, &registry_ca, &host);
    let main_pid = node.containerd_main_pid();
    let (_pod, _) = w.deploy(&b);
    w.converged(&b);
    let after = node.containerd_main_pid();
    assert_ne!(
        after, main_pid,
        "[{}] the system store changed under `restart`: containerd must be restarted",
        w.name
    );
    w.step(&format!(
        "  containerd restarted: MainPID {main_pid} -> {after}"
    ));
    assert!(w.bundle_fingerprints().contains(&fingerprint(&system_ca)));
    assert!(w.bundle_fingerprints().is_superset(&before));
    let hosts =
        std::fs::read_to_string(node.path(&format!("/etc/containerd/certs.d/{host}/hosts.toml")))
            .unwrap();
    assert!(hosts.contains("corp-registry-ca"), "{hosts}");
    w.pull_ok(&via_system);
    w.pull_ok(&via_certs_d);
    assert_eq!(
        w.workload_pid(&workload),
        Some(pid),
        "[{}] the workload container keeps running with the same pid through the restart",
        w.name
    );
}

/// A registry CA alone under `registries-only`: `certs.d` only, containerd not restarted.
#[test]
fn registry_ca_alone_needs_no_containerd_restart() {
    let node = shared_node();
    let mut w = World::new(&node, "registries-only");
    let registry_ca = w.ca("corp-registry-ca");
    let r = w.registry("corp-registry", &registry_ca);
    w.pull_fails(&r);
    let f = w.add_cert("corp-registry-ca", &registry_ca);
    let host = r.host();
    let yaml = w.yaml(
        &[Auth {
            name: "corp-registry-ca",
            file: &f,
            registries: &[&host],
            replaces: None,
        }],
        &[],
        "registries-only",
    );
    w.commit(&yaml, "trust the registry CA", now() - DAY);
    let b = w.build();
    let main_pid = node.containerd_main_pid();
    w.deploy(&b);
    w.converged(&b);
    assert_eq!(
        node.containerd_main_pid(),
        main_pid,
        "[{}] registries-only: containerd must not be restarted",
        w.name
    );
    w.pull_ok(&r);
}

/// Rotation as a rolling update: a new CA that `replaces` the old, a new Secret and a
/// new pod with the new hash, the old pod stopped; then the registry's certificate moves
/// to the new CA and pulls keep working.
#[test]
fn rotation_as_a_rolling_update() {
    let node = shared_node();
    let mut w = World::new(&node, "rotation");
    let old = w.ca("corp-root-2025");
    let new = w.ca("corp-root-2026");
    let mut r = w.registry("registry", &old);
    let of = w.add_cert("corp-root-2025", &old);
    let old_auth = || Auth {
        name: "corp-root-2025",
        file: &of,
        registries: &[],
        replaces: None,
    };
    let t0 = now() - 10 * DAY;
    w.commit(
        &w.yaml(&[old_auth()], &[], "restart"),
        "trust corp-root-2025",
        t0,
    );
    let b1 = w.build();
    let (pod1, _) = w.deploy(&b1);
    w.pull_ok(&r);

    let nf = w.add_cert("corp-root-2026", &new);
    let new_auth = Auth {
        name: "corp-root-2026",
        file: &nf,
        registries: &[],
        replaces: Some("corp-root-2025"),
    };
    w.commit(
        &w.yaml(&[old_auth(), new_auth], &[], "restart"),
        "add corp-root-2026",
        t0 + DAY,
    );
    let b2 = w.build();
    assert_ne!(b1.sha256, b2.sha256);
    assert_ne!(
        secret_of(&b1.plan),
        secret_of(&b2.plan),
        "a new hashed Secret"
    );
    let main_pid = node.containerd_main_pid();
    let pod2 = w.rollout(pod1, &b2);
    w.converged(&b2);
    assert_ne!(
        node.containerd_main_pid(),
        main_pid,
        "the store changed: restart"
    );
    w.step("  the registry moves to a corp-root-2026 certificate");
    let leaf = make_server_cert(&w.pki(), "registry-2026", &new);
    r.swap_certificate(&leaf);
    w.pull_ok(&r);
    w.kubelet.delete_pod(pod2);
}

/// Emergency distrust: a system CA containerd loaded is moved to `distrust`; the
/// rollout's agent removes it and restarts containerd, and pulls fail.
#[test]
fn emergency_distrust_takes_effect_for_pulls() {
    let node = shared_node();
    let mut w = World::new(&node, "distrust");
    let corp = w.ca("corp-root");
    let proxy = w.ca("corp-proxy");
    let r = w.registry("registry", &corp);
    let cf = w.add_cert("corp-root", &corp);
    let pf = w.add_cert("corp-proxy", &proxy);
    let proxy_auth = || Auth {
        name: "corp-proxy",
        file: &pf,
        registries: &[],
        replaces: None,
    };
    let yaml = w.yaml(
        &[
            Auth {
                name: "corp-root",
                file: &cf,
                registries: &[],
                replaces: None,
            },
            proxy_auth(),
        ],
        &[],
        "registries-only",
    );
    w.commit(&yaml, "trust corp-root", now() - DAY);
    let b1 = w.build();
    let (pod1, _) = w.deploy(&b1);
    // registries-only does not restart for an addition: the node reboots (a restart).
    node.sh_ok("systemctl restart containerd");
    w.pull_ok(&r);
    w.repo.remove(&cf);
    let yaml = w.yaml(
        &[proxy_auth()],
        &[(fingerprint(&corp), "compromised")],
        "registries-only",
    );
    w.commit(&yaml, "distrust corp-root (compromised)", now());
    let b2 = w.build();
    let main_pid = node.containerd_main_pid();
    let _pod2 = w.rollout(pod1, &b2);
    w.converged(&b2);
    assert!(!w.bundle_fingerprints().contains(&fingerprint(&corp)));
    assert_ne!(
        node.containerd_main_pid(),
        main_pid,
        "[{}] a distrust restarts containerd under registries-only too",
        w.name
    );
    w.pull_fails(&r);
}

/// The agent container killed (SIGKILL) while the refresh runs — held by a slow hook in
/// the node's `update.d`, as Java's is — and started again (kubelet's restart):
/// the node converges.
#[test]
fn killed_mid_apply_converges() {
    let node = shared_node();
    let mut w = World::new(&node, "killed");
    node.sh_ok(
        "mkdir -p /etc/ca-certificates/update.d && printf '#!/bin/sh\\n: > /run/catrust-slow-hook\\nsleep 3\\n' > /etc/ca-certificates/update.d/slow && chmod +x /etc/ca-certificates/update.d/slow && rm -f /run/catrust-slow-hook",
    );
    let (_, b) = w.one_ca("corp-root", "restart");
    let mut pod = w.kubelet.run_pod(&b.plan, &b.secrets);
    let hook = node.path("/run/catrust-slow-hook");
    let deadline = Instant::now() + READY_WITHIN;
    while !hook.exists() {
        assert!(
            Instant::now() < deadline,
            "[{}] the refresh never ran its hooks; log:\n{}",
            w.name,
            pod.log(&node, AGENT)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    w.step("  the refresh is running: SIGKILL to the agent container, then kubelet's restart");
    w.kubelet.kill_and_restart(&mut pod, AGENT);
    let probe = b.plan.containers[0].readiness.clone().unwrap();
    if let Err(last) = wait_ready(&probe, READY_WITHIN) {
        panic!(
            "[{}] not ready after the restart ({last}); log:\n{}",
            w.name,
            pod.log(&node, AGENT)
        );
    }
    w.converged(&b);
    w.kubelet.delete_pod(pod);
}

/// `catrust-agent uninstall`, run from the same image and pod template (its args
/// replaced by `uninstall` with the template's `--host-root` and `--host-exec`):
/// the node's system bundle has exactly its previous fingerprints again and the
/// node's own `hosts.toml` is back byte for byte.
#[test]
fn uninstall_restores_the_node() {
    let node = shared_node();
    let mut w = World::new(&node, "uninstall");
    let system_ca = w.ca("corp-root");
    let registry_ca = w.ca("corp-registry-ca");
    let r = w.registry("corp-registry", &registry_ca);
    let host = r.host();
    let hosts_path = node.path(&format!("/etc/containerd/certs.d/{host}/hosts.toml"));
    let hosts_before = std::fs::read(&hosts_path).unwrap();
    let before = w.bundle_fingerprints();
    let b = w.system_and_registry_ca(&system_ca, &registry_ca, &host);
    let (pod, _) = w.deploy(&b);
    assert_ne!(std::fs::read(&hosts_path).unwrap(), hosts_before);
    w.kubelet.delete_pod(pod);

    let mut plan = b.plan.clone();
    let c = plan.container_mut(AGENT);
    let keep: Vec<String> = c
        .args()
        .iter()
        .filter(|a| a.starts_with("--host-root") || a.starts_with("--host-exec"))
        .cloned()
        .collect();
    let args: Vec<String> = std::iter::once("uninstall".to_string())
        .chain(keep)
        .collect();
    w.step(&format!("  uninstall: {args:?}"));
    c.set_args(args);
    let pod = w.kubelet.run_pod(&plan, &b.secrets);
    let code = w.kubelet.wait_exited(&pod, AGENT, READY_WITHIN).exit_code;
    assert_eq!(code, 0, "[{}] uninstall: {}", w.name, pod.log(&node, AGENT));
    assert_eq!(
        w.bundle_fingerprints(),
        before,
        "[{}] the system bundle's CAs",
        w.name
    );
    assert_eq!(
        String::from_utf8_lossy(&std::fs::read(&hosts_path).unwrap()),
        String::from_utf8_lossy(&hosts_before),
        "[{}] the node's own hosts.toml",
        w.name
    );
    w.kubelet.delete_pod(pod);
}

/// The refresh fails (the node's `/etc/ssl/certs` is read-only, in the host's mount
/// namespace only): the agent rolls its files back and stays not ready, saying why.
#[test]
fn failing_refresh_rolls_back_and_stays_not_ready() {
    let node = shared_node();
    let mut w = World::new(&node, "failing-refresh");
    let (b1, pod1, b2) = w.installed_a_then_built_a_and_b("restart");
    node.sh_ok(
        "mount --bind /etc/ssl/certs /etc/ssl/certs && mount -o remount,bind,ro /etc/ssl/certs",
    );
    w.kubelet.delete_pod(pod1);
    let pod2 = w.kubelet.run_pod(&b2.plan, &b2.secrets);
    let probe = b2.plan.containers[0].readiness.clone().unwrap();
    let reason = match wait_ready(&probe, Duration::from_secs(10)) {
        Ok(_) => panic!(
            "[{}] ready although the refresh cannot write /etc/ssl/certs",
            w.name
        ),
        Err(last) => last,
    };
    w.step(&format!("  /readyz: {reason}"));
    assert!(reason.starts_with("503"), "{reason}");
    assert!(
        reason.to_lowercase().contains("refresh") || reason.contains("update-ca-certificates"),
        "{reason}"
    );
    node.sh_ok("umount /etc/ssl/certs");
    w.converged(&b1);
    w.kubelet.delete_pod(pod2);
}

#[test]
fn the_node_root_is_cached_by_package_list() {
    let root = cached_root(NODE_PACKAGES);
    assert!(root.join("usr/bin/containerd").exists());
    assert!(Path::new(&root).starts_with(catrust_tests::nodebox::CACHE));
}

/// Milliseconds between two CRI timestamps (nanoseconds).
fn ms_between(from_ns: i64, to_ns: i64) -> f64 {
    (to_ns - from_ns) as f64 / 1e6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A number from the node (`sh -c script` prints it).
fn node_number(node: &Node, script: &str) -> f64 {
    let out = node.sh_ok(script);
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{script}: {out:?}"))
}

/// What the node suite measures, on the node as it is (see README, "Proven on a booted
/// node"): a bare `update-ca-certificates` beside the agent's `apply --once` (the same
/// one added CA, `containerd: none`), containerd's restart, container start to /readyz
/// 200, and peak memory (the pod cgroup's `memory.max_usage_in_bytes`, cgroup v1; the
/// agent's own VmHWM).
struct Measured {
    bare_ms: f64,
    apply_ms: f64,
    restart_ms: f64,
    ready_ms: f64,
    apply_pod_peak: u64,
    run_pod_peak: u64,
    agent_hwm_kib: u64,
}

fn measure(node: &Node, label: &str) -> Measured {
    let mut w = World::new(node, &format!("measure-{label}"));
    let (ca, b) = w.one_ca("corp-root", "none");
    std::fs::copy(&ca.cert, node.path("/var/tmp/measure.crt")).unwrap();
    let runs = 3;
    let bare: Vec<f64> = (0..runs)
        .map(|_| {
            let ms = node_number(
                node,
                "cp /var/tmp/measure.crt /usr/local/share/ca-certificates/measure.crt && s=$(date +%s%N) && update-ca-certificates >/dev/null 2>&1 && e=$(date +%s%N) && echo $(( (e - s) / 1000 ))",
            ) / 1000.0;
            node.sh_ok("rm /usr/local/share/ca-certificates/measure.crt && update-ca-certificates --fresh >/dev/null 2>&1");
            ms
        })
        .collect();
    let template_args = b.plan.containers[0].args().to_vec();
    let host_args: Vec<String> = template_args
        .iter()
        .filter(|a| a.starts_with("--host-root") || a.starts_with("--host-exec"))
        .cloned()
        .collect();
    let mut apply_plan = b.plan.clone();
    let once: Vec<String> = ["apply", "--once"]
        .map(String::from)
        .into_iter()
        .chain(
            template_args
                .iter()
                .filter(|a| !a.starts_with("--listen") && *a != "run")
                .cloned(),
        )
        .collect();
    apply_plan.container_mut(AGENT).set_args(once);
    let mut uninstall_plan = b.plan.clone();
    uninstall_plan.container_mut(AGENT).set_args(
        std::iter::once("uninstall".to_string())
            .chain(host_args)
            .collect(),
    );
    let mut apply = Vec::new();
    let mut apply_pod_peak = 0;
    for _ in 0..runs {
        let pod = w.kubelet.run_pod(&apply_plan, &b.secrets);
        let s = w.kubelet.wait_exited(&pod, AGENT, READY_WITHIN);
        assert_eq!(s.exit_code, 0, "apply --once: {}", pod.log(node, AGENT));
        apply.push(ms_between(s.started_at, s.finished_at));
        apply_pod_peak = apply_pod_peak.max(node_number(
            node,
            &format!("cat {}/memory.max_usage_in_bytes", pod.memory_cgroup()),
        ) as u64);
        w.kubelet.delete_pod(pod);
        let pod = w.kubelet.run_pod(&uninstall_plan, &b.secrets);
        let s = w.kubelet.wait_exited(&pod, AGENT, READY_WITHIN);
        assert_eq!(s.exit_code, 0, "uninstall: {}", pod.log(node, AGENT));
        w.kubelet.delete_pod(pod);
    }
    let restart: Vec<f64> = (0..runs)
        .map(|_| {
            node_number(
                node,
                "systemctl reset-failed containerd; s=$(date +%s%N) && systemctl restart containerd && e=$(date +%s%N) && echo $(( (e - s) / 1000 ))",
            ) / 1000.0
        })
        .collect();
    let (pod, ready) = w.deploy(&b);
    let (_, _, pid) = w.kubelet.state(&pod, AGENT);
    let agent_hwm_kib = node_number(
        node,
        &format!(
            "awk '/VmHWM/ {{print $2}}' /proc/{}/status",
            pid.expect("agent pid")
        ),
    ) as u64;
    let run_pod_peak = node_number(
        node,
        &format!("cat {}/memory.max_usage_in_bytes", pod.memory_cgroup()),
    ) as u64;
    w.kubelet.delete_pod(pod);
    let m = Measured {
        bare_ms: median(bare),
        apply_ms: median(apply),
        restart_ms: median(restart),
        ready_ms: ready.as_secs_f64() * 1000.0,
        apply_pod_peak,
        run_pod_peak,
        agent_hwm_kib,
    };
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    eprintln!(
        "node_e2e measurements ({label}, median of {runs}):\n  bare update-ca-certificates (one CA added): {:.0} ms\n  agent apply --once in its container (same CA): {:.0} ms (goal <= 1.1x + 100 ms = {:.0} ms)\n  systemctl restart containerd: {:.0} ms\n  container start -> /readyz 200 (run): {:.0} ms\n  peak memory, pod cgroup (apply --once): {:.1} MiB; (run, after its apply): {:.1} MiB; agent VmHWM: {:.1} MiB",
        m.bare_ms,
        m.apply_ms,
        1.1 * m.bare_ms + 100.0,
        m.restart_ms,
        m.ready_ms,
        mib(m.apply_pod_peak),
        mib(m.run_pod_peak),
        m.agent_hwm_kib as f64 / 1024.0
    );
    m
}

/// The measurements on the cached node (the Mozilla set of Debian's ca-certificates),
/// and the memory limit the DaemonSet sets holds the measured peak with headroom.
#[test]
fn measured_on_the_node_and_the_memory_limit_holds_the_peak() {
    let node = shared_node();
    let m = measure(&node, "mozilla");
    let (_, b) = World::new(&node, "limit").one_ca("corp-root", "none");
    let limit = b.plan.containers[0].memory_limit() as u64;
    let peak = m.apply_pod_peak.max(m.run_pod_peak);
    assert!(
        peak * 3 / 2 <= limit,
        "the measured peak {peak} B needs 50% headroom below the DaemonSet's limit {limit} B"
    );
}

/// The worst case: the node also has `ca-certificates-java` (and a JRE), whose
/// `update.d` hook runs Java inside the refresh, inside the pod's memory cgroup. Boots
/// its own node from another cached root; run it alone:
/// `cargo test -p catrust-tests --test node_e2e -- --ignored --nocapture java`.
#[test]
#[ignore = "measurement: boots a second node (a root with a JRE, about 600 MB); run alone"]
fn measured_with_ca_certificates_java() {
    let mut packages = NODE_PACKAGES.to_vec();
    packages.extend(["ca-certificates-java", "openjdk-17-jre-headless"]);
    let node = Node::boot(&packages, |_| {});
    let work = tempfile::tempdir().unwrap();
    node.import_image(&image::pause_image(work.path(), PAUSE_IMAGE));
    node.import_image(&image::agent_image(
        work.path(),
        &bin("catrust-agent"),
        AGENT_IMAGE,
    ));
    measure(&node, "ca-certificates-java");
}

/// The refresh is OOM-killed inside the pod's memory cgroup: a hook in the node's
/// `update.d` (as `ca-certificates-java`'s runs a JVM) needs more memory than the
/// DaemonSet's limit, and first makes `update-ca-certificates` itself the OOM killer's
/// choice (`oom_score_adj` 1000, which any process may raise): otherwise the kernel
/// kills the hook, and `update-ca-certificates` ignores a failed hook. The agent must
/// roll back and stay not ready, saying the refresh was killed.
#[test]
#[ignore = "unfinished: in this setup the kernel OOM-kills the hook, not \
            update-ca-certificates (although the hook raised its oom_score_adj to 1000), \
            and update-ca-certificates ignores a killed hook: see issue 11"]
fn oom_killed_refresh_rolls_back_and_stays_not_ready() {
    let node = shared_node();
    let mut w = World::new(&node, "oom-killed-refresh");
    let (b1, pod1, b2) = w.installed_a_then_built_a_and_b("none");
    let limit = b2.plan.containers[0].memory_limit();
    assert!(limit > 0, "the DaemonSet sets a memory limit");
    node.sh_ok(&format!(
        "mkdir -p /etc/ca-certificates/update.d && cat > /etc/ca-certificates/update.d/hog <<'EOF'\n#!/bin/sh\n# parent: the hooks loop; its parent: update-ca-certificates\nmain=$(awk '{{print $4}}' /proc/$PPID/stat)\necho 1000 > /proc/$main/oom_score_adj\nexec dd if=/dev/zero of=/dev/null bs={} count=1 2>/dev/null\nEOF\nchmod +x /etc/ca-certificates/update.d/hog",
        2 * limit
    ));
    w.kubelet.delete_pod(pod1);
    let pod2 = w.kubelet.run_pod(&b2.plan, &b2.secrets);
    let probe = b2.plan.containers[0].readiness.clone().unwrap();
    let reason = match wait_ready(&probe, Duration::from_secs(15)) {
        Ok(_) => panic!(
            "[{}] ready although the refresh was OOM-killed; log:\n{}",
            w.name,
            pod2.log(&node, AGENT)
        ),
        Err(last) => last,
    };
    w.step(&format!("  /readyz: {reason}"));
    let (state, ..) = w.kubelet.state(&pod2, AGENT);
    assert_eq!(
        state,
        cri::ContainerState::ContainerRunning,
        "[{}] the agent itself survives the refresh's OOM kill",
        w.name
    );
    assert!(reason.starts_with("503"), "{reason}");
    assert!(
        reason.contains("SIGKILL") || reason.contains("signal: 9") || reason.contains("killed"),
        "[{}] the reason says the refresh was killed: {reason}",
        w.name
    );
    node.sh_ok("rm /etc/ca-certificates/update.d/hog");
    w.converged(&b1);
    w.kubelet.delete_pod(pod2);
}
