#!/usr/bin/env bash
# Benchmark: `catrust plan` and `catrust lint --staged` on a generated repository of
# 10,000 commits of which 200 touch trust.yaml, whole-process, beside
# `git log --follow -- trust.yaml | wc -l` on the same repository in the same run.
#
#   bench/git-history.sh [COMMITS] [TOUCH]      (needs openssl, git, hyperfine)
#
# The working tree and the index remove `old` (whose successor `new` has been there
# since the first commit), so the CT401 walk dates both at the root commit: the whole
# first-parent chain is walked, the worst case. The repository is packed first
# (`git repack -ad`), as any cloned repository is.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
COMMITS=${1:-10000}
TOUCH=${2:-200}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
cargo build --quiet --release -p catrust --bin catrust -p catrust-tests --example gen-history --example walk-probe
CATRUST=$ROOT/target/release/catrust

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/pki"
for n in old new extra1 extra2 extra3 extra4; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$WORK/pki/$n.key" -out "$WORK/pki/$n.pem" -days 800 -subj "/O=catrust bench/CN=$n" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
done
time "$ROOT/target/release/examples/gen-history" "$WORK/repo" "$WORK/pki" "$COMMITS" "$TOUCH"
cd "$WORK/repo"
git repack -adq
git count-objects -vH | grep -E 'size-pack|in-pack'

# Remove `old` in the working tree and the index.
sed -i '/- name: old$/,+1d' trust.yaml
git add trust.yaml

echo "commits: $(git rev-list --count HEAD); touching trust.yaml: $(git log --oneline --follow -- trust.yaml | wc -l)"
echo "--- libgit2's floor for this walk (commit parsing, root trees)"
"$ROOT/target/release/examples/walk-probe" .
echo "--- catrust plan"
"$CATRUST" plan || true
echo "--- catrust lint --staged"
"$CATRUST" lint --staged || true

hyperfine --warmup 3 --min-runs 20 -N \
  --export-markdown "$WORK/bench.md" \
  "$CATRUST plan" \
  "$CATRUST lint --staged" \
  "$CATRUST lint" 
hyperfine --warmup 2 --min-runs 10 \
  "git log --follow -- trust.yaml | wc -l"
cat "$WORK/bench.md"
