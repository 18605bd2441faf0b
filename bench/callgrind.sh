#!/usr/bin/env bash
# Userspace instructions per request for one URL (callgrind counts instructions, which stay
# steady on a noisy machine). Usage:
#   bench/callgrind.sh [BINARY] [PATH] [SECONDS]
# Defaults: target/release/cgigate, /hello, 4. Starts the binary under callgrind with a
# config serving the `hello` and `echo` built-ins (access log off), sends `wrk -t1 -c1` at
# PATH for SECONDS, stops the server with SIGINT, and does the same with a single request to
# learn the start-up and shutdown cost, which it subtracts. Prints requests, instructions and
# instructions per request. CG_OUT=FILE keeps the callgrind output of the loaded run (for
# callgrind_annotate); CG_FLAGS adds valgrind options (e.g. --dump-instr=yes); CG_ROUTES adds
# TOML to the config (e.g. a metrics route: CG_ROUTES=$'[[route]]\nprefix = "/metrics"\nhandler = "metrics"').
set -euo pipefail
BIN=${1:-target/release/cgigate}
URLPATH=${2:-/hello}
SECS=${3:-4}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cat >"$WORK/config.toml" <<CONF
[server]
listen = ["127.0.0.1:0"]
[log]
level = "warn"
access = "off"
[[route]]
prefix = "/hello"
handler = "hello"
[[route]]
prefix = "/echo"
handler = "echo"
${CG_ROUTES:-}
CONF

# run NAME LOAD: the server under callgrind, LOAD (a command taking the URL) against it;
# prints "requests instructions".
run() {
    local name=$1 load=$2
    # shellcheck disable=SC2086
    valgrind --tool=callgrind --compress-strings=no ${CG_FLAGS:-} \
        --callgrind-out-file="$WORK/$name.out" \
        "$BIN" --config "$WORK/config.toml" >"$WORK/$name.stdout" 2>"$WORK/$name.stderr" &
    local pid=$!
    for _ in $(seq 1 600); do
        grep -q 'listening on' "$WORK/$name.stdout" 2>/dev/null && break
        sleep 0.1
    done
    local url
    url=$(sed -n 's/^listening on //p' "$WORK/$name.stdout" | head -1)
    local reqs
    reqs=$($load "$url$URLPATH")
    kill -INT $pid
    wait $pid || true
    local total
    total=$(awk '/^summary:/ {print $2} /^totals:/ {print $2}' "$WORK/$name.out" | head -1)
    echo "$reqs $total"
}
one() { curl -s -o /dev/null "$1" && echo 1; }
load() { wrk -t1 -c1 -d"${SECS}s" "$1" | awk '/requests in/ {print $1}'; }

read -r _ BASE < <(run base one)
read -r REQS TOTAL < <(run load load)
echo "requests=$REQS instructions=$TOTAL start_and_stop=$BASE per_request=$(((TOTAL - BASE) / (REQS - 1)))"
if [[ -n "${CG_OUT:-}" ]]; then cp "$WORK/load.out" "$CG_OUT"; fi
