#!/usr/bin/env bash
# The fleet simulation at full size: N real catrust-agent processes (release build),
# each on its own throwaway Debian root, rolled from bundle A to bundle B in
# maxUnavailable waves gated on every pod's /readyz (tests/support/fleet.rs).
#   bench/fleet.sh              # N=200, maxUnavailable 20
#   bench/fleet.sh 500 50       # N, maxUnavailable
# Prints time to full convergence, idle and applying RSS/CPU per agent, failed nodes.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
mu=${2:-$(( (n + 9) / 10 ))}
# Each agent holds an inotify instance, a listener and a few fds; leave headroom.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FLEET_N=$n FLEET_MAX_UNAVAILABLE=$mu cargo test --release -q -p catrust-tests --test fleet -- --nocapture 2>&1 \
  | grep -v '^running\|^test result\|^$'
