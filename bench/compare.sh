#!/usr/bin/env bash
# Whole-process comparisons against the tool a user would run instead, in one run,
# printed as ratios. Needs: hyperfine, GNU time (/usr/bin/time), kubectl,
# update-ca-certificates (ca-certificates).
#   bench/compare.sh            # builds catrust and catrust-agent in release mode first
# (`catrust lint` vs an openssl loop is bench/lint-vs-openssl.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."
for t in hyperfine kubectl /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "missing $t: apt-get install -y hyperfine time kubectl" >&2; exit 2; }
done
cargo build --release -q -p catrust -p catrust-agent
catrust=$PWD/target/release/catrust
agent=$PWD/target/release/catrust-agent
examples=$PWD/examples
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

echo
echo "== agent: catrust-agent apply --once vs bare update-ca-certificates, same root ($n Mozilla CAs + 2 local)"
# A Debian node root holding the machine's Mozilla set (what a real node refreshes).
node=$work/node
mkdir -p "$node"/etc/ssl/certs "$node"/etc/ca-certificates/update.d "$node"/usr/local/share/ca-certificates "$node"/usr/share "$node"/var/lib
cp -r /usr/share/ca-certificates "$node"/usr/share/
(cd "$node"/usr/share/ca-certificates && find . -name '*.crt' | sed 's|^\./||' | sort) > "$node"/etc/ca-certificates.conf
printf 'ID=debian\nVERSION_ID="12"\n' > "$node"/etc/os-release
# The bundle: examples/basic (2 CAs) compiled by catrust for the agent target, laid out
# as kubelet lays out the Secret volume (..data swap layout).
cp -r "$examples"/basic "$work"/basic
sed -i 's|^  targets:|  targets:\n    agent:\n      image: example.invalid/catrust-agent:0|' "$work"/basic/trust.yaml
(cd "$work"/basic && "$catrust" build -f trust.yaml --out out --target agent 2>/dev/null)
python3 - "$work"/basic/out/agent/bundle-secret.yaml "$work"/bundle <<'PY'
import base64, os, re, sys
text = open(sys.argv[1]).read().split("\ndata:\n", 1)[1]
vol = sys.argv[2]
os.makedirs(os.path.join(vol, "..v1"))
for m in re.finditer(r"^  ([^:\s]+): (\S+)$", text, re.M):
    with open(os.path.join(vol, "..v1", m[1]), "wb") as f:
        f.write(base64.b64decode(m[2]))
    os.symlink("..data/" + m[1], os.path.join(vol, m[1]))
os.symlink("..v1", os.path.join(vol, "..data"))
PY
ucc="update-ca-certificates --certsconf $node/etc/ca-certificates.conf --certsdir $node/usr/share/ca-certificates --localcertsdir $node/usr/local/share/ca-certificates --etccertsdir $node/etc/ssl/certs --hooksdir $node/etc/ca-certificates/update.d"
host="--host-root $node --host-exec direct --containerd none"
$ucc --fresh >/dev/null 2>&1
# Each timed run installs the same 2 CAs and refreshes; each prepare puts the root back.
hyperfine -N --warmup 1 --runs 5 --export-json agent.json \
  --prepare "$agent uninstall $host" \
  "$agent apply --once --bundle-dir $work/bundle $host" \
  --prepare "sh -c 'rm -rf $node/usr/local/share/ca-certificates/bare && $ucc --fresh'" \
  "sh -c 'mkdir -p $node/usr/local/share/ca-certificates/bare && cp $work/bundle/*.crt $node/usr/local/share/ca-certificates/bare/ && $ucc'" \
  >/dev/null 2>&1
python3 - <<'PY'
import json
r = json.load(open("agent.json"))["results"]
ours, bare = r[0]["median"], r[1]["median"]
goal = 1.1 * bare + 0.1
print(f"catrust-agent apply --once   {ours*1000:8.1f} ms (cpu {(r[0]['user']+r[0]['system'])*1000:6.1f} ms, incl. the refresh)")
print(f"cp + update-ca-certificates  {bare*1000:8.1f} ms (cpu {(r[1]['user']+r[1]['system'])*1000:6.1f} ms)")
print(f"ratio (goal <= 1.1x + 100 ms): {ours/bare:.3f}x, {(ours-bare)*1000:+.0f} ms -> {'met' if ours <= goal else 'NOT met'}")
PY
