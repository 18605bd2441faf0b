#!/usr/bin/env bash
# Soak and fault harness: builds cgigate in release, then runs scenarios a–e (slowloris,
# stalled chunked uploads, slow readers, abandoned streaming CGIs, idle keep-alive) against
# it on 127.0.0.1, and writes bench/soak/RESULTS.md and bench/soak/results.json.
#
#   bench/soak/run.sh                      # everything (about 8 minutes)
#   SCENARIOS=a,d bench/soak/run.sh        # some of them
#   SOAK_BIN=/path/to/cgigate bench/soak/run.sh   # another build (e.g. before a fix)
#
# Not part of `cargo test`. Every phase is bounded; on exit (normal, error or Ctrl-C) every
# process it started is stopped.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

cargo build --release --locked --bin cgigate
bin="$root/target/release/cgigate"

# 10,000 connections on each side: the client needs the descriptors too (the server raises
# its own soft limit to the hard one).
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt 12000 ]; then
    echo "run.sh: ulimit -n is $(ulimit -n); scenario e needs about 11000 (raise the hard limit)" >&2
    exit 2
fi

state="$(mktemp -d)"
pids="$state/server.pids"
: >"$pids"
harness=""
cleanup() {
    # The harness first (it stops its own servers and scripts), then any server it left.
    if [ -n "$harness" ] && kill -0 "$harness" 2>/dev/null; then
        kill -TERM "$harness" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$harness" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$harness" 2>/dev/null || true
    fi
    while read -r pid; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done <"$pids"
    rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The whole run is bounded too (scenarios are bounded one by one inside). On a machine shared
# with other work, the harness, the server and its scripts run in a session of their own at a
# higher priority when allowed (SOAK_NICE=0 to turn that off), so that the figures are about
# cgigate and its clients rather than about a neighbour's build.
timeout --signal=TERM --kill-after=30 1500 \
    setsid -w python3 "$here/soak.py" run --bin "${SOAK_BIN:-$bin}" \
        --nice "${SOAK_NICE:--10}" \
        --scenarios "${SCENARIOS:-a,b,c,d,e}" \
        --out "$here/RESULTS.md" --json "$here/results.json" \
        --pids-file "$pids" "$@" &
harness=$!
wait "$harness"
