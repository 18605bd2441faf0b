#!/usr/bin/env bash
# bench/isolate_spawn.sh [SECONDS] [ROUNDS] — run bench/isolate_spawn.c's modes in
# interleaved rounds against bench's hello CGI and print each mode's median wall time per
# spawn and spawn rate. Needs root (the isolated modes switch to nobody) and gcc.
set -euo pipefail
SECS=${1:-5}
ROUNDS=${2:-5}
BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$BENCH")
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
[ "$(id -u)" = 0 ] || { echo "isolate_spawn.sh: run as root" >&2; exit 1; }
chmod 755 "$OUT"
gcc -O2 -o "$OUT/isolate_spawn" "$BENCH/isolate_spawn.c"
gcc -O2 -o "$OUT/hello" "$REPO/examples/cgi/hello.c"
MODES="posix posix-confined vfork-confined fork fork-isolated"
for round in $(seq "$ROUNDS"); do
    for mode in $MODES; do
        "$OUT/isolate_spawn" "$mode" "$SECS" "$OUT/hello" 65534 65534 | tee -a "$OUT/results"
    done
done
echo "--- medians over $ROUNDS rounds of $SECS s"
for mode in $MODES; do
    grep "^mode=$mode " "$OUT/results" | python3 -c "
import statistics, sys
rows = [dict(kv.split('=', 1) for kv in line.split()) for line in sys.stdin]
med = lambda k: statistics.median(float(r[k].rstrip('/s')) for r in rows)
print('%-15s wall %7.1f us/spawn  rate %6.0f/s  parent cpu %6.1f us  child cpu %6.1f us' % (
    rows[0]['mode'], med('wall_us'), med('rate'), med('parent_cpu_us'), med('child_cpu_us')))"
done
