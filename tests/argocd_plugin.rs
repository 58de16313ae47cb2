//! The Argo CD plugin, run the way argocd-cmp-server runs it: in a copy of the app
//! folder without `.git`, with the environment the repo-server sets.

use std::path::Path;
use std::process::{Command, Output};

use catrust_tests::{bin, k8s, pki, run, workspace_root};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != ".git" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Runs `generate` in `repo/<source_path>` with the repo-server's variables.
fn generate(repo: &Path, source_path: &str, extra: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin("argocd-catrust-plugin"));
    cmd.arg("generate")
        .current_dir(repo.join(source_path))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("ARGOCD_APP_NAME", "corp-trust")
        .env("ARGOCD_APP_NAMESPACE", "argocd")
        .env(
            "ARGOCD_APP_REVISION",
            "0123456789abcdef0123456789abcdef01234567",
        )
        .env("ARGOCD_APP_SOURCE_PATH", source_path)
        .env(
            "ARGOCD_APP_SOURCE_REPO_URL",
            "https://git.example/platform/trust.git",
        )
        .env("ARGOCD_APP_SOURCE_TARGET_REVISION", "main")
        .env("KUBE_VERSION", "1.32.0")
        .env("KUBE_API_VERSIONS", "v1,apps/v1");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

fn app_repo() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    copy_dir(
        &workspace_root().join("examples/agent"),
        &repo.path().join("clusters/prod"),
    );
    repo
}

#[test]
fn generate_prints_only_valid_kubernetes_objects_and_nothing_on_stderr() {
    let repo = app_repo();
    let o = generate(repo.path(), "clusters/prod", &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.stderr.is_empty(),
        "stderr must be empty on success: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stream = String::from_utf8(o.stdout).unwrap();
    assert_eq!(
        stream.matches("\nkind: ").count() + usize::from(stream.starts_with("kind: ")),
        5,
        "{stream}"
    );
    assert!(!stream.contains("kind: List") && !stream.contains("Kustomization"));
    let file = repo.path().join("stream.yaml");
    std::fs::write(&file, &stream).unwrap();
    k8s::validate_strict(&[&file]);

    // The same objects as `catrust build --stdout` on the same folder, plus the
    // revision Argo CD rendered, in object metadata (never in a pod template).
    let cli = catrust_tests::catrust(&repo.path().join("clusters/prod"), &["build", "--stdout"]);
    let annotation = "    catrust.dev/source-commit: 0123456789abcdef0123456789abcdef01234567\n";
    assert_eq!(stream.matches(annotation).count(), 5, "{stream}");
    assert_eq!(
        String::from_utf8(cli.stdout).unwrap(),
        stream.replace(annotation, "")
    );
}

#[test]
fn settings_come_from_parameters_and_any_spelling_of_plugin_env() {
    let repo = app_repo();
    // `target: aks` is not declared in the agent example: an invocation error, no stdout.
    for env in [
        (
            "ARGOCD_APP_PARAMETERS",
            r#"[{"name":"target","string":"aks"}]"#,
        ),
        ("PARAM_TARGET", "aks"),
        ("ARGOCD_ENV_CATRUST_TARGET", "aks"),
        ("ARGOCD_ENV_TARGET", "aks"),
    ] {
        let o = generate(repo.path(), "clusters/prod", &[env]);
        assert_ne!(o.status.code(), Some(0), "{env:?}");
        assert!(o.stdout.is_empty());
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("aks"),
            "{env:?}"
        );
    }
    let o = generate(
        repo.path(),
        "clusters/prod",
        &[("ARGOCD_ENV_CATRUST_TARGET", "agent")],
    );
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn a_broken_trust_yaml_prints_nothing_on_stdout_and_a_coded_located_error() {
    let repo = app_repo();
    let trust = repo.path().join("clusters/prod/trust.yaml");
    let text = std::fs::read_to_string(&trust).unwrap();
    std::fs::write(
        &trust,
        text.replace(
            "      file: certs/proxy-ca.pem",
            "      fiel: certs/proxy-ca.pem",
        ),
    )
    .unwrap();
    let o = generate(repo.path(), "clusters/prod", &[]);
    assert_ne!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty(), "stdout must be empty on failure");
    let stderr = String::from_utf8(o.stderr).unwrap();
    assert!(
        stderr.contains("clusters/prod/trust.yaml:13:7: error[CT002]: unknown field `fiel`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `file`?"));
}

#[test]
fn errors_never_carry_key_or_certificate_material() {
    let repo = app_repo();
    let dir = repo.path().join("clusters/prod/certs");
    let ca = pki::make_ca(&dir, "leaky", 3650);
    let key = std::fs::read_to_string(&ca.key).unwrap();
    std::fs::write(dir.join("proxy-ca.pem"), format!("{}{key}", ca.pem())).unwrap();
    let o = generate(repo.path(), "clusters/prod", &[]);
    assert_ne!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty());
    let stderr = String::from_utf8(o.stderr).unwrap();
    assert!(stderr.contains("CT105"), "{stderr}");
    for line in key
        .lines()
        .chain(ca.pem().lines())
        .filter(|l| !l.starts_with("-----"))
    {
        assert!(!stderr.contains(line), "stderr leaks `{line}`:\n{stderr}");
    }
}

#[test]
fn parameters_announce_target_and_file_with_defaults() {
    let o = run(Command::new(bin("argocd-catrust-plugin")).arg("parameters"));
    assert!(o.status.success());
    let announced: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let by_name = |n: &str| {
        announced
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_name("target")["string"], "all");
    assert_eq!(by_name("file")["string"], "trust.yaml");
}

#[test]
fn the_component_patches_a_repo_server_offline_into_a_valid_deployment() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &workspace_root().join("plugin-argocd/install"),
        &dir.path().join("catrust"),
    );
    std::fs::write(
        dir.path().join("repo-server.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: argocd-repo-server\nspec:\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: argocd-repo-server\n  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: argocd-repo-server\n    spec:\n      containers:\n        - name: argocd-repo-server\n          image: quay.io/argoproj/argocd:v2.13.0\n      volumes:\n        - name: var-files\n          emptyDir: {}\n        - name: plugins\n          emptyDir: {}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - repo-server.yaml\ncomponents:\n  - catrust\n",
    )
    .unwrap();
    let rendered = k8s::kustomize(dir.path());
    for needle in [
        "name: catrust\n",
        "- /var/run/argocd/argocd-cmp-server",
        "runAsUser: 999",
        "mountPath: /home/argocd/cmp-server/plugins",
        "mountPath: /var/run/argocd",
        "mountPath: /tmp",
        "subPath: plugin.yaml",
        "kind: ConfigManagementPlugin",
        "name: argocd-repo-server\n",
    ] {
        assert!(
            rendered.contains(needle),
            "rendered repo-server lacks `{needle}`:\n{rendered}"
        );
    }
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, &rendered).unwrap();
    k8s::validate_strict(&[&file]);
}
