//! Checks with the real Kubernetes tooling: `kubectl kustomize` and
//! `kubernetes-validate --strict` (PyPI), both offline.

use std::path::Path;
use std::process::Command;

use crate::{require_tool, run};

/// The Kubernetes version manifests are validated against.
pub const KUBE_VERSION: &str = "1.32.0";

/// Validates every YAML file given with `kubernetes-validate --strict`.
pub fn validate_strict(files: &[&Path]) {
    validate_strict_for(KUBE_VERSION, files);
}

/// [`validate_strict`] against another Kubernetes version (an API newer than
/// [`KUBE_VERSION`], such as `certificates.k8s.io/v1beta1` from 1.33).
pub fn validate_strict_for(version: &str, files: &[&Path]) {
    let tool = require_tool(
        "kubernetes-validate",
        "the PyPI package kubernetes-validate (pip install kubernetes-validate)",
    );
    let out = run(Command::new(tool)
        .args(["--strict", "-k", version])
        .args(files));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "kubernetes-validate failed:\n{text}");
    assert!(
        !text.contains("ERROR"),
        "kubernetes-validate reported errors:\n{text}"
    );
}

/// `kubectl kustomize DIR`, which must succeed; returns the rendered stream.
pub fn kustomize(dir: &Path) -> String {
    let tool = require_tool("kubectl", "kubectl (it brings kustomize)");
    let out = run(Command::new(tool).arg("kustomize").arg(dir));
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("kustomize prints UTF-8")
}
