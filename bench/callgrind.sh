#!/usr/bin/env bash
# Userspace instructions per request for one URL of a config (callgrind counts instructions,
# which stay steady on a noisy machine). Usage:
#   bench/callgrind.sh [BINARY] [PATH] [SECONDS]
# Defaults: target/release/cgigate, /hello, 4. Starts the binary under callgrind with a
# config serving the `hello` built-in at /hello (access log off), sends `wrk -t1 -c1` at it,
# stops the server with SIGINT and prints requests, total instructions and their ratio.
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
CONF
valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$WORK/cg.out" \
    "$BIN" --config "$WORK/config.toml" >"$WORK/stdout" 2>"$WORK/stderr" &
PID=$!
for _ in $(seq 1 600); do
    grep -q 'listening on' "$WORK/stdout" 2>/dev/null && break
    sleep 0.1
done
URL=$(sed -n 's/^listening on //p' "$WORK/stdout" | head -1)
REQS=$(wrk -t1 -c1 -d"${SECS}s" "$URL$URLPATH" | awk '/requests in/ {print $1}')
kill -INT $PID
wait $PID || true
TOTAL=$(awk '/^summary:/ {print $2} /^totals:/ {print $2}' "$WORK/cg.out" | head -1)
echo "requests=$REQS instructions=$TOTAL per_request=$((TOTAL / REQS))"
