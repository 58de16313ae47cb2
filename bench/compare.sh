#!/usr/bin/env bash
# Whole-process comparisons against the tool a user would run instead, in one run,
# printed as ratios. Needs: hyperfine, GNU time (/usr/bin/time), kubectl.
#   bench/compare.sh            # builds catrust in release mode first
set -euo pipefail
cd "$(dirname "$0")/.."
for t in hyperfine kubectl /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "missing $t: apt-get install -y hyperfine time kubectl" >&2; exit 2; }
done
cargo build --release -q -p catrust
catrust=$PWD/target/release/catrust
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=$(bench/mozilla-fixture.sh "$work")
cd "$work"
# The Debian Mozilla set is from early 2023; pin the lint clock to then so that roots
# which have expired since do not stop the build (expiry is what lint is for).
export CATRUST_NOW=1677000000

echo "== build: catrust build vs kubectl kustomize (secretGenerator), $n CAs"
hyperfine -N --warmup 3 --runs 30 --export-json build.json \
  "$catrust build -f trust.yaml --out out" \
  "kubectl kustomize kustomize" \
  "$catrust build -f trust.yaml --stdout" >/dev/null
peak() { /usr/bin/time -f %M "$@" >/dev/null 2>time.txt; tail -1 time.txt; }
ours_kb=$(peak "$catrust" build -f trust.yaml --out out)
theirs_kb=$(peak kubectl kustomize kustomize)
python3 - "$ours_kb" "$theirs_kb" <<'PY'
import json, sys
r = json.load(open("build.json"))["results"]
ours, theirs, stdout = r[0]["median"], r[1]["median"], r[2]["median"]
om, tm = int(sys.argv[1]), int(sys.argv[2])
cpu = lambda x: (x["user"] + x["system"]) * 1000
print(f"catrust build --out    {ours*1000:8.1f} ms (cpu {cpu(r[0]):5.1f} ms)   peak RSS {om/1024:6.1f} MiB")
print(f"catrust build --stdout {stdout*1000:8.1f} ms (cpu {cpu(r[2]):5.1f} ms)")
print(f"kubectl kustomize      {theirs*1000:8.1f} ms (cpu {cpu(r[1]):5.1f} ms)   peak RSS {tm/1024:6.1f} MiB")
print(f"ratio (goal <= 0.2): wall {ours/theirs:.3f}x (--stdout {stdout/theirs:.3f}x)   memory {om/tm:.3f}x")
PY
