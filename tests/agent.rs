//! The node agent, end to end: the real `catrust-agent` binary against throwaway host
//! roots, the real `update-ca-certificates` and p11-kit `trust`, and a real TLS
//! handshake (`openssl s_server` + `curl --cacert <the root's generated bundle>`)
//! deciding after every step whether the host trusts a CA.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use catrust_bundle::ContainerdPolicy;
use catrust_tests::agent::{
    agent, bundle, fingerprint, host_flags, reseal, status, Ca, RunningAgent, TlsServer,
};
use catrust_tests::host::{diff, TestHost};
use catrust_tests::kubelet::SecretVolume;
use catrust_tests::pki::{make_ca, make_server_cert, Issued};
use catrust_tests::{assert_ok, bin, run};

/// Test CAs and a TLS server certificate from each.
struct Pki {
    _dir: tempfile::TempDir,
    old: Issued,
    new: Issued,
    sys: Issued,
    foreign: Issued,
    leaf_old: Issued,
    leaf_new: Issued,
    leaf_sys: Issued,
    leaf_foreign: Issued,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (old, new, sys, foreign) = (
        make_ca(d, "corp-old", 30),
        make_ca(d, "corp-new", 30),
        make_ca(d, "system-root", 30),
        make_ca(d, "foreign-root", 30),
    );
    Pki {
        leaf_old: make_server_cert(d, "leaf-old", &old),
        leaf_new: make_server_cert(d, "leaf-new", &new),
        leaf_sys: make_server_cert(d, "leaf-sys", &sys),
        leaf_foreign: make_server_cert(d, "leaf-foreign", &foreign),
        old,
        new,
        sys,
        foreign,
        _dir: dir,
    }
}

fn args(flags: &[String], extra: &[&str]) -> Vec<String> {
    flags
        .iter()
        .cloned()
        .chain(extra.iter().map(|s| s.to_string()))
        .collect()
}

fn apply_once(flags: &[String], extra: &[&str]) -> Output {
    let mut a = vec!["apply".to_string(), "--once".into()];
    a.extend(args(flags, extra));
    agent(&a.iter().map(String::as_str).collect::<Vec<_>>())
}

fn uninstall(root: &Path, exec_extra: &[&str]) -> Output {
    let mut a = vec![
        "uninstall",
        "--host-root",
        root.to_str().unwrap(),
        "--host-exec",
        "direct",
    ];
    a.extend_from_slice(exec_extra);
    agent(&a)
}

/// Foreign files planted before any operation, checked byte for byte after each.
struct Foreign(Vec<(String, Vec<u8>)>);

impl Foreign {
    fn plant(h: &TestHost, files: &[(&str, &[u8])]) -> Self {
        for (p, b) in files {
            h.write(p, b);
        }
        Foreign(
            files
                .iter()
                .map(|(p, b)| (p.to_string(), b.to_vec()))
                .collect(),
        )
    }

    #[track_caller]
    fn check(&self, h: &TestHost, step: &str) {
        for (p, b) in &self.0 {
            assert_eq!(
                &h.read(p),
                b,
                "{step}: the agent changed the foreign file {p}"
            );
        }
    }
}

const FOREIGN_HOSTS: &str = "# ops team: pull through the mirror first\nserver = \"https://registry.corp:5000\"\n\n[host.\"https://mirror.corp:5000\"]\n  capabilities = [\"pull\", \"resolve\"] # keep\n";

#[test]
fn debian_install_rotate_distrust_uninstall() {
    let p = pki();
    let h = TestHost::debian();
    h.add_system_ca("catrust-test/system-root.crt", &p.sys.pem());
    let foreign = Foreign::plant(
        &h,
        &[
            (
                "usr/local/share/ca-certificates/foreign.crt",
                p.foreign.pem().as_bytes(),
            ),
            // Beside the agent's folder, with its name as a prefix: still not the agent's.
            (
                "usr/local/share/ca-certificates/catrust-lookalike.crt",
                p.foreign.pem().as_bytes(),
            ),
        ],
    );
    let foreign_hosts = "etc/containerd/certs.d/registry.corp:5000/hosts.toml";
    h.write(foreign_hosts, FOREIGN_HOSTS);
    h.refresh();
    let before = h.node_snapshot();
    let gen = h.generated_bundle();
    let (s_old, s_new, s_sys, s_foreign) = (
        TlsServer::start(&p.leaf_old),
        TlsServer::start(&p.leaf_new),
        TlsServer::start(&p.leaf_sys),
        TlsServer::start(&p.leaf_foreign),
    );
    assert!(
        !s_old.trusted_by(&gen),
        "the host trusts corp-old before install"
    );
    assert!(s_sys.trusted_by(&gen) && s_foreign.trusted_by(&gen));

    let vols = tempfile::tempdir().unwrap();
    let vol = SecretVolume::new(&vols.path().join("bundle"));
    let flags = host_flags(h.root(), &vol.dir);

    // 1. Install.
    let registries: &[&str] = &["127.0.0.1:5000", "registry.corp:5000"];
    let (files, h1) = bundle(
        &[Ca {
            name: "corp-old",
            cert: &p.old,
            registries,
        }],
        &[],
        ContainerdPolicy::Restart,
    );
    vol.write(&files);
    assert_ok(
        &apply_once(&flags, &["--expected-sha256", &h1]),
        "catrust-agent",
    );
    assert!(s_old.trusted_by(&gen), "install: corp-old not trusted");
    assert!(s_sys.trusted_by(&gen) && s_foreign.trusted_by(&gen));
    foreign.check(&h, "install");
    let st = status(h.root(), Some(&vol.dir));
    assert_eq!(
        (st["ready"].as_bool(), st["installed"].as_str()),
        (Some(true), Some(h1.as_str())),
        "{st}"
    );
    assert_eq!(
        h.read("usr/local/share/ca-certificates/catrust/catrust-corp-old.crt"),
        files["corp-old.crt"],
        "the anchor is the bundle's canonical PEM"
    );
    let own_hosts =
        String::from_utf8(h.read("etc/containerd/certs.d/127.0.0.1:5000/hosts.toml")).unwrap();
    assert!(
        own_hosts.contains("server = \"https://127.0.0.1:5000\""),
        "{own_hosts}"
    );
    assert!(
        own_hosts.contains("[host.\"https://127.0.0.1:5000\"]\nca = [\"catrust-corp-old.crt\"]"),
        "{own_hosts}"
    );
    assert_eq!(
        h.read("etc/containerd/certs.d/127.0.0.1:5000/catrust-corp-old.crt"),
        files["corp-old.crt"]
    );
    let edited = String::from_utf8(h.read(foreign_hosts)).unwrap();
    assert!(
        edited.starts_with(FOREIGN_HOSTS.trim_end()),
        "the foreign hosts.toml was not kept:\n{edited}"
    );
    assert!(
        edited.contains("# managed by catrust-agent")
            && edited.contains("\"catrust-corp-old.crt\"")
    );
    assert_eq!(
        h.containerd_restarts(),
        1,
        "restart policy: containerd restarts when the store changed"
    );

    // 2. Rotate, step one: add the successor.
    let (files, h2) = bundle(
        &[
            Ca {
                name: "corp-old",
                cert: &p.old,
                registries,
            },
            Ca {
                name: "corp-new",
                cert: &p.new,
                registries: &["127.0.0.1:5000"],
            },
        ],
        &[],
        ContainerdPolicy::Restart,
    );
    vol.write(&files);
    assert_ok(
        &apply_once(&flags, &["--expected-sha256", &h2]),
        "catrust-agent",
    );
    assert!(
        s_old.trusted_by(&gen) && s_new.trusted_by(&gen),
        "overlap: both CAs trusted"
    );
    foreign.check(&h, "rotate (add)");

    // 3. Rotate, step two: remove the old CA.
    let (files, h3) = bundle(
        &[Ca {
            name: "corp-new",
            cert: &p.new,
            registries: &["127.0.0.1:5000"],
        }],
        &[],
        ContainerdPolicy::Restart,
    );
    vol.write(&files);
    assert_ok(
        &apply_once(&flags, &["--expected-sha256", &h3]),
        "catrust-agent",
    );
    assert!(
        !s_old.trusted_by(&gen),
        "rotate: corp-old still trusted after removal"
    );
    assert!(s_new.trusted_by(&gen) && s_sys.trusted_by(&gen) && s_foreign.trusted_by(&gen));
    assert!(!h
        .path("usr/local/share/ca-certificates/catrust/catrust-corp-old.crt")
        .exists());
    assert!(!h
        .path("etc/containerd/certs.d/127.0.0.1:5000/catrust-corp-old.crt")
        .exists());
    assert_eq!(
        h.read(foreign_hosts),
        FOREIGN_HOSTS.as_bytes(),
        "the registry left the bundle: its foreign hosts.toml is back to the byte"
    );
    foreign.check(&h, "rotate (remove)");
    assert_eq!(h.containerd_restarts(), 3);

    // 4. Distrust a system CA (registries-only still restarts containerd on distrust).
    let (files, h4) = bundle(
        &[Ca {
            name: "corp-new",
            cert: &p.new,
            registries: &["127.0.0.1:5000"],
        }],
        &[fingerprint(&p.sys)],
        ContainerdPolicy::RegistriesOnly,
    );
    vol.write(&files);
    assert_ok(
        &apply_once(&flags, &["--expected-sha256", &h4]),
        "catrust-agent",
    );
    assert!(
        !s_sys.trusted_by(&gen),
        "distrust: the system CA is still trusted"
    );
    assert!(s_new.trusted_by(&gen) && s_foreign.trusted_by(&gen));
    let conf = String::from_utf8(h.read("etc/ca-certificates.conf")).unwrap();
    assert!(conf.contains("\n!catrust-test/system-root.crt\n"), "{conf}");
    assert!(!conf.contains("\ncatrust-test/system-root.crt\n"), "{conf}");
    assert_eq!(
        h.containerd_restarts(),
        4,
        "distrust restarts containerd under registries-only"
    );
    foreign.check(&h, "distrust");

    // 5. Nothing new: a resync changes nothing and restarts nothing.
    let settled = h.node_snapshot();
    assert_ok(
        &apply_once(&flags, &["--expected-sha256", &h4]),
        "catrust-agent",
    );
    assert_eq!(diff(&settled, &h.node_snapshot()), Vec::<String>::new());
    assert_eq!(h.containerd_restarts(), 4);

    // 6. Uninstall: exactly what was installed goes, the host is as it was before.
    assert_ok(&uninstall(h.root(), &[]), "catrust-agent");
    assert!(!s_new.trusted_by(&gen), "uninstall: corp-new still trusted");
    assert!(
        s_sys.trusted_by(&gen),
        "uninstall: the distrusted system CA is not back"
    );
    assert!(s_foreign.trusted_by(&gen));
    foreign.check(&h, "uninstall");
    assert_eq!(
        diff(&before, &h.node_snapshot()),
        Vec::<String>::new(),
        "uninstall left changes behind"
    );
    assert!(
        !h.path("var/lib/catrust").exists(),
        "uninstall keeps no record"
    );
}

#[test]
fn rhel_family_with_p11_kit_install_rotate_distrust_uninstall() {
    let p = pki();
    let h = TestHost::rhel();
    h.add_system_ca("system-root.pem", &p.sys.pem());
    let foreign = Foreign::plant(
        &h,
        &[(
            "etc/pki/ca-trust/source/anchors/foreign.crt",
            p.foreign.pem().as_bytes(),
        )],
    );
    h.refresh();
    let before = h.node_snapshot();
    let gen = h.generated_bundle();
    let (s_old, s_new, s_sys, s_foreign) = (
        TlsServer::start(&p.leaf_old),
        TlsServer::start(&p.leaf_new),
        TlsServer::start(&p.leaf_sys),
        TlsServer::start(&p.leaf_foreign),
    );
    assert!(!s_old.trusted_by(&gen) && s_sys.trusted_by(&gen) && s_foreign.trusted_by(&gen));

    let vols = tempfile::tempdir().unwrap();
    let vol = SecretVolume::new(&vols.path().join("bundle"));
    let flags = host_flags(h.root(), &vol.dir);
    let (files, _) = bundle(
        &[Ca {
            name: "corp-old",
            cert: &p.old,
            registries: &[],
        }],
        &[],
        ContainerdPolicy::Restart,
    );
    vol.write(&files);
    assert_ok(&apply_once(&flags, &[]), "catrust-agent");
    assert!(s_old.trusted_by(&gen), "install: corp-old not trusted");
    assert!(h
        .path("etc/pki/ca-trust/source/anchors/catrust-corp-old.crt")
        .is_file());
    foreign.check(&h, "install");

    let (files, _) = bundle(
        &[Ca {
            name: "corp-new",
            cert: &p.new,
            registries: &[],
        }],
        &[],
        ContainerdPolicy::Restart,
    );
    vol.write(&files);
    // A link planted under the agent's prefix in the shared anchors folder: refused,
    // nothing changes, the trust stays as it was.
    let planted = h.path("etc/pki/ca-trust/source/anchors/catrust-planted.crt");
    std::os::unix::fs::symlink(&p.new.cert, &planted).unwrap();
    let snapshot = h.node_snapshot();
    let out = apply_once(&flags, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(diff(&snapshot, &h.node_snapshot()), Vec::<String>::new());
    assert!(s_old.trusted_by(&gen) && !s_new.trusted_by(&gen));
    let reason = status(h.root(), None)["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.contains("symlink planted in the anchors folder"),
        "{reason}"
    );
    std::fs::remove_file(&planted).unwrap();
    assert_ok(&apply_once(&flags, &[]), "catrust-agent");
    assert!(!s_old.trusted_by(&gen) && s_new.trusted_by(&gen), "rotate");
    foreign.check(&h, "rotate");

    let sys_fp = fingerprint(&p.sys);
    let (files, _) = bundle(
        &[Ca {
            name: "corp-new",
            cert: &p.new,
            registries: &[],
        }],
        &[sys_fp.clone(), fingerprint(&p.foreign)],
        ContainerdPolicy::Restart,
    );
    vol.write(&files);
    assert_ok(&apply_once(&flags, &[]), "catrust-agent");
    assert!(
        !s_sys.trusted_by(&gen),
        "distrust: the system CA is still trusted"
    );
    // A blocklist entry wins over an anchor the agent does not own (left untouched).
    assert!(
        !s_foreign.trusted_by(&gen),
        "distrust: the foreign anchor is still trusted"
    );
    assert!(s_new.trusted_by(&gen));
    assert!(h
        .path(&format!(
            "etc/pki/ca-trust/source/blocklist/catrust-{sys_fp}.pem"
        ))
        .is_file());
    foreign.check(&h, "distrust");

    assert_ok(&uninstall(h.root(), &[]), "catrust-agent");
    assert!(!s_new.trusted_by(&gen) && s_sys.trusted_by(&gen) && s_foreign.trusted_by(&gen));
    foreign.check(&h, "uninstall");
    assert_eq!(
        diff(&before, &h.node_snapshot()),
        Vec::<String>::new(),
        "uninstall left changes behind"
    );
}

/// One refused input: how to make it, what the reason must say.
struct Case {
    what: &'static str,
    reason: &'static str,
}

#[test]
fn refused_inputs_leave_the_host_as_it_was() {
    let p = pki();
    let h = TestHost::debian();
    let foreign = Foreign::plant(
        &h,
        &[(
            "usr/local/share/ca-certificates/foreign.crt",
            p.foreign.pem().as_bytes(),
        )],
    );
    h.refresh();
    let gen = h.generated_bundle();
    let (s_old, s_new) = (TlsServer::start(&p.leaf_old), TlsServer::start(&p.leaf_new));
    let vols = tempfile::tempdir().unwrap();
    let vol = SecretVolume::new(&vols.path().join("bundle"));
    let flags = host_flags(h.root(), &vol.dir);
    let (v1, h1) = bundle(
        &[Ca {
            name: "corp-old",
            cert: &p.old,
            registries: &["127.0.0.1:5000"],
        }],
        &[],
        ContainerdPolicy::Restart,
    );
    let (v2, h2) = bundle(
        &[
            Ca {
                name: "corp-old",
                cert: &p.old,
                registries: &["127.0.0.1:5000"],
            },
            Ca {
                name: "corp-new",
                cert: &p.new,
                registries: &[],
            },
        ],
        &[],
        ContainerdPolicy::Restart,
    );
    vol.write(&v1);
    assert_ok(&apply_once(&flags, &[]), "catrust-agent");
    assert!(s_old.trusted_by(&gen) && !s_new.trusted_by(&gen));

    let cases = [
        Case {
            what: "tampered bundle.json",
            reason: "hashes to",
        },
        Case {
            what: "key ../x",
            reason: "\"x\"",
        },
        Case {
            what: "key ..x",
            reason: "..x",
        },
        Case {
            what: "expected hash differs",
            reason: "the expected one is",
        },
        Case {
            what: "symlink in the anchors folder",
            reason: "symlink planted in the anchors folder",
        },
        // ..data -> ..x where ..x is a link to a copy of v2 outside the volume.
        Case {
            what: "..data through a link out of the volume",
            reason: "which is a link or not a folder",
        },
        // A bundle sealed with a port containerd could never use.
        Case {
            what: "registry host:99999",
            reason: "the port is not a number from 1 to 65535",
        },
    ];
    let outside = vols.path().join("outside");
    let planted = h.path("usr/local/share/ca-certificates/catrust/planted.crt");
    let mut expected: Vec<&str> = Vec::new();
    for case in &cases {
        // Every case offers v2 (corp-new) in some refused form.
        vol.write(&v2);
        expected.clear();
        match case.what {
            "tampered bundle.json" => {
                let json = String::from_utf8(v2["bundle.json"].clone()).unwrap();
                let mut bad = v2.clone();
                bad.insert(
                    "bundle.json".into(),
                    json.replace("127.0.0.1:5000", "evil.example:5000")
                        .into_bytes(),
                );
                vol.write(&bad);
            }
            // kubelet never writes outside the version folder; a `../x` key would land
            // beside it, as a plain `x` in the volume.
            "key ../x" => std::fs::write(vol.dir.join("x"), "payload").unwrap(),
            "key ..x" => std::fs::write(vol.version_dir().join("..x"), "payload").unwrap(),
            "expected hash differs" => expected = vec!["--expected-sha256", &h1],
            "symlink in the anchors folder" => {
                std::os::unix::fs::symlink(&p.new.cert, &planted).unwrap();
            }
            "..data through a link out of the volume" => {
                std::fs::create_dir_all(&outside).unwrap();
                for (k, b) in &v2 {
                    std::fs::write(outside.join(k), b).unwrap();
                }
                std::os::unix::fs::symlink(&outside, vol.dir.join("..x")).unwrap();
                let tmp = vol.dir.join("..data_tmp");
                std::os::unix::fs::symlink("..x", &tmp).unwrap();
                std::fs::rename(&tmp, vol.dir.join("..data")).unwrap();
            }
            "registry host:99999" => vol.write(&reseal(&v2, |m| {
                m["authorities"][0]["registries"] = serde_json::json!(["host:99999"]);
            })),
            _ => unreachable!(),
        }
        let before = h.node_snapshot();
        let out = apply_once(&flags, &expected);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: apply --once must exit 1",
            case.what
        );
        assert_eq!(
            diff(&before, &h.node_snapshot()),
            Vec::<String>::new(),
            "{}: the host changed",
            case.what
        );
        assert!(
            s_old.trusted_by(&gen),
            "{}: the host lost the trust it had",
            case.what
        );
        assert!(
            !s_new.trusted_by(&gen),
            "{}: the refused CA is trusted",
            case.what
        );
        foreign.check(&h, case.what);
        let mut st_args = vec![
            "status",
            "--format",
            "json",
            "--host-root",
            h.root().to_str().unwrap(),
        ];
        st_args.extend_from_slice(&expected);
        let st: serde_json::Value = serde_json::from_slice(&agent(&st_args).stdout).unwrap();
        assert_eq!(st["ready"], false, "{}: {st}", case.what);
        let reason = st["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains(case.reason),
            "{}: status reason {reason:?}",
            case.what
        );
        assert_eq!(
            st["installed"].as_str(),
            Some(h1.as_str()),
            "{}: {st}",
            case.what
        );

        // The long-running agent reports the same through /readyz.
        let running = RunningAgent::start(&flags, &[&["--resync", "1h"], &expected[..]].concat());
        let body = running.wait_readyz(503, Duration::from_secs(10));
        assert!(
            body.contains(case.reason),
            "{}: /readyz said {body:?}",
            case.what
        );
        let (_, metrics) = running.get("/metrics").unwrap();
        assert!(
            metrics.contains("catrust_agent_ready 0")
                && metrics.contains("catrust_agent_refused_total 1")
                && metrics.contains("catrust_agent_apply_failures_total 1"),
            "{}: {metrics}",
            case.what
        );
        drop(running);
        assert_eq!(
            diff(&before, &h.node_snapshot()),
            Vec::<String>::new(),
            "{}: run changed the host",
            case.what
        );

        let _ = std::fs::remove_file(vol.dir.join("x"));
        let _ = std::fs::remove_file(&planted);
        let _ = std::fs::remove_file(vol.dir.join("..x"));
    }
    // What an operator reads: human status and JSON logs name the reason too.
    vol.write(&v2);
    std::fs::write(vol.dir.join("x"), "payload").unwrap();
    let out = apply_once(&flags, &["--log-format", "json"]);
    let logs = String::from_utf8_lossy(&out.stderr);
    let line: serde_json::Value = serde_json::from_str(logs.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {logs}"));
    assert_eq!(line["level"], "WARN", "{line}");
    assert!(
        line["fields"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("\"x\""),
        "{line}"
    );
    let out = agent(&["status", "--host-root", h.root().to_str().unwrap()]);
    let human = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        human.contains("ready:     no") && human.contains("reason:    bundle refused"),
        "{human}"
    );
    std::fs::remove_file(vol.dir.join("x")).unwrap();

    // With the bad input gone, the same volume installs.
    vol.write(&v2);
    assert_ok(
        &apply_once(&flags, &["--expected-sha256", &h2]),
        "catrust-agent",
    );
    assert!(s_new.trusted_by(&gen));
}

#[test]
fn run_installs_a_swapped_bundle_within_a_second() {
    let p = pki();
    let h = TestHost::debian();
    h.refresh();
    let gen = h.generated_bundle();
    let s_new = TlsServer::start(&p.leaf_new);
    let vols = tempfile::tempdir().unwrap();
    let vol = SecretVolume::new(&vols.path().join("bundle"));
    let flags = host_flags(h.root(), &vol.dir);
    let (v1, h1) = bundle(
        &[Ca {
            name: "corp-old",
            cert: &p.old,
            registries: &[],
        }],
        &[],
        ContainerdPolicy::None,
    );
    vol.write(&v1);
    let running = RunningAgent::start(&flags, &["--resync", "1h"]);
    running.wait_readyz(200, Duration::from_secs(10));
    let (_, metrics) = running.get("/metrics").unwrap();
    assert!(
        metrics.contains(&format!(
            "catrust_agent_installed_bundle{{sha256=\"{h1}\"}} 1"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("catrust_agent_ca_not_after_seconds{name=\"corp-old\""),
        "{metrics}"
    );
    assert!(!s_new.trusted_by(&gen));

    let (v2, h2) = bundle(
        &[
            Ca {
                name: "corp-old",
                cert: &p.old,
                registries: &[],
            },
            Ca {
                name: "corp-new",
                cert: &p.new,
                registries: &[],
            },
        ],
        &[],
        ContainerdPolicy::None,
    );
    let t0 = Instant::now();
    vol.write(&v2);
    let state = h.path("var/lib/catrust/state.json");
    let installed = loop {
        let s = std::fs::read_to_string(&state).unwrap_or_default();
        if s.contains(&h2) {
            break t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the swapped bundle was not installed"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    eprintln!("swap to installed: {installed:?}");
    assert!(
        installed < Duration::from_millis(1500),
        "took {installed:?}"
    );
    assert!(
        s_new.trusted_by(&gen),
        "after the swap corp-new is not trusted"
    );
    running.wait_readyz(200, Duration::from_secs(5));
    let st = status(h.root(), Some(&vol.dir));
    assert_eq!(st["installed"].as_str(), Some(h2.as_str()), "{st}");

    // As PID 1 of a pod it must stop on SIGTERM, not wait out the grace period.
    let mut running = running;
    run(Command::new("kill").args(["-TERM", &running.pid().to_string()]));
    let t0 = Instant::now();
    let code = loop {
        if let Some(status) = running.child.0.try_wait().unwrap() {
            break status.code();
        }
        assert!(t0.elapsed() < Duration::from_secs(3), "run ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(code, Some(0));
}

#[test]
fn removing_the_last_ca_does_not_leave_a_stale_bundle() {
    // No system CA at all: update-ca-certificates then keeps the old bundle, even
    // with --fresh. The agent must not leave the removed CA trusted.
    let p = pki();
    let h = TestHost::debian();
    let gen = h.generated_bundle();
    let s_old = TlsServer::start(&p.leaf_old);
    let vols = tempfile::tempdir().unwrap();
    let vol = SecretVolume::new(&vols.path().join("bundle"));
    let flags = host_flags(h.root(), &vol.dir);
    let (v1, _) = bundle(
        &[Ca {
            name: "corp-old",
            cert: &p.old,
            registries: &[],
        }],
        &[],
        ContainerdPolicy::None,
    );
    vol.write(&v1);
    assert_ok(&apply_once(&flags, &[]), "catrust-agent");
    assert!(s_old.trusted_by(&gen));
    let (empty, _) = bundle(&[], &[], ContainerdPolicy::None);
    vol.write(&empty);
    assert_ok(&apply_once(&flags, &[]), "catrust-agent");
    assert!(
        !s_old.trusted_by(&gen),
        "the removed CA is still in the generated bundle"
    );
    let st = status(h.root(), None);
    assert!(st["warnings"].to_string().contains("emptied it"), "{st}");
}

#[test]
fn a_failing_refresh_is_rolled_back() {
    let p = pki();
    let h = TestHost::debian();
    h.refresh();
    let gen = h.generated_bundle();
    let (s_old, s_new) = (TlsServer::start(&p.leaf_old), TlsServer::start(&p.leaf_new));
    let vols = tempfile::tempdir().unwrap();
    let vol = SecretVolume::new(&vols.path().join("bundle"));
    let flags = host_flags(h.root(), &vol.dir);
    let (v1, h1) = bundle(
        &[Ca {
            name: "corp-old",
            cert: &p.old,
            registries: &[],
        }],
        &[],
        ContainerdPolicy::None,
    );
    vol.write(&v1);
    assert_ok(&apply_once(&flags, &[]), "catrust-agent");
    let before = h.node_snapshot();

    // An update-ca-certificates that fails, first on PATH.
    let fake = tempfile::tempdir().unwrap();
    let tool = fake.path().join("update-ca-certificates");
    std::fs::write(&tool, "#!/bin/sh\necho 'E: disk on fire' >&2\nexit 1\n").unwrap();
    run(Command::new("chmod").arg("755").arg(&tool));
    let (v2, _) = bundle(
        &[
            Ca {
                name: "corp-old",
                cert: &p.old,
                registries: &[],
            },
            Ca {
                name: "corp-new",
                cert: &p.new,
                registries: &[],
            },
        ],
        &[],
        ContainerdPolicy::None,
    );
    vol.write(&v2);
    let path = format!(
        "{}:{}",
        fake.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut a = vec!["apply".to_string(), "--once".into()];
    a.extend(flags.iter().cloned());
    let out = run(Command::new(bin("catrust-agent"))
        .args(&a)
        .env("PATH", &path));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        diff(&before, &h.node_snapshot()),
        Vec::<String>::new(),
        "the failed apply was not rolled back"
    );
    assert!(s_old.trusted_by(&gen) && !s_new.trusted_by(&gen));
    let st = status(h.root(), Some(&vol.dir));
    let reason = st["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("disk on fire") && reason.contains("restored"),
        "{reason}"
    );
    assert_eq!(st["installed"].as_str(), Some(h1.as_str()));
    assert_eq!(st["ready"], false);

    // A refresh that hangs is killed at the deadline and rolled back the same way.
    std::fs::write(&tool, "#!/bin/sh\nexec sleep 30\n").unwrap();
    let t0 = Instant::now();
    let out = run(Command::new(bin("catrust-agent"))
        .args(&a)
        .args(["--command-timeout", "1s"])
        .env("PATH", &path));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "the deadline was not kept"
    );
    assert_eq!(diff(&before, &h.node_snapshot()), Vec::<String>::new());
    let reason = status(h.root(), None)["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.contains("did not finish within 1s") && reason.contains("restored"),
        "{reason}"
    );
    assert!(s_old.trusted_by(&gen) && !s_new.trusted_by(&gen));
}

#[test]
fn drift_is_repaired_and_an_unknown_host_is_refused() {
    let p = pki();
    let h = TestHost::debian();
    // A system CA, so the hand-run refresh below rewrites the bundle.
    h.add_system_ca("catrust-test/system-root.crt", &p.sys.pem());
    h.refresh();
    let gen = h.generated_bundle();
    let s_old = TlsServer::start(&p.leaf_old);
    let vols = tempfile::tempdir().unwrap();
    let vol = SecretVolume::new(&vols.path().join("bundle"));
    let flags = host_flags(h.root(), &vol.dir);
    let (v1, _) = bundle(
        &[Ca {
            name: "corp-old",
            cert: &p.old,
            registries: &[],
        }],
        &[],
        ContainerdPolicy::None,
    );
    vol.write(&v1);
    assert_ok(&apply_once(&flags, &[]), "catrust-agent");
    let anchor = "usr/local/share/ca-certificates/catrust/catrust-corp-old.crt";

    // Someone deletes the agent's anchor and refreshes: the next resync puts it back.
    std::fs::remove_file(h.path(anchor)).unwrap();
    h.refresh();
    assert!(!s_old.trusted_by(&gen));
    assert_ok(&apply_once(&flags, &[]), "catrust-agent");
    assert!(
        s_old.trusted_by(&gen),
        "drift (deleted anchor) not repaired"
    );
    assert_eq!(h.read(anchor), v1["corp-old.crt"]);

    // Someone edits it: the agent's own file is rewritten.
    h.write(anchor, "garbage\n");
    assert_ok(&apply_once(&flags, &[]), "catrust-agent");
    assert_eq!(
        h.read(anchor),
        v1["corp-old.crt"],
        "drift (edited anchor) not repaired"
    );

    // A host family the agent does not know: refused, nothing written, reason shown.
    let alpine = TestHost::debian();
    alpine.write("etc/os-release", "ID=alpine\nVERSION_ID=3.20\n");
    let before = alpine.node_snapshot();
    let out = apply_once(&host_flags(alpine.root(), &vol.dir), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(diff(&before, &alpine.node_snapshot()), Vec::<String>::new());
    let st = status(alpine.root(), None);
    assert_eq!(st["ready"], false);
    assert!(
        st["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("unsupported host"),
        "{st}"
    );
}

/// containerd 1.6's own resolver (`ctr image pull --hosts-dir`, the code the CRI plugin
/// uses for `config_path`) reads the agent's `hosts.toml` and its CA by the relative path.
#[test]
fn containerd_trusts_a_registry_through_the_agents_hosts_toml() {
    let containerd = catrust_tests::require_tool("containerd", "containerd");
    let ctr = catrust_tests::require_tool("ctr", "containerd");
    let p = pki();
    let h = TestHost::debian();
    h.refresh();
    // The "registry": TLS with a leaf from corp-old (enough to see whom ctr trusts).
    let registry = TlsServer::start(&p.leaf_old);
    let host = format!("127.0.0.1:{}", registry.port);

    let daemon_dir = tempfile::tempdir().unwrap();
    let d = daemon_dir.path();
    let sock = d.join("containerd.sock");
    std::fs::write(
        d.join("config.toml"),
        format!(
            "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n[grpc]\n  address = \"{1}\"\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  disable = true\n",
            d.display(),
            sock.display()
        ),
    )
    .unwrap();
    let _daemon = catrust_tests::agent::Killed(
        Command::new(containerd)
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start containerd"),
    );
    let t0 = Instant::now();
    while !sock.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "containerd did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pull = || {
        // A TLS failure returns at once; a trusted handshake reaches the HTTP exchange,
        // which s_server does not speak for HEAD: `timeout` ends that wait.
        let mut cmd = Command::new("timeout");
        catrust_tests::isolate_tls_env(&mut cmd)
            .arg("3")
            .arg(&ctr)
            .arg("--debug")
            .arg("--address")
            .arg(&sock)
            .args(["image", "pull", "--hosts-dir"])
            .arg(h.path("etc/containerd/certs.d"))
            .arg(format!("{host}/catrust/test:1"));
        let out = run(&mut cmd);
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
    };

    let vols = tempfile::tempdir().unwrap();
    let vol = SecretVolume::new(&vols.path().join("bundle"));
    let flags = host_flags(h.root(), &vol.dir);
    // The wrong CA for this registry: containerd must say so.
    let (v1, _) = bundle(
        &[Ca {
            name: "corp-new",
            cert: &p.new,
            registries: &[&host],
        }],
        &[],
        ContainerdPolicy::RegistriesOnly,
    );
    vol.write(&v1);
    assert_ok(&apply_once(&flags, &[]), "catrust-agent");
    let out = pull();
    assert!(
        out.contains("x509: certificate signed by unknown authority"),
        "{out}"
    );

    // The right CA, named by a path relative to certs.d/<host>/.
    let (v2, _) = bundle(
        &[Ca {
            name: "corp-old",
            cert: &p.old,
            registries: &[&host],
        }],
        &[],
        ContainerdPolicy::RegistriesOnly,
    );
    vol.write(&v2);
    assert_ok(&apply_once(&flags, &[]), "catrust-agent");
    assert_eq!(
        h.containerd_restarts(),
        0,
        "registries-only: a registry CA needs no containerd restart"
    );
    let hosts =
        String::from_utf8(h.read(&format!("etc/containerd/certs.d/{host}/hosts.toml"))).unwrap();
    assert!(hosts.contains("ca = [\"catrust-corp-old.crt\"]"), "{hosts}");
    let out = pull();
    assert!(
        !out.contains("x509"),
        "containerd did not trust the agent's CA: {out}"
    );
    assert!(
        out.contains(&format!(
            "url=\"https://{host}/v2/catrust/test/manifests/1\""
        )),
        "{out}"
    );
}

/// A sealed bundle of one authority.
fn one_ca(
    name: &str,
    cert: &Issued,
    registries: &[&str],
    policy: ContainerdPolicy,
) -> (BTreeMap<String, Vec<u8>>, String) {
    bundle(
        &[Ca {
            name,
            cert,
            registries,
        }],
        &[],
        policy,
    )
}

/// The DaemonSet passes `--host-root /proc/1/root` (the host's root as PID 1 sees it,
/// no hostPath). Here the same magic link of another process: every atomic write,
/// the record, the lock and the refresh go through `/proc/<pid>/root`.
#[test]
fn the_host_root_can_be_another_process_root_through_proc() {
    let p = pki();
    let h = TestHost::debian();
    let holder = catrust_tests::agent::Killed(
        Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn sleep"),
    );
    let through_proc = Path::new(&format!("/proc/{}/root", holder.0.id()))
        .join(h.root().strip_prefix("/").unwrap());
    let s_old = TlsServer::start(&p.leaf_old);
    let vols = tempfile::tempdir().unwrap();
    let vol = SecretVolume::new(&vols.path().join("bundle"));
    let flags = host_flags(&through_proc, &vol.dir);
    let (v1, hash) = one_ca("corp-old", &p.old, &[], ContainerdPolicy::None);
    vol.write(&v1);
    assert_ok(&apply_once(&flags, &[]), "catrust-agent");
    assert!(s_old.trusted_by(&h.generated_bundle()));
    let st = status(h.root(), None);
    assert_eq!(st["installed"], hash, "{st}");
    assert_ok(&uninstall(&through_proc, &[]), "catrust-agent");
    assert!(!h.path("var/lib/catrust/state.json").exists());
}

/// `update-ca-certificates` links `/etc/ssl/certs/<basename>.pem` by basename only. An
/// authority named like a foreign anchor (AKS's own files, any `<name>.crt` outside the
/// agent's folder) must not take over that link: the agent's anchors are
/// `catrust/catrust-<name>.crt`. An anchor an earlier agent wrote as `catrust/<name>.crt`
/// (its record lists it) is renamed by the next apply, foreign files untouched.
#[test]
fn debian_anchor_names_cannot_collide_and_old_names_are_migrated() {
    let p = pki();
    let h = TestHost::debian();
    let aks_proxy = "usr/local/share/ca-certificates/proxyCA.crt";
    let aks_custom = "usr/local/share/ca-certificates/certs/aks-custom-0.crt";
    let same_name = "usr/local/share/ca-certificates/corp-old.crt";
    h.write(aks_proxy, p.sys.pem());
    h.write(aks_custom, p.new.pem());
    h.write(same_name, p.foreign.pem());
    // What an earlier agent left: `catrust/corp-old.crt`, recorded.
    let old_anchor = "usr/local/share/ca-certificates/catrust/corp-old.crt";
    let ours = catrust_bundle::encode_pem(&catrust_tests::pki::der_of(&p.old.cert));
    h.write(old_anchor, &ours);
    let vols = tempfile::tempdir().unwrap();
    let vol = SecretVolume::new(&vols.path().join("bundle"));
    let (v1, hash) = one_ca("corp-old", &p.old, &[], ContainerdPolicy::None);
    vol.write(&v1);
    h.write(
        "var/lib/catrust/state.json",
        serde_json::json!({
            "version": 1,
            "family": "debian",
            "bundleSha256": hash,
            "files": { old_anchor: catrust_bundle::sha256_hex(ours.as_bytes()) },
        })
        .to_string(),
    );
    h.refresh();
    let foreign_before: Vec<Vec<u8>> = [aks_proxy, aks_custom, same_name]
        .iter()
        .map(|f| h.read(f))
        .collect();

    assert_ok(
        &apply_once(&host_flags(h.root(), &vol.dir), &[]),
        "catrust-agent",
    );
    let link = |name: &str| {
        std::fs::read_link(h.path(&format!("etc/ssl/certs/{name}")))
            .unwrap_or_else(|e| panic!("etc/ssl/certs/{name}: {e}"))
            .display()
            .to_string()
    };
    assert!(
        link("corp-old.pem").ends_with(same_name),
        "the foreign corp-old.crt lost its link: {}",
        link("corp-old.pem")
    );
    assert!(
        link("catrust-corp-old.pem").ends_with("catrust/catrust-corp-old.crt"),
        "{}",
        link("catrust-corp-old.pem")
    );
    assert!(link("proxyCA.pem").ends_with(aks_proxy));
    assert!(link("aks-custom-0.pem").ends_with(aks_custom));
    assert!(
        !h.path(old_anchor).exists(),
        "the old name was not migrated"
    );
    let foreign_after: Vec<Vec<u8>> = [aks_proxy, aks_custom, same_name]
        .iter()
        .map(|f| h.read(f))
        .collect();
    assert_eq!(foreign_before, foreign_after, "a foreign anchor changed");
    let gen = h.generated_bundle();
    for leaf in [&p.leaf_old, &p.leaf_sys, &p.leaf_new, &p.leaf_foreign] {
        assert!(TlsServer::start(leaf).trusted_by(&gen));
    }
    let st = status(h.root(), Some(&vol.dir));
    assert_eq!(st["ready"], true, "{st}");
    assert_eq!(
        st["files"],
        serde_json::json!(["usr/local/share/ca-certificates/catrust/catrust-corp-old.crt"])
    );
}

/// containerd's config decides where `hosts.toml` goes. With `config_path = ""` (the
/// 1.6/1.7 default) certs.d is not read: the agent says so in `status` and falls back to
/// the system store plus a restart under `registries-only`; with a list it writes under
/// the first entry; a path outside the host root is refused, not followed.
#[test]
fn the_containerd_config_decides_where_registry_cas_go() {
    let p = pki();
    let registry = "registry.corp:5000";
    let cfg = |path: &str| {
        format!("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"{path}\"\n")
    };
    let (v1, _) = one_ca(
        "corp-registry",
        &p.old,
        &[registry],
        ContainerdPolicy::RegistriesOnly,
    );

    // certs.d off: no hosts.toml anywhere, the CA in the store, containerd restarted.
    let h = TestHost::debian();
    h.write("etc/containerd/config.toml", cfg(""));
    let vols = tempfile::tempdir().unwrap();
    let vol = SecretVolume::new(&vols.path().join("bundle"));
    vol.write(&v1);
    let flags = host_flags(h.root(), &vol.dir);
    assert_ok(&apply_once(&flags, &[]), "catrust-agent");
    assert!(!h.path("etc/containerd/certs.d").exists());
    assert!(TlsServer::start(&p.leaf_old).trusted_by(&h.generated_bundle()));
    assert_eq!(
        h.containerd_restarts(),
        1,
        "registries-only without certs.d must restart"
    );
    let st = status(h.root(), Some(&vol.dir));
    assert_eq!(st["ready"], true, "{st}");
    assert!(
        st["warnings"]
            .to_string()
            .contains("containerd reads no certs.d"),
        "{st}"
    );

    // EKS's list: the first entry.
    let h = TestHost::debian();
    h.write(
        "etc/containerd/config.toml",
        cfg("/etc/docker/certs.d:/etc/containerd/certs.d"),
    );
    let flags = host_flags(h.root(), &vol.dir);
    assert_ok(&apply_once(&flags, &[]), "catrust-agent");
    let hosts =
        String::from_utf8(h.read(&format!("etc/docker/certs.d/{registry}/hosts.toml"))).unwrap();
    assert!(hosts.contains("catrust-corp-registry.crt"), "{hosts}");
    assert!(!h.path("etc/containerd/certs.d").exists());
    assert_eq!(h.containerd_restarts(), 0);

    // A config_path leaving the host root: not ready, nothing written.
    let h = TestHost::debian();
    h.write("etc/containerd/config.toml", cfg("/etc/../../tmp/x"));
    let before = h.node_snapshot();
    let flags = host_flags(h.root(), &vol.dir);
    let out = apply_once(&flags, &[]);
    assert!(!out.status.success());
    let st = status(h.root(), Some(&vol.dir));
    assert!(st["reason"].to_string().contains("config_path"), "{st}");
    let mut after = h.node_snapshot();
    after.retain(|k, _| !k.starts_with("var/lib/catrust"));
    let mut before = before;
    before.retain(|k, _| !k.starts_with("var/lib/catrust"));
    assert!(
        diff(&before, &after).is_empty(),
        "{:?}",
        diff(&before, &after)
    );
}

/// Flux prunes the previous bundle Secret before the rollout is done, and kubelet then
/// stops updating (or, on a remount, never fills) the volume. Whatever happens to the
/// bundle folder under a running agent, it never removes trust: the installed anchors
/// stay byte for byte, the host still trusts the CA, `/readyz` and `status` say why
/// the node is not ready, and a bundle that comes back is installed again.
#[test]
fn a_bundle_folder_that_disappears_or_goes_stale_never_removes_trust() {
    let p = pki();
    let h = TestHost::debian();
    h.refresh();
    let gen = h.generated_bundle();
    let s_old = TlsServer::start(&p.leaf_old);
    let s_new = TlsServer::start(&p.leaf_new);
    let vols = tempfile::tempdir().unwrap();
    let vol = SecretVolume::new(&vols.path().join("bundle"));
    let flags = host_flags(h.root(), &vol.dir);
    let ca = |name, cert| Ca {
        name,
        cert,
        registries: &[],
    };
    let (v1, h1) = bundle(&[ca("corp-old", &p.old)], &[], ContainerdPolicy::None);
    let (v2, h2) = bundle(
        &[ca("corp-old", &p.old), ca("corp-new", &p.new)],
        &[],
        ContainerdPolicy::None,
    );
    vol.write(&v1);
    let running = RunningAgent::start(&flags, &["--resync", "1s"]);
    running.wait_readyz(200, Duration::from_secs(10));
    assert!(s_old.trusted_by(&gen));
    let installed = h.node_snapshot();

    let keep_trust = |step: &str| {
        let body = running.wait_readyz(503, Duration::from_secs(10));
        // Two resyncs later nothing has changed on the host.
        std::thread::sleep(Duration::from_millis(2500));
        assert_eq!(
            diff(&installed, &h.node_snapshot()),
            Vec::<String>::new(),
            "{step}: the host changed"
        );
        assert!(
            s_old.trusted_by(&gen),
            "{step}: corp-old is no longer trusted"
        );
        let st = status(h.root(), Some(&vol.dir));
        assert_eq!(st["ready"], false, "{step}: {st}");
        assert_eq!(st["installed"].as_str(), Some(h1.as_str()), "{step}: {st}");
        let reason = st["reason"].as_str().unwrap_or_default().to_string();
        assert!(!reason.is_empty(), "{step}: status gives no reason: {st}");
        eprintln!("{step}: /readyz {body:?}, status reason {reason:?}");
        reason
    };

    // The `..data` link is gone (a volume being torn down).
    std::fs::remove_file(vol.dir.join("..data")).unwrap();
    keep_trust("..data removed");
    // The whole bundle folder is gone.
    std::fs::remove_dir_all(&vol.dir).unwrap();
    let reason = keep_trust("bundle folder removed");
    assert!(
        reason.contains(&vol.dir.display().to_string()),
        "the reason names the folder: {reason}"
    );
    // The folder is back, empty (kubelet re-creating the volume before its Secret
    // exists): still nothing removed.
    std::fs::create_dir_all(&vol.dir).unwrap();
    keep_trust("empty bundle folder");

    // A stale bundle: the folder keeps the old bundle while the pod expects another
    // (its Secret was pruned before the volume was updated).
    let vol = SecretVolume::new(&vol.dir);
    vol.write(&v1);
    drop(running);
    let running = RunningAgent::start(&flags, &["--resync", "1s", "--expected-sha256", &h2]);
    let body = running.wait_readyz(503, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        diff(&installed, &h.node_snapshot()),
        Vec::<String>::new(),
        "stale bundle: {body}"
    );
    assert!(s_old.trusted_by(&gen));

    // The new bundle arrives: installed within the watch latency.
    vol.write(&v2);
    running.wait_readyz(200, Duration::from_secs(10));
    assert!(s_new.trusted_by(&gen) && s_old.trusted_by(&gen));
    let st = status(h.root(), Some(&vol.dir));
    assert_eq!(st["installed"].as_str(), Some(h2.as_str()), "{st}");
}

/// A bundle of corp-old alone, no registry.
fn corp_old_only(p: &Pki) -> BTreeMap<String, Vec<u8>> {
    let ca = Ca {
        name: "corp-old",
        cert: &p.old,
        registries: &[],
    };
    bundle(&[ca], &[], ContainerdPolicy::Restart).0
}

/// Links under the host root are resolved as the host sees them: the state folder (or
/// a folder above it, or the anchors' parent) that is a link leaving the root is a
/// refusal that writes nothing anywhere; a link that stays inside is followed.
#[test]
fn links_out_of_the_host_root_are_refused() {
    let p = pki();
    let h = TestHost::debian();
    let gen = h.generated_bundle();
    h.refresh();
    let s_old = TlsServer::start(&p.leaf_old);
    // Outside the root: must never change.
    let outside = TestHost {
        tmp: tempfile::tempdir().unwrap(),
        family: "outside",
    };
    outside.write("keep", "outside the host root");
    let out_dir = outside.root().display().to_string();
    let vols = tempfile::tempdir().unwrap();
    let vol = SecretVolume::new(&vols.path().join("bundle"));
    let flags = host_flags(h.root(), &vol.dir);
    vol.write(&corp_old_only(&p));
    let relative_up = format!("../../../../../../../../../..{out_dir}");
    let cases: [(&str, &str, &str); 5] = [
        (
            "var/lib/catrust",
            &out_dir,
            "var/lib/catrust is a symlink to",
        ),
        ("var/lib", &out_dir, "var/lib is a symlink to"),
        ("var/lib", &relative_up, "leaves the host root"),
        (
            "usr/local/share/ca-certificates",
            &out_dir,
            "usr/local/share/ca-certificates is a symlink to",
        ),
        ("var/lib/catrust", "catrust", "more than 40 symlinks"),
    ];
    for (link, target, reason) in cases {
        let real = h.path(link);
        let moved = h.path(&format!("{link}.real"));
        if real.exists() {
            std::fs::rename(&real, &moved).unwrap();
        }
        std::os::unix::fs::symlink(target, &real).unwrap();
        let (before, before_out) = (h.node_snapshot(), outside.snapshot());
        let out = apply_once(&flags, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{link} -> {target}: {stderr}");
        assert!(stderr.contains(reason), "{link} -> {target}: {stderr}");
        assert_eq!(
            diff(&before_out, &outside.snapshot()),
            Vec::<String>::new(),
            "{link} -> {target}: written outside the host root"
        );
        assert_eq!(
            diff(&before, &h.node_snapshot()),
            Vec::<String>::new(),
            "{link} -> {target}: the host changed"
        );
        assert!(!s_old.trusted_by(&gen), "{link} -> {target}: installed");
        std::fs::remove_file(&real).unwrap();
        if moved.exists() {
            std::fs::rename(&moved, &real).unwrap();
        }
        let _ = std::fs::remove_dir_all(h.path("var/lib/catrust"));
    }

    // A link that stays inside the root is followed, as the host follows it.
    std::fs::create_dir_all(h.path("opt/catrust")).unwrap();
    std::os::unix::fs::symlink("../../opt/catrust", h.path("var/lib/catrust")).unwrap();
    let before_out = outside.snapshot();
    assert_ok(&apply_once(&flags, &[]), "catrust-agent");
    assert!(s_old.trusted_by(&gen));
    assert!(h.path("opt/catrust/state.json").is_file());
    assert_eq!(diff(&before_out, &outside.snapshot()), Vec::<String>::new());
}

/// `etc/os-release` links (absolute ones, and `..` above the root) are resolved under
/// the host root, never on the machine the agent runs on.
#[test]
fn os_release_is_read_under_the_host_root() {
    let p = pki();
    let gen_ok = |h: &TestHost| {
        h.path("etc/pki/ca-trust/source/anchors/catrust-corp-old.crt")
            .is_file()
    };
    for link in [
        "/usr/lib/os-release",
        "../../../../../../../../../../etc/azl-release",
    ] {
        let h = TestHost::rhel();
        let text = h.read("etc/os-release");
        std::fs::remove_file(h.path("etc/os-release")).unwrap();
        h.write("etc/azl-release", &text);
        std::fs::create_dir_all(h.path("usr/lib")).unwrap();
        // Two absolute hops: etc/os-release -> /usr/lib/os-release -> /etc/azl-release.
        std::os::unix::fs::symlink("/etc/azl-release", h.path("usr/lib/os-release")).unwrap();
        std::os::unix::fs::symlink(link, h.path("etc/os-release")).unwrap();
        let vols = tempfile::tempdir().unwrap();
        let vol = SecretVolume::new(&vols.path().join("bundle"));
        vol.write(&corp_old_only(&p));
        assert_ok(
            &apply_once(&host_flags(h.root(), &vol.dir), &[]),
            "catrust-agent",
        );
        assert!(
            gen_ok(&h),
            "etc/os-release -> {link}: not installed as RHEL"
        );
        let s_old = TlsServer::start(&p.leaf_old);
        assert!(s_old.trusted_by(&h.generated_bundle()));
    }
}
