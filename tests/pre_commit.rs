//! pre-commit as a new user meets it: a fresh git repository, the hook configured with
//! `pre-commit install`, a bad trust.yaml staged. The commit is refused with the coded,
//! spanned finding; the fixed file commits.
//!
//! The hook here is `repo: local` with `language: system` pointing at the built binary:
//! the shipped `language: rust` hook runs the same program after a `cargo install` of
//! this repository (minutes of compiling, so not in the test suite). Its `files` regex
//! is read from `.pre-commit-hooks.yaml`, so the two cannot drift. The entry is the
//! shipped `lint --staged` when this build has `--staged`, `lint -f trust.yaml`
//! otherwise.

use std::path::Path;
use std::process::{Command, Output};

use catrust_tests::{bin, require_tool, run, workspace_root};

fn manifest() -> String {
    std::fs::read_to_string(workspace_root().join(".pre-commit-hooks.yaml"))
        .expect(".pre-commit-hooks.yaml at the repository root")
}

/// The value of `key:` in the hook `id` of the manifest (a plain, one-line value).
fn hook_field(manifest: &str, id: &str, key: &str) -> String {
    let hook = manifest
        .split("- id: ")
        .find(|h| h.starts_with(id))
        .unwrap_or_else(|| panic!("no hook {id}"));
    hook.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("hook {id} has no {key}"))
        .to_string()
}

fn git(repo: &Path, args: &[&str]) -> Output {
    let git = require_tool("git", "git");
    run(Command::new(git)
        .args(args)
        .current_dir(repo)
        .env("GIT_AUTHOR_NAME", "New User")
        .env("GIT_AUTHOR_EMAIL", "new.user@example.invalid")
        .env("GIT_COMMITTER_NAME", "New User")
        .env("GIT_COMMITTER_EMAIL", "new.user@example.invalid")
        .env("PRE_COMMIT_HOME", repo.join("../pre-commit-home"))
        .env("NO_COLOR", "1"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_hook_manifest_is_valid_and_ships_both_hooks() {
    let pre_commit = require_tool("pre-commit", "pre-commit");
    let out = run(Command::new(pre_commit)
        .args(["validate-manifest", ".pre-commit-hooks.yaml"])
        .current_dir(workspace_root()));
    assert!(out.status.success(), "{}", text(&out));
    let m = manifest();
    for (id, args) in [
        ("catrust-lint", "lint --staged"),
        ("catrust-build-check", "build --check"),
    ] {
        assert_eq!(hook_field(&m, id, "language"), "rust");
        assert_eq!(hook_field(&m, id, "pass_filenames"), "false");
        let entry = hook_field(&m, id, "entry");
        let (program, rest) = entry.split_once(' ').unwrap();
        assert_eq!(rest, args);
        // `cargo install --path .` at the root installs this binary.
        assert!(bin(program).exists());
    }
}

#[test]
fn a_new_user_commit_is_refused_then_accepted_once_fixed() {
    let pre_commit = require_tool("pre-commit", "pre-commit");
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("certs")).unwrap();
    assert!(git(&repo, &["init", "-q", "-b", "main"]).status.success());
    git(&repo, &["config", "commit.gpgsign", "false"]);

    let catrust = bin("catrust");
    let help = run(Command::new(&catrust).args(["lint", "--help"]));
    let has_staged = String::from_utf8_lossy(&help.stdout).contains("--staged");
    let args = if has_staged {
        "lint --staged"
    } else {
        "lint -f trust.yaml"
    };
    let files = hook_field(&manifest(), "catrust-lint", "files");
    std::fs::write(
        repo.join(".pre-commit-config.yaml"),
        format!(
            "repos:\n  - repo: local\n    hooks:\n      - id: catrust-lint\n        name: catrust lint\n        entry: '{} {args}'\n        language: system\n        pass_filenames: false\n        files: '{files}'\n",
            catrust.display()
        ),
    )
    .unwrap();
    let out = run(Command::new(&pre_commit)
        .arg("install")
        .current_dir(&repo)
        .env("PRE_COMMIT_HOME", tmp.path().join("pre-commit-home")));
    assert!(out.status.success(), "pre-commit install: {}", text(&out));

    std::fs::copy(
        workspace_root().join("tests/corpus/_pki/root-01.pem"),
        repo.join("certs/corp-root.pem"),
    )
    .unwrap();
    let good = "apiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\nmetadata:\n  name: corp\nspec:\n  authorities:\n    - name: corp-root\n      file: certs/corp-root.pem\n      registries: [registry.corp.example]\n  targets:\n    aks:\n      resourceGroup: rg\n      cluster: aks\n";
    // A new user's typo: `registry` for `registries`.
    let bad = good.replace("registries:", "registry:");
    std::fs::write(repo.join("trust.yaml"), &bad).unwrap();
    git(&repo, &["add", "-A"]);
    let refused = git(&repo, &["commit", "-m", "trust the corp root"]);
    let output = text(&refused);
    assert!(
        !refused.status.success(),
        "the bad commit went through:\n{output}"
    );
    assert!(output.contains("CT002"), "{output}");
    assert!(output.contains("registries"), "no suggestion:\n{output}");
    assert!(output.contains("[trust.yaml:9:7]"), "no span:\n{output}");
    assert!(
        output.contains("registry: [registry.corp.example]"),
        "no quoted line:\n{output}"
    );
    let log = git(&repo, &["rev-list", "--all", "--count"]);
    assert_eq!(String::from_utf8_lossy(&log.stdout).trim(), "0");

    std::fs::write(repo.join("trust.yaml"), good).unwrap();
    git(&repo, &["add", "-A"]);
    let accepted = git(&repo, &["commit", "-m", "trust the corp root"]);
    assert!(accepted.status.success(), "{}", text(&accepted));
    assert!(
        text(&accepted).contains("catrust lint"),
        "{}",
        text(&accepted)
    );
    let log = git(&repo, &["rev-list", "--all", "--count"]);
    assert_eq!(String::from_utf8_lossy(&log.stdout).trim(), "1");
}
