//! `catrust build` for the agent target: valid manifests, one bundle per pool group.

use catrust_tests::{catrust, k8s, workspace_root};

#[test]
fn the_agent_example_renders_valid_manifests_per_pool_group() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = catrust(
        &workspace_root(),
        &[
            "build",
            "-f",
            "examples/agent/trust.yaml",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let files: Vec<_> = std::fs::read_dir(out.join("agent"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 5, "{files:?}");
    let refs: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    k8s::validate_strict(&refs);
    let stream = k8s::kustomize(&out);

    // Each DaemonSet mounts the Secret whose hash its pod template announces.
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("catrust.lock.json")).unwrap()).unwrap();
    let bundles = lock["agentBundles"].as_array().unwrap();
    assert_eq!(bundles.len(), 2);
    for b in bundles {
        let secret = b["secret"].as_str().unwrap();
        let sha = b["sha256"].as_str().unwrap();
        assert_eq!(&secret[secret.len() - 10..], &sha[..10]);
        assert!(stream.contains(&format!("catrust.dev/bundle-sha256: {sha}")));
        assert!(stream.contains(&format!("secretName: {secret}")));
    }
    let gpu = std::fs::read_to_string(out.join("agent/daemonset-gpu.yaml")).unwrap();
    assert!(gpu.contains("operator: In") && gpu.contains("- gpu"));
    let other = std::fs::read_to_string(out.join("agent/daemonset-other-pools.yaml")).unwrap();
    assert!(other.contains("operator: NotIn"));
    // Nothing that changes per commit in a pod template; RollingUpdate with maxUnavailable.
    assert!(gpu.contains("maxUnavailable: 10%") && gpu.contains("type: RollingUpdate"));
    assert!(gpu.contains("- operator: Exists"));
    let gpu_secret = std::fs::read_to_string(out.join("agent/bundle-secret-gpu.yaml")).unwrap();
    assert!(gpu_secret.contains("immutable: true") && gpu_secret.contains("PruneLast=true"));
    assert!(
        gpu_secret.contains("gpu-registry-ca.crt:")
            && !std::fs::read_to_string(out.join("agent/bundle-secret-other-pools.yaml"))
                .unwrap()
                .contains("gpu-registry-ca.crt:")
    );
}

#[test]
fn an_unchanged_trust_set_keeps_the_same_bundle_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let a = catrust(
        &workspace_root(),
        &["build", "-f", "examples/agent/trust.yaml", "--stdout"],
    );
    // The same trust with another image: the bundle (and so the node rollout) is the same.
    let src = std::fs::read_to_string(workspace_root().join("examples/agent/trust.yaml")).unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    for f in std::fs::read_dir(workspace_root().join("examples/agent/certs"))
        .unwrap()
        .flatten()
    {
        std::fs::copy(f.path(), dir.join("certs").join(f.file_name())).unwrap();
    }
    std::fs::write(
        dir.join("trust.yaml"),
        src.replace("catrust-agent:0.1.0", "catrust-agent:0.1.1"),
    )
    .unwrap();
    let b = catrust(dir, &["build", "--stdout"]);
    let hashes = |o: &std::process::Output| -> Vec<String> {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.contains("catrust.dev/bundle-sha256: "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(hashes(&a), hashes(&b));
    assert_eq!(hashes(&a).len(), 2);
}

/// The DaemonSet → agent interface: the rendered container `args` parse with the agent's
/// own command line, every environment variable the DaemonSet sets is one the agent
/// reads, and the probes reach the port the agent listens on.
#[test]
fn the_rendered_args_env_and_port_are_what_the_agent_accepts() {
    use catrust_agent::cli::{Cli, Cmd, HostExec};
    use clap::{CommandFactory, Parser};

    let o = catrust(
        &workspace_root(),
        &["build", "-f", "examples/agent/trust.yaml", "--stdout"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&String::from_utf8_lossy(&o.stdout)).unwrap();
    let daemonsets: Vec<&serde_json::Value> =
        docs.iter().filter(|d| d["kind"] == "DaemonSet").collect();
    assert_eq!(daemonsets.len(), 2);
    let cli = Cli::command();
    let run = cli
        .get_subcommands()
        .find(|c| c.get_name() == "run")
        .expect("the agent has a run subcommand");
    let agent_env: Vec<String> = run
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    for ds in daemonsets {
        let pod = &ds["spec"]["template"];
        let c = &pod["spec"]["containers"][0];
        let args: Vec<&str> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let parsed = Cli::try_parse_from(std::iter::once("catrust-agent").chain(args.clone()))
            .unwrap_or_else(|e| panic!("the agent rejects the rendered args {args:?}: {e}"));
        let Cmd::Run {
            host,
            listen,
            bundle,
            ..
        } = parsed.command
        else {
            panic!("the DaemonSet does not run `run`: {args:?}");
        };
        assert_eq!(host.host_exec, HostExec::Nsenter);
        // The bundle volume is mounted where --bundle-dir points.
        let mounts = c["volumeMounts"].as_array().unwrap();
        assert!(
            mounts
                .iter()
                .any(|m| m["name"] == "bundle"
                    && m["mountPath"].as_str() == bundle.bundle_dir.to_str()),
            "{mounts:?}"
        );
        // Every variable set is read by the agent; the expected hash is the annotation.
        for e in c["env"].as_array().unwrap() {
            let name = e["name"].as_str().unwrap();
            assert!(
                agent_env.iter().any(|a| a == name),
                "the DaemonSet sets {name}, which the agent never reads ({agent_env:?})"
            );
        }
        let expected = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == catrust_bundle::agent_interface::ENV_EXPECTED_SHA256)
            .expect("the expected hash is passed");
        let annotation = catrust_bundle::agent_interface::BUNDLE_ANNOTATION;
        assert_eq!(
            expected["valueFrom"]["fieldRef"]["fieldPath"],
            format!("metadata.annotations['{annotation}']")
        );
        assert!(pod["metadata"]["annotations"][annotation].is_string());
        // The probes' named port is the one the agent listens on.
        let port: u16 = listen.rsplit_once(':').unwrap().1.parse().unwrap();
        assert_eq!(c["ports"][0]["containerPort"], port);
        assert_eq!(
            c["ports"][0]["name"],
            c["readinessProbe"]["httpGet"]["port"]
        );
        assert_eq!(port, catrust_bundle::agent_interface::PORT);
        // What a node needs (README, "What the DaemonSet needs on a node"): the host
        // through PID 1's root and no hostPath the kubelet would have to create; the
        // host network; AppArmor unconfined for old and new API servers alike;
        // readiness seen by a rollout wave within 2 s.
        assert_eq!(host.host_root.to_str(), Some("/proc/1/root"));
        let spec = &pod["spec"];
        assert_eq!(spec["hostPID"], true);
        assert_eq!(spec["hostNetwork"], true);
        let volumes = spec["volumes"].as_array().unwrap();
        assert!(
            volumes.iter().all(|v| v.get("hostPath").is_none()),
            "{volumes:?}"
        );
        assert_eq!(
            pod["metadata"]["annotations"]["container.apparmor.security.beta.kubernetes.io/agent"],
            "unconfined"
        );
        assert_eq!(
            c["securityContext"]["appArmorProfile"]["type"],
            "Unconfined"
        );
        assert!(c["readinessProbe"]["periodSeconds"].as_u64().unwrap() <= 2);
        let caps = &c["securityContext"]["capabilities"];
        assert_eq!(caps["drop"], serde_json::json!(["ALL"]));
        assert_eq!(
            caps["add"],
            serde_json::json!(["SYS_ADMIN", "SYS_CHROOT", "SYS_PTRACE", "DAC_OVERRIDE"])
        );
    }
}
