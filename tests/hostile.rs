//! Hostile input (issue 12): trust.yaml and its files come from pull requests, and the
//! Argo CD plugin runs on any repository. Each test here failed before its fix:
//! nothing is written outside `--out`, deep nesting is a coded CT001 and no crash,
//! no report quotes key material, reads are bounded and never block.

use std::path::Path;
use std::process::{Command, Output};

use catrust_tests::{bin, catrust, run, snapshot_tree, workspace_root};

const HEADER: &str = "apiVersion: catrust.dev/v1alpha1
kind: TrustConfig
metadata:
  name: corp
";

fn agent_target() -> &'static str {
    "  targets:\n    agent:\n      image: registry.example/catrust-agent:1.0.0\n"
}

/// `dir/trust.yaml` with `authorities` (YAML lines under `spec.authorities`) and root-01.
fn write_repo(dir: &Path, authorities: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(
        workspace_root().join("tests/corpus/_pki/root-01.pem"),
        dir.join("root.pem"),
    )
    .unwrap();
    std::fs::write(
        dir.join("trust.yaml"),
        format!(
            "{HEADER}spec:\n  authorities:\n{authorities}{}",
            agent_target()
        ),
    )
    .unwrap();
}

/// The Argo CD plugin's `generate` in `dir`, as argocd-cmp-server runs it.
fn plugin(dir: &Path) -> Output {
    run(Command::new(bin("argocd-catrust-plugin"))
        .arg("generate")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("ARGOCD_APP_NAME", "corp-trust")
        .env("ARGOCD_APP_NAMESPACE", "argocd")
        .env("ARGOCD_APP_SOURCE_PATH", ".")
        .env("ARGOCD_ENV_CATRUST_TARGET", "agent"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_pool_name_never_becomes_a_path_outside_out() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("a/b/repo");
    write_repo(
        &repo,
        "    - name: corp-root\n      file: root.pem\n      pools: [\"/../../../../x\"]\n",
    );
    let before = snapshot_tree(tmp.path());
    let out = catrust(&repo, &["build", "--out", "out"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("CT008"), "{}", text(&out.stderr));
    assert_eq!(snapshot_tree(tmp.path()), before, "build wrote something");
    let o = plugin(&repo);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(o.stdout.is_empty());
    assert!(
        text(&o.stderr).contains("error[CT008]"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn deep_nesting_is_a_coded_error_in_lint_build_and_the_plugin() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, nest) in [
        ("block", format!("x-nest:\n  {}x\n", "- ".repeat(20_000))),
        (
            "flow",
            format!("x-nest: {}x{}\n", "[".repeat(20_000), "]".repeat(20_000)),
        ),
        (
            "mapping",
            (0..1_000)
                .map(|i| format!("{}k:\n", " ".repeat(i)))
                .collect::<String>(),
        ),
    ] {
        let repo = tmp.path().join(name);
        write_repo(&repo, "    - name: corp-root\n      file: root.pem\n");
        let trust = repo.join("trust.yaml");
        let yaml = std::fs::read_to_string(&trust).unwrap();
        std::fs::write(&trust, format!("{yaml}  {}", nest.replace('\n', "\n  "))).unwrap();
        for args in [
            &["lint"][..],
            &["lint", "--format", "json"],
            &["build", "--out", "out"],
        ] {
            let o = catrust(&repo, args);
            assert_eq!(o.status.code(), Some(1), "{name} {args:?}: {o:?}");
            assert!(
                text(&o.stdout).contains("CT001") || text(&o.stderr).contains("CT001"),
                "{name} {args:?}"
            );
        }
        assert!(!repo.join("out").exists());
        let o = plugin(&repo);
        assert_eq!(o.status.code(), Some(1), "{name} plugin: {o:?}");
        assert!(
            text(&o.stderr).contains("error[CT001]"),
            "{}",
            text(&o.stderr)
        );
    }
}
