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
