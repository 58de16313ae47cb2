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
    assert!(workspace_root().join(path).join("trust.yaml").exists());
    let kustomization =
        std::fs::read_to_string(workspace_root().join("examples/argocd/kustomization.yaml"))
            .unwrap();
    assert!(kustomization.contains("../../plugin-argocd/install"));
    assert!(workspace_root()
        .join("examples/argocd/../../plugin-argocd/install/kustomization.yaml")
        .exists());
}

#[test]
fn the_flux_kustomizations_wait_for_the_daemonsets_that_are_rendered() {
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
        // `wait` checks every applied object (each DaemonSet included) and makes Flux
        // ignore `healthChecks`: the examples set `wait` only.
        assert_eq!(agent["spec"]["wait"], true, "{file}");
        assert!(agent["spec"].get("healthChecks").is_none(), "{file}");
        assert!(!daemonsets.is_empty());
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

/// Every Flux example validates strictly against the vendored upstream CRD schemas
/// (tests/fixtures/schemas/crds, source-controller and kustomize-controller 1.9), so
/// each uses a served API version (`v1`) and no field Flux does not know.
#[test]
fn the_flux_examples_validate_strictly_against_the_upstream_schemas() {
    use catrust_tests::schema;
    let mut kinds = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(workspace_root().join("examples/flux"))
        .unwrap()
        .flatten()
    {
        let label = entry.file_name().to_string_lossy().into_owned();
        for (i, doc) in yaml_docs(&entry.path()).into_iter().enumerate() {
            let file = match (doc["apiVersion"].as_str(), doc["kind"].as_str()) {
                (Some("source.toolkit.fluxcd.io/v1"), Some("GitRepository")) => {
                    "crds/source.toolkit.fluxcd.io_GitRepository_v1.json"
                }
                (Some("source.toolkit.fluxcd.io/v1"), Some("OCIRepository")) => {
                    "crds/source.toolkit.fluxcd.io_OCIRepository_v1.json"
                }
                (Some("kustomize.toolkit.fluxcd.io/v1"), Some("Kustomization")) => {
                    "crds/kustomize.toolkit.fluxcd.io_Kustomization_v1.json"
                }
                other => panic!("{label}#{i}: {other:?} is not a served Flux API"),
            };
            kinds.insert(doc["kind"].as_str().unwrap().to_string());
            schema::validate(&schema::schema_path(file), &[(format!("{label}#{i}"), doc)]);
        }
    }
    assert_eq!(kinds.len(), 3, "{kinds:?}");
}
