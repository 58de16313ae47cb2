//! Every shipped example builds, and what the Argo CD and Flux examples point at exists.

use std::path::Path;

use catrust_tests::{catrust, k8s, workspace_root};
use serde_json::Value;

fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_example_with_a_trust_yaml_lints_clean_and_builds() {
    let tmp = tempfile::tempdir().unwrap();
    let mut built = 0;
    for entry in std::fs::read_dir(workspace_root().join("examples"))
        .unwrap()
        .flatten()
    {
        let trust = entry.path().join("trust.yaml");
        if !trust.exists() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let lint = catrust(
            &workspace_root(),
            &["lint", "-f", trust.to_str().unwrap(), "--format", "json"],
        );
        let report: Value = serde_json::from_slice(&lint.stdout).unwrap();
        assert_eq!(report["summary"]["errors"], 0, "{name}: {report:#}");
        let out = tmp.path().join(&name);
        let o = catrust(
            &workspace_root(),
            &[
                "build",
                "-f",
                trust.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        k8s::kustomize(&out);
        built += 1;
    }
    assert!(built >= 3, "basic, aks and agent at least");
}

#[test]
fn the_committed_agent_render_is_up_to_date() {
    let o = catrust(
        &workspace_root(),
        &[
            "build",
            "-f",
            "examples/agent/trust.yaml",
            "--check",
            "--out",
            "examples/agent/rendered",
        ],
    );
    assert!(o.status.success(), "run `cargo run -p catrust -- build -f examples/agent/trust.yaml --out examples/agent/rendered`: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn the_argocd_application_names_the_plugin_and_a_folder_with_a_trust_yaml() {
    let plugin = &yaml_docs(&workspace_root().join("plugin-argocd/plugin.yaml"))[0];
    let expected = format!(
        "{}-{}",
        plugin["metadata"]["name"].as_str().unwrap(),
        plugin["spec"]["version"].as_str().unwrap()
    );
    let app = &yaml_docs(&workspace_root().join("examples/argocd/application.yaml"))[0];
    assert_eq!(app["kind"], "Application");
    assert_eq!(
        app["spec"]["source"]["plugin"]["name"].as_str().unwrap(),
        expected
    );
    let path = app["spec"]["source"]["path"].as_str().unwrap();
    assert!(workspace_root()
        .join(path)
        .join(plugin["spec"]["discover"]["fileName"].as_str().unwrap())
        .exists());
    let kustomization =
        std::fs::read_to_string(workspace_root().join("examples/argocd/kustomization.yaml"))
            .unwrap();
    assert!(kustomization.contains("../../plugin-argocd/install"));
    assert!(workspace_root()
        .join("examples/argocd/../../plugin-argocd/install/kustomization.yaml")
        .exists());
}

#[test]
fn the_flux_kustomizations_health_check_the_daemonsets_that_are_rendered() {
    let rendered: Vec<Value> = serde_saphyr::from_multiple(&k8s::kustomize(
        &workspace_root().join("examples/agent/rendered"),
    ))
    .unwrap();
    let daemonsets: Vec<&str> = rendered
        .iter()
        .filter(|d| d["kind"] == "DaemonSet")
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    for file in ["gitrepository.yaml", "ocirepository.yaml"] {
        let docs = yaml_docs(&workspace_root().join("examples/flux").join(file));
        let agent = docs
            .iter()
            .find(|d| d["kind"] == "Kustomization" && d["metadata"]["name"] == "catrust-agent")
            .unwrap();
        assert_eq!(agent["spec"]["wait"], true);
        let checks = agent["spec"]["healthChecks"].as_array().unwrap();
        assert_eq!(checks.len(), 2);
        for check in checks {
            assert_eq!(check["kind"], "DaemonSet");
            let name = check["name"].as_str().unwrap();
            assert!(
                daemonsets.contains(&name),
                "{file}: no DaemonSet {name} in the render: {daemonsets:?}"
            );
        }
        let apps = docs
            .iter()
            .find(|d| d["metadata"]["name"] == "apps")
            .unwrap();
        assert_eq!(apps["spec"]["dependsOn"][0]["name"], "catrust-agent");
        if file == "gitrepository.yaml" {
            let path = agent["spec"]["path"].as_str().unwrap();
            assert!(
                workspace_root()
                    .join(path)
                    .join("kustomization.yaml")
                    .exists(),
                "{path}"
            );
        }
    }
}

#[test]
fn the_rotation_example_refuses_the_early_removal_and_allows_the_late_one() {
    catrust_tests::require_tool("git", "git");
    let o = catrust_tests::run(
        std::process::Command::new("bash")
            .arg(workspace_root().join("examples/rotation/run.sh"))
            .arg(catrust_tests::bin("catrust")),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("catrust plan exited 1"), "{out}");
    assert!(
        out.contains("can be removed from "),
        "the plan names the date: {out}"
    );
    assert!(out.contains("catrust plan exited 0"), "{out}");
    assert!(out.contains("Rotation (CT401): ok."));
}
