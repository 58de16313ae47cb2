#!/usr/bin/env bash
# A safe CA rotation, as git history. Builds a throwaway repository and walks through it:
#   1. trust corp-root-2024;
#   2. add its successor corp-root-2026 (`replaces: corp-root-2024`);
#   3. try to remove corp-root-2024 an hour later: `catrust plan` refuses (CT401) and says when;
#   4. remove it four days later (after minOverlap: 72h): allowed.
# Usage: examples/rotation/run.sh [CATRUST_BINARY]   (default: builds target/debug/catrust)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
catrust=${1:-}
if [ -z "$catrust" ]; then
  (cd "$here/../.." && cargo build -q -p catrust)
  catrust="$here/../../target/debug/catrust"
fi
command -v git >/dev/null || { echo "git is not installed: apt-get install -y git" >&2; exit 2; }
command -v openssl >/dev/null || { echo "openssl is not installed: apt-get install -y openssl" >&2; exit 2; }

repo=$(mktemp -d)
trap 'rm -rf "$repo"' EXIT
cd "$repo"
git init -q -b main
git config user.name "Platform Team"
git config user.email platform@example.com

ca() { # name: a self-signed CA valid for ten years
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -keyout /dev/null -out "certs/$1.pem" -subj "/O=Example Corp/CN=$1" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
trust() { # authorities…: writes trust.yaml trusting the named CAs
  {
    printf 'apiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\nmetadata:\n  name: corp\nspec:\n  authorities:\n'
    for name in "$@"; do
      printf '    - name: %s\n      file: certs/%s.pem\n' "$name" "$name"
      [ "$name" = corp-root-2026 ] && printf '      replaces: corp-root-2024\n'
    done
    printf '  rotation:\n    minOverlap: 72h\n  targets:\n    agent:\n      image: registry.example/catrust-agent:0.1.0\n'
  } > trust.yaml
}
commit() { # date message
  git add -A
  GIT_AUTHOR_DATE="$1" GIT_COMMITTER_DATE="$1" git commit -q -m "$2"
  echo "    committed at $1: $2"
}
step() { printf '\n== %s\n' "$*"; }

mkdir certs
ca corp-root-2024
ca corp-root-2026
start=$(( $(date +%s) - 10 * 86400 ))   # the story starts ten days ago
at() { date -u -d "@$(( start + $1 ))" +%Y-%m-%dT%H:%M:%SZ; }

step "1. Trust corp-root-2024"
trust corp-root-2024
commit "$(at 0)" "trust corp-root-2024"

step "2. Add the successor corp-root-2026 (replaces: corp-root-2024)"
trust corp-root-2024 corp-root-2026
"$catrust" plan
commit "$(at 86400)" "add corp-root-2026"

step "3. One hour later, try to remove corp-root-2024"
trust corp-root-2026
commit "$(at 90000)" "remove corp-root-2024 (too soon)"
set +e
"$catrust" plan --to HEAD
status=$?
set -e
echo "    catrust plan exited $status (1: the rotation rule refuses; nothing would be built)"
git reset -q --hard HEAD~1

step "4. Four days after the successor, remove corp-root-2024"
trust corp-root-2026
commit "$(at $((86400 * 5)))" "remove corp-root-2024"
"$catrust" plan --to HEAD
echo "    catrust plan exited $? (0: allowed)"
"$catrust" build --rev HEAD --out "$repo/rendered"
