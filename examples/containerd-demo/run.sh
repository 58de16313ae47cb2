#!/usr/bin/env bash
# catrust on a real containerd: watch "x509: certificate signed by unknown authority"
# reproduced, then fixed from git commits.
#
# Run as root on Debian (bookworm) from anywhere in a catrust checkout:
#   sudo examples/containerd-demo/run.sh
# It installs the Debian packages it needs if they are missing, builds catrust,
# catrust-agent and a small CRI client with cargo, and works in a temp folder: a TLS
# registry (docker-registry) on 127.0.0.1, containerd 1.6 with its own root, state and
# socket, a throwaway Debian "node" root, and a git repository with trust.yaml. Your
# machine's containerd, trust store and /etc are not touched; every process it starts
# is stopped on exit (Ctrl-C included).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(id -u)" != 0 ]; then
  echo "run as root: containerd needs it" >&2
  exit 2
fi

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }
show() { printf '   \033[2m$ %s\033[0m\n' "$*"; }
ok() { printf '   \033[32m%s\033[0m\n' "$*"; }
bad() { printf '   \033[31m%s\033[0m\n' "$*"; }

# --- tools ------------------------------------------------------------------------
PKGS=(containerd docker-registry skopeo umoci openssl ca-certificates git protobuf-compiler)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  bold "Installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo is needed (https://rustup.rs)" >&2; exit 2; }
bold "Building catrust, catrust-agent and cri-pull (a CRI client, as kubelet calls containerd)"
(cd "$REPO_ROOT" && cargo build -q -p catrust -p catrust-agent --bins && cargo build -q -p catrust-tests --example cri-pull)
BIN=$REPO_ROOT/target/debug
CATRUST=$BIN/catrust
AGENT=$BIN/catrust-agent
CRI_PULL=$BIN/examples/cri-pull

# The machine's own trust must not leak into anything below.
unset SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE

W=$(mktemp -d /tmp/catrust-demo.XXXXXX)
stop_pidfile() {
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$f"
}
cleanup() {
  stop_pidfile "$W/containerd.pid"
  stop_pidfile "$W/registry.pid"
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# --- PKI ----------------------------------------------------------------------------
mkdir -p "$W/pki"
make_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -keyout "$W/pki/$1.key" -out "$W/pki/$1.pem" -subj "/O=catrust demo/CN=$1" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
make_leaf() { # name ca
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n' >"$W/pki/$1.ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/pki/$1.key" \
    -out "$W/pki/$1.csr" -subj /CN=127.0.0.1 2>/dev/null
  openssl x509 -req -in "$W/pki/$1.csr" -CA "$W/pki/$2.pem" -CAkey "$W/pki/$2.key" -CAcreateserial \
    -days 30 -extfile "$W/pki/$1.ext" -out "$W/pki/$1.pem" 2>/dev/null
}
bold "1. Setting the scene"
make_ca corp-root-2025
make_ca corp-root-2026
make_ca distribution-root
make_leaf registry-2025 corp-root-2025
make_leaf registry-2026 corp-root-2026
say "CAs corp-root-2025, corp-root-2026; the registry's certificate is issued by corp-root-2025"

# --- the node: a throwaway Debian root ------------------------------------------------
H=$W/node
mkdir -p "$H"/etc/ssl/certs "$H"/etc/ca-certificates/update.d "$H"/usr/share/ca-certificates/mozilla \
  "$H"/usr/local/share/ca-certificates "$H"/var/lib "$H"/etc/containerd/certs.d
printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n' >"$H/etc/os-release"
cp "$W/pki/distribution-root.pem" "$H/usr/share/ca-certificates/mozilla/Distribution_Root.crt"
echo "mozilla/Distribution_Root.crt" >"$H/etc/ca-certificates.conf"
update-ca-certificates --fresh --certsconf "$H/etc/ca-certificates.conf" --certsdir "$H/usr/share/ca-certificates" \
  --localcertsdir "$H/usr/local/share/ca-certificates" --etccertsdir "$H/etc/ssl/certs" \
  --hooksdir "$H/etc/ca-certificates/update.d" >/dev/null 2>&1
say "node root $H: Debian layout, one distribution CA in its store"

# --- the registry -----------------------------------------------------------------------
PORT=$(free_port)
REG=127.0.0.1:$PORT
IMAGE=$REG/catrust/demo:1
mkdir -p "$W/registry/storage"
start_registry() { # leaf name
  cat >"$W/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $W/registry/storage
http:
  addr: $REG
  secret: catrust-demo
  tls:
    certificate: $W/pki/$1.pem
    key: $W/pki/$1.key
EOF
  setsid docker-registry serve "$W/registry/config.yml" >>"$W/registry/log" 2>&1 &
  echo $! >"$W/registry.pid"
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return; sleep 0.1; done
  echo "docker-registry did not start; $W/registry/log:" >&2
  cat "$W/registry/log" >&2
  exit 1
}
start_registry registry-2025
echo "hello from catrust's containerd demo" >"$W/hello.txt"
umoci init --layout "$W/oci" && umoci new --image "$W/oci:1" && umoci insert --rootless --image "$W/oci:1" "$W/hello.txt" /hello.txt
mkdir -p "$W/push-certs" && cp "$W/pki/corp-root-2025.pem" "$W/push-certs/ca.crt"
skopeo --insecure-policy copy --quiet --dest-cert-dir "$W/push-certs" "oci:$W/oci:1" "docker://$IMAGE"
say "docker-registry on https://$REG serves $IMAGE (built with umoci, pushed with skopeo)"
# The node's own registry configuration: containerd 1.6 speaks plain HTTP to 127.0.0.1
# unless hosts.toml names an https server (and rejects a file with `server` alone).
mkdir -p "$H/etc/containerd/certs.d/$REG"
printf 'server = "https://%s"\n\n[host."https://%s"]\n  capabilities = ["pull", "resolve"]\n' "$REG" "$REG" \
  >"$H/etc/containerd/certs.d/$REG/hosts.toml"

# --- containerd ---------------------------------------------------------------------------
C=$W/containerd
mkdir -p "$C/cni" "$C/opt" "$C/no-cert-dir"
SOCK=$C/containerd.sock
cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.overlayfs"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$C/cni"
    conf_dir = "$C/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$H/etc/containerd/certs.d"
EOF
# What `systemctl restart containerd` is on this demo "node"; the agent runs it through
# its host-exec layer (--containerd-restart-command). SSL_CERT_FILE is the node's bundle;
# SSL_CERT_DIR an empty folder (unset, Go would read the machine's /etc/ssl/certs).
cat >"$C/restart.sh" <<EOF
#!/bin/sh
if [ -f "$W/containerd.pid" ]; then
  pid=\$(cat "$W/containerd.pid")
  kill -TERM "\$pid" 2>/dev/null
  while kill -0 "\$pid" 2>/dev/null; do sleep 0.05; done
fi
SSL_CERT_FILE="$H/etc/ssl/certs/ca-certificates.crt" SSL_CERT_DIR="$C/no-cert-dir" \
  setsid containerd --config "$C/config.toml" >>"$C/log" 2>&1 </dev/null &
echo \$! >"$W/containerd.pid"
i=0
until ctr --address "$SOCK" version >/dev/null 2>&1; do
  i=\$((i + 1)); [ "\$i" -gt 200 ] && { echo "containerd did not start" >&2; exit 1; }
  sleep 0.05
done
echo "containerd restarted: pid \$(cat "$W/containerd.pid")"
EOF
chmod +x "$C/restart.sh"
"$C/restart.sh" >/dev/null
cpid() { cat "$W/containerd.pid"; }
say "containerd $(containerd --version | awk '{print $3}') pid $(cpid), socket $SOCK, config_path = the node's etc/containerd/certs.d"

pull() {
  show "cri-pull $SOCK $IMAGE   # CRI ImageService/PullImage, as kubelet"
  local out
  if out=$("$CRI_PULL" "$SOCK" "$IMAGE"); then
    ok "PULLED: $out"
  else
    bad "FAILED: ...${out##*: }"
  fi
}

# --- git, catrust, kubelet, catrust-agent ----------------------------------------------------
G=$W/gitops
git init -q -b main "$G"
mkdir -p "$G/certs"
cp "$W/pki/corp-root-2025.pem" "$W/pki/corp-root-2026.pem" "$G/certs/"
commit() { # unix-time message
  (cd "$G" && git add -A && GIT_AUTHOR_DATE="@$1 +0000" GIT_COMMITTER_DATE="@$1 +0000" \
    git -c user.name=demo -c user.email=demo@example.invalid commit -q -m "$2")
  show "git commit -m \"$2\"   # $(date -u -d "@$1" '+%F %T UTC')"
}
trust_yaml() { # containerd-policy, then authority lines (already YAML), read from stdin
  {
    printf 'apiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\nmetadata:\n  name: corp\nspec:\n'
    cat
    printf '  targets:\n    agent:\n      image: registry.example/catrust-agent:0.1.0\n      containerd: %s\n' "$1"
  } >"$G/trust.yaml"
}
VOL=$W/kubelet/catrust-bundle
mkdir -p "$VOL"
publish_secret() { # rendered bundle-secret.yaml -> the volume, as kubelet's atomic writer
  local ts new old key f
  ts="..$(date -u +%Y_%m_%d_%H_%M_%S.%N)"
  new=$VOL/$ts
  mkdir "$new"
  awk '/^data:/{d=1;next} d&&/^  [^ ]/{k=$1; sub(/:$/,"",k); print k, $2} d&&/^[^ ]/{d=0}' "$1" |
    while read -r key b64; do printf '%s' "$b64" | base64 -d >"$new/$key"; done
  old=$(readlink "$VOL/..data" 2>/dev/null || true)
  ln -sfn "$ts" "$VOL/..data_tmp"
  mv -T "$VOL/..data_tmp" "$VOL/..data"
  for f in "$new"/*; do
    key=${f##*/}
    [ -L "$VOL/$key" ] || ln -s "..data/$key" "$VOL/$key"
  done
  for l in "$VOL"/*; do [ -e "$l" ] || rm -f "$l"; done
  [ -z "$old" ] || rm -rf "${VOL:?}/$old"
}
build_and_apply() {
  show "catrust build --rev HEAD --target agent --out rendered"
  (cd "$G" && "$CATRUST" build -f trust.yaml --rev HEAD --target agent --out "$W/rendered" 2>&1 | sed 's/^/     /' | tail -3)
  local sha
  sha=$(sed -n 's/.*catrust.dev\/bundle-sha256: //p' "$W/rendered/agent/daemonset.yaml" | head -1)
  publish_secret "$W/rendered/agent/bundle-secret.yaml"
  show "catrust-agent apply --once --host-exec direct --host-root node --expected-sha256 ${sha:0:12}… --containerd-restart-command restart.sh"
  local before
  before=$(cpid)
  "$AGENT" apply --once --bundle-dir "$VOL" --host-root "$H" --host-exec direct \
    --expected-sha256 "$sha" --containerd-restart-command "$C/restart.sh" 2>&1 |
    grep -E 'WARN|ERROR|containerd' | sed 's/^/     /' || true
  if [ "$(cpid)" = "$before" ]; then say "containerd pid $before: not restarted"; else say "containerd restarted by the agent: pid $before -> $(cpid)"; fi
}
T0=$(($(date +%s) - 10 * 86400))

bold "2. Before any CA: the error from the AKS troubleshooting section"
pull

bold "3. corp-root-2025 in the node's system store, containerd: none (what AKS's node script does)"
trust_yaml none <<EOF
  authorities:
    - name: corp-root-2025
      file: certs/corp-root-2025.pem
EOF
commit "$T0" "trust corp-root-2025"
build_and_apply
show "openssl verify -CAfile node/etc/ssl/certs/ca-certificates.crt registry.pem"
openssl verify -CAfile "$H/etc/ssl/certs/ca-certificates.crt" "$W/pki/registry-2025.pem" | sed 's/^/     /'
say "the store trusts the registry, but the running containerd loaded its roots at the first pull:"
pull

bold "4. The same CA for this registry (registries: [$REG]), containerd: registries-only"
trust_yaml registries-only <<EOF
  authorities:
    - name: corp-root-2025
      file: certs/corp-root-2025.pem
      registries: ["$REG"]
EOF
commit "$((T0 + 3600))" "corp-root-2025 for $REG"
build_and_apply
show "cat node/etc/containerd/certs.d/$REG/hosts.toml"
sed 's/^/     /' "$H/etc/containerd/certs.d/$REG/hosts.toml"
say "containerd reads hosts.toml on every pull: no restart needed"
pull

bold "5. Rotation: corp-root-2026 replaces corp-root-2025, containerd: restart"
trust_yaml restart <<EOF
  authorities:
    - name: corp-root-2025
      file: certs/corp-root-2025.pem
      registries: ["$REG"]
    - name: corp-root-2026
      file: certs/corp-root-2026.pem
      registries: ["$REG"]
      replaces: corp-root-2025
EOF
commit "$((T0 + 86400))" "add corp-root-2026 (replaces corp-root-2025)"
build_and_apply
pull
say "the registry's operator switches to a corp-root-2026 certificate"
stop_pidfile "$W/registry.pid"
start_registry registry-2026
pull
say "four days later (minOverlap 72h has passed; sooner, catrust build fails with CT401):"
trust_yaml restart <<EOF
  authorities:
    - name: corp-root-2026
      file: certs/corp-root-2026.pem
      registries: ["$REG"]
      replaces: corp-root-2025
EOF
commit "$((T0 + 5 * 86400))" "remove corp-root-2025"
build_and_apply
pull

bold "6. Emergency: corp-root-2026 is compromised and moved to distrust"
SHA=$(openssl x509 -in "$W/pki/corp-root-2026.pem" -outform DER | sha256sum | cut -d' ' -f1)
trust_yaml restart <<EOF
  authorities: []
  distrust:
    - sha256: "$SHA"
      reason: compromised
EOF
commit "$(date +%s)" "distrust corp-root-2026"
build_and_apply
pull

bold "Done. Everything it started is stopped and $W is removed."
