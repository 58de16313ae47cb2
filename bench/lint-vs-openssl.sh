#!/usr/bin/env bash
# Linting 142 CAs: `catrust lint` (every rule of docs/rules.md, one process) beside what
# teams script today, a shell loop of `openssl x509 -noout -checkend 2592000` (expiry
# within 30 days, nothing else) over the same files. Both run in the same hyperfine
# invocation; the script prints catrust's mean wall time as a fraction of the loop's
# (goal: at most 0.01).
#
#   bench/lint-vs-openssl.sh            # the Mozilla set of Debian's ca-certificates
#   CA_DIR=/some/dir bench/lint-vs-openssl.sh
#
# Needs: hyperfine, openssl, python3, ca-certificates (apt-get install -y hyperfine).
set -euo pipefail
cd "$(dirname "$0")/.."
src=${CA_DIR:-/usr/share/ca-certificates/mozilla}
for tool in hyperfine openssl python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y $tool" >&2; exit 2; }
done
cargo build --release --quiet -p catrust
catrust=$PWD/target/release/catrust

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/certs"
n=0
{
  printf 'apiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\nmetadata:\n  name: bench\nspec:\n  authorities:\n'
  for f in "$src"/*.crt; do
    n=$((n + 1))
    cp "$f" "$work/certs/ca-$n.pem"
    printf '    - name: ca-%d\n      file: certs/ca-%d.pem\n' "$n" "$n"
  done
  # The agent target: the AKS list would stop at 10 (CT301).
  printf '  targets:\n    agent:\n      image: registry.example/catrust-agent:0.1.0\n'
} >"$work/trust.yaml"
count=$n
echo "certificates: $count (from $src)"
cd "$work"
"$catrust" lint --format json >lint.json || true
python3 -c 'import json; s=json.load(open("lint.json"))["summary"]; print("catrust lint findings:", s)'

# shellcheck disable=SC2016 # the loop is expanded by hyperfine's shell
hyperfine --warmup 3 --min-runs 10 --ignore-failure --export-json "$work/times.json" \
  --command-name "catrust lint ($count CAs)" "$catrust lint -f trust.yaml" \
  --command-name "openssl -checkend loop ($count files)" \
  'for f in certs/*.pem; do openssl x509 -noout -checkend 2592000 -in "$f" >/dev/null || true; done'

python3 - "$work/times.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
lint, loop = r[0]["mean"], r[1]["mean"]
print(f"catrust lint: {lint * 1000:.2f} ms   openssl loop: {loop * 1000:.1f} ms")
print(f"ratio catrust/openssl: {lint / loop:.4f}x (goal <= 0.01x)")
PY
