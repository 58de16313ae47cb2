#!/usr/bin/env bash
# Lays out the benchmark input in DIR: a trust.yaml naming Debian's 142 Mozilla CA
# certificates (aks target, Secret only: more than 10 CAs), and a kustomize
# secretGenerator over the same files, which is what a user would run instead.
set -euo pipefail
dir=${1:?usage: mozilla-fixture.sh DIR}
src=/usr/share/ca-certificates/mozilla
[ -d "$src" ] || { echo "no $src: apt-get install -y ca-certificates" >&2; exit 2; }
mkdir -p "$dir/certs" "$dir/kustomize"
i=0
{
  printf 'apiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\nmetadata:\n  name: mozilla\nspec:\n  authorities:\n'
  for f in "$src"/*.crt; do
    i=$((i + 1))
    name=$(printf 'ca-%03d' "$i")
    cp "$f" "$dir/certs/$name.pem"
    printf '    - name: %s\n      file: certs/%s.pem\n' "$name" "$name"
  done
  printf '  targets:\n    aks:\n      resourceGroup: rg\n      cluster: c\n      certificatesFile: false\n      secret: true\n'
} > "$dir/trust.yaml"
{
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nsecretGenerator:\n- name: custom-ca-trust-secret\n  namespace: kube-system\n  type: Opaque\n  options:\n    disableNameSuffixHash: true\n  files:\n'
  for f in "$dir"/certs/*.pem; do
    b=$(basename "$f" .pem)
    printf '  - %s.crt=certs/%s.pem\n' "$b" "$b"
  done
} > "$dir/kustomize/kustomization.yaml"
# kustomize reads only files below its own folder.
cp -r "$dir/certs" "$dir/kustomize/certs"
echo "$i"
