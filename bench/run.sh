#!/usr/bin/env bash
# bench/run.sh — cgigate against Apache (mod_cgid), lighttpd (mod_cgi), nginx + fcgiwrap and
# Go's net/http/cgi, on loopback, with the same CGI programs; writes BENCHMARKS.md.
#
#   bench/run.sh                     everything: build, install peers, 3 interleaved rounds
#   bench/run.sh --quick             smoke run: 1 round, 2 s per load run, 1,000 idle conns
#   bench/run.sh --workloads a,e,h   only some workloads (a b c d e f g h, see --help)
#
# Every server runs in the foreground from a config generated under bench/work/, on its own
# port, and is stopped when the script exits (however it exits). Nothing system-wide is
# configured; only `apt-get install` (as root, for missing peers) touches the system.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
WORK=$BENCH/work
CGI=$BENCH/cgi

ROUNDS=3
DURATION=5
TTFB_SAMPLES=3
IDLE_CONNS=10000
WORKLOADS="a b c d e f g h i"
PORT_BASE=18080
PIN=0
INSTALL=1
BUILD=1
OUTPUT=$REPO/BENCHMARKS.md
WRK_THREADS=2

usage() {
    cat <<EOF
usage: bench/run.sh [options]

  --quick              1 round, 2 s load runs, 1 TTFB sample per round, 1,000 idle conns
  --rounds N           interleaved rounds (default $ROUNDS)
  --duration S         seconds per wrk run (default $DURATION)
  --workloads LIST     comma-separated subset of: a b c d e f g h i (default all)
                         a  hello (C CGI), keep-alive, wrk -c8 and -c32
                         b  hello.sh (/bin/sh CGI), the same
                         c  big: 1 MiB of CGI output
                         d  POST 100 KB to the echo CGI, Content-Length and chunked
                         e  in-process: cgigate built-ins vs nginx 'return 200'
                         f  time to first byte of the slow CGI (a line, 1 s, a line)
                         g  server memory with N idle keep-alive connections
                         h  the raw spawn ceiling (bench/spawn.c)
                         i  CPU per CGI request: the server's own and its scripts'
                            (bench/cpu.py, wrk -t1 -c8 on hello)
  --idle-conns N       connections for (g) (default $IDLE_CONNS)
  --pin                pin wrk to CPU 1 and every server (and its CGIs, and spawn.c) to CPU 0
  --port-base P        ports P..P+4 (default $PORT_BASE)
  --no-install         do not apt-get missing peers (fail instead)
  --no-build           use the existing release binary of cgigate
  --output FILE        where to write the report (default BENCHMARKS.md at the repo top)
  -h, --help           this text
EOF
}

die() { echo "bench: error: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

while [ $# -gt 0 ]; do
    case $1 in
        --quick) ROUNDS=1; DURATION=2; TTFB_SAMPLES=1; IDLE_CONNS=1000 ;;
        --rounds) ROUNDS=${2:?}; shift ;;
        --duration) DURATION=${2:?}; shift ;;
        --workloads) WORKLOADS=$(echo "${2:?}" | tr ',' ' '); shift ;;
        --idle-conns) IDLE_CONNS=${2:?}; shift ;;
        --pin) PIN=1 ;;
        --port-base) PORT_BASE=${2:?}; shift ;;
        --no-install) INSTALL=0 ;;
        --no-build) BUILD=0 ;;
        --output) OUTPUT=${2:?}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
    shift
done
for w in $WORKLOADS; do
    case $w in a|b|c|d|e|f|g|h|i) ;; *) die "unknown workload '$w' (use a b c d e f g h i)" ;; esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "--duration must be a positive integer (seconds)"
[[ $IDLE_CONNS =~ ^[1-9][0-9]*$ ]] || die "--idle-conns must be a positive integer"
has() { case " $WORKLOADS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

PORT_CGIGATE=$PORT_BASE
PORT_APACHE=$((PORT_BASE + 1))
PORT_LIGHTTPD=$((PORT_BASE + 2))
PORT_NGINX=$((PORT_BASE + 3))
PORT_GO=$((PORT_BASE + 4))
# Order within a workload: the peers, then cgigate (the brief's interleaving).
SERVERS="apache lighttpd nginx go cgigate"

# ---------------------------------------------------------------------------------------
# Clean-up: every server started here is a process-group leader (setsid); stop each group.
PIDS=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [ ${#PIDS[@]} -eq 0 ] || log "servers stopped"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------
# Tools and peers.
install_missing() {
    local need=()
    command -v apache2 >/dev/null || need+=(apache2)
    command -v lighttpd >/dev/null || need+=(lighttpd)
    command -v nginx >/dev/null || need+=(nginx-light)
    command -v fcgiwrap >/dev/null || need+=(fcgiwrap)
    command -v go >/dev/null || need+=(golang-go)
    command -v wrk >/dev/null || need+=(wrk)
    command -v gcc >/dev/null || need+=(build-essential)
    command -v curl >/dev/null || need+=(curl)
    command -v python3 >/dev/null || need+=(python3)
    command -v taskset >/dev/null || need+=(util-linux)
    [ ${#need[@]} -gt 0 ] || return 0
    [ "$INSTALL" = 1 ] || die "missing: ${need[*]} (apt-get install ${need[*]}, or drop --no-install)"
    [ "$(id -u)" = 0 ] || die "missing: ${need[*]}; run as root to install them, or: sudo apt-get install ${need[*]}"
    log "installing ${need[*]}"
    apt-get update -q >&2 || die "apt-get update failed"
    # Packages must not start their system services (they would take port 80).
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -q --no-install-recommends "${need[@]}" >&2 \
        || die "apt-get install ${need[*]} failed"
}
install_missing
[ -e /usr/lib/apache2/modules/mod_cgid.so ] || die "apache2 without mod_cgid (apt-get install apache2)"
[ -e /usr/lib/apache2/modules/mod_mpm_event.so ] || die "apache2 without mpm_event"

mkdir -p "$WORK"
rm -rf "${WORK:?}"/*
mkdir -p "$WORK/raw" "$WORK/conf" "$CGI"
chmod 755 "$BENCH" "$WORK" "$CGI"

# Descriptors: 10,000 idle connections need more than the usual 1024 on both sides.
if [ "$(id -u)" = 0 ]; then ulimit -Hn 65536 2>/dev/null || true; fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if has g && [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((IDLE_CONNS + 512)) ]; then
    die "ulimit -n is $NOFILE; (g) needs more than $IDLE_CONNS (run as root, or use --idle-conns)"
fi

# ---------------------------------------------------------------------------------------
# Build: cgigate, the CGI programs, the Go host, the spawn ceiling, the C plugin.
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
CGIGATE=$TARGET_DIR/release/cgigate
if [ "$BUILD" = 1 ]; then
    log "cargo build --release (target dir $TARGET_DIR)"
    (cd "$REPO" && cargo build --release --bin cgigate >&2) || die "cargo build --release failed"
fi
[ -x "$CGIGATE" ] || die "no cgigate binary at $CGIGATE (build it, or drop --no-build)"

CFLAGS="-O2 -Wall -Wextra"
gcc $CFLAGS -o "$CGI/hello" "$REPO/examples/cgi/hello.c" || die "cannot compile hello.c"
gcc $CFLAGS -o "$CGI/echo" "$BENCH/src/echo.c" || die "cannot compile echo.c"
gcc $CFLAGS -o "$CGI/big" "$BENCH/src/big.c" || die "cannot compile big.c"
gcc $CFLAGS -o "$CGI/slow" "$BENCH/src/slow.c" || die "cannot compile slow.c"
install -m 755 "$BENCH/src/hello.sh" "$CGI/hello.sh"
chmod 755 "$CGI"/*
gcc $CFLAGS -pthread -o "$BENCH/spawn" "$BENCH/spawn.c" || die "cannot compile spawn.c"
gcc $CFLAGS -shared -fPIC -I "$REPO/include" -o "$WORK/libhello.so" \
    "$REPO/examples/plugins/c/hello.c" || die "cannot compile the C example plugin"
(cd "$BENCH/gocgi" && go build -o gocgi . >&2) || die "go build of bench/gocgi failed"
mkdir -p "$WORK/static"
printf 'hello\n' >"$WORK/static/hello.txt"
head -c 1048576 /dev/urandom >"$WORK/static/big.bin"

# ---------------------------------------------------------------------------------------
# Pinning (--pin): wrk on CPU 1, servers (their CGIs inherit it) and spawn.c on CPU 0.
if [ "$PIN" = 1 ]; then
    [ "$(nproc)" -ge 2 ] || die "--pin needs 2 CPUs"
    SRV_PIN=(taskset -c 0)
    CLI_PIN=(taskset -c 1)
else
    SRV_PIN=()
    CLI_PIN=()
fi

for p in $PORT_CGIGATE $PORT_APACHE $PORT_LIGHTTPD $PORT_NGINX $PORT_GO; do
    if ss -Hltn "sport = :$p" | grep -q .; then die "port $p is in use (try --port-base)"; fi
done

# ---------------------------------------------------------------------------------------
# Configs. Stock settings except: access logs off everywhere, keep-alive idle timeout 300 s
# and 1,000 requests per connection everywhere, connection limits raised to hold (g)'s idle
# connections, nginx's request-body buffer at 1 MiB (= cgigate's spool_memory).
FLUSH_AFTER_MS=50
# (a)'s isolated row: the same scripts as /cgi/, run as nobody with limits and the sandbox
# (SPEC §9). Switching users needs root; elsewhere the row runs without the user.
ISOLATED_USER='user = "nobody"'
[ "$(id -u)" = 0 ] || { ISOLATED_USER=''; log "not root: (a)'s isolated row runs without a user"; }
cat >"$WORK/conf/cgigate.toml" <<EOF
[server]
listen = ["127.0.0.1:$PORT_CGIGATE"]
max_connections = 16384
max_requests_per_connection = 1000
keep_alive_timeout = "300s"
# cgigate caps the keep-alive idle time at header_timeout (stock 10s): raised with it.
header_timeout = "300s"

[log]
level = "warn"
access = "off"

[output]
mode = "auto"
buffer_limit = "1MiB"
flush_after = "${FLUSH_AFTER_MS}ms"

[cgi]
max_children = 64

[[route]]
prefix = "/cgi/"
cgi_dir = "$CGI"

[[route]]
prefix = "/isolated/"
cgi_dir = "$CGI"
$ISOLATED_USER
limits = { cpu = "30s", memory = "512MiB", processes = 4096, open_files = 256, file_size = "1GiB" }
sandbox = { enabled = true, tcp_connect = false, tcp_bind = false }

[[route]]
prefix = "/auto/"
cgi_dir = "$CGI"
output = "auto"

[[route]]
prefix = "/buffer/"
cgi_dir = "$CGI"
output = "buffer"

[[route]]
prefix = "/stream/"
cgi_dir = "$CGI"
output = "stream"

[[route]]
prefix = "/hello"
handler = "hello"

[[route]]
prefix = "/echo"
handler = "echo"

[[route]]
prefix = "/static/"
static_dir = "$WORK/static"

[[route]]
prefix = "/ext/hello"
plugin = "$WORK/libhello.so"
EOF

mkdir -p "$WORK/apache"
chmod 755 "$WORK/apache"
MODS=/usr/lib/apache2/modules
cat >"$WORK/conf/apache.conf" <<EOF
ServerRoot "$WORK/apache"
ServerName 127.0.0.1
Listen 127.0.0.1:$PORT_APACHE
PidFile "$WORK/apache/apache.pid"
ErrorLog "$WORK/apache/error.log"
LogLevel warn
DefaultRuntimeDir "$WORK/apache"
Mutex file:$WORK/apache default
LoadModule mpm_event_module $MODS/mod_mpm_event.so
LoadModule authz_core_module $MODS/mod_authz_core.so
LoadModule alias_module $MODS/mod_alias.so
LoadModule cgid_module $MODS/mod_cgid.so
# Apache will not run its children as root.
User www-data
Group www-data
ScriptSock "$WORK/apache/cgid.sock"
KeepAlive On
KeepAliveTimeout 300
MaxKeepAliveRequests 1000
# Debian's stock mpm_event settings, plus AsyncRequestWorkerFactor raised so that two
# processes may hold (g)'s 10,000 idle keep-alive connections (the stock 2 allows ~75 each).
StartServers 2
MinSpareThreads 25
MaxSpareThreads 75
ThreadLimit 64
ThreadsPerChild 25
MaxRequestWorkers 150
MaxConnectionsPerChild 0
AsyncRequestWorkerFactor 400
<Directory />
    Require all denied
    AllowOverride None
</Directory>
ScriptAlias /cgi/ "$CGI/"
<Directory "$CGI">
    Require all granted
</Directory>
EOF

mkdir -p "$WORK/lighttpd/htdocs" "$WORK/lighttpd/tmp"
cat >"$WORK/conf/lighttpd.conf" <<EOF
server.modules = ("mod_alias", "mod_cgi")
server.bind = "127.0.0.1"
server.port = $PORT_LIGHTTPD
server.document-root = "$WORK/lighttpd/htdocs"
server.pid-file = "$WORK/lighttpd/lighttpd.pid"
server.errorlog = "$WORK/lighttpd/error.log"
server.upload-dirs = ("$WORK/lighttpd/tmp")
server.max-keep-alive-idle = 300
server.max-keep-alive-requests = 1000
# Room for (g)'s 10,000 idle connections (stock: 1024 descriptors).
server.max-fds = 32768
server.max-connections = 16384
alias.url = ("/cgi/" => "$CGI/")
\$HTTP["url"] =~ "^/cgi/" {
    cgi.assign = ("" => "")
}
EOF

mkdir -p "$WORK/nginx/tmp"
cat >"$WORK/conf/nginx.conf" <<EOF
worker_processes auto;
worker_rlimit_nofile 40000;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events {
    # Room for (g)'s 10,000 idle connections (stock: 768).
    worker_connections 20000;
}
http {
    access_log off;
    # As in Debian's stock nginx.conf (nginx's own default is off): (e)'s static rows.
    sendfile on;
    keepalive_timeout 300;
    keepalive_requests 1000;
    # cgigate keeps request bodies in memory up to 1 MiB; so does nginx here (stock 16k
    # would put every 100 KB POST of (d) in a temp file).
    client_body_buffer_size 1m;
    client_body_temp_path $WORK/nginx/tmp/body;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$PORT_NGINX;
        location ~ ^/cgi/([^/]+)\$ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $CGI/\$1;
            fastcgi_pass unix:$WORK/nginx/fcgiwrap.sock;
        }
        location = /ret {
            return 200 "hello\n";
        }
        # (e)'s static rows: the same files cgigate's static_dir serves.
        location /static/ {
            alias $WORK/static/;
        }
    }
}
EOF

# ---------------------------------------------------------------------------------------
# Servers.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {  # start NAME PORT LOGFILE CMD... ; sets STARTED_PID
    local name=$1 port=$2 logf=$3
    shift 3
    printf '%q ' "$@" >"$WORK/conf/$name.cmd"
    setsid "${SRV_PIN[@]}" "$@" >>"$logf" 2>&1 </dev/null &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
    if [ -n "$port" ]; then
        for _ in $(seq 200); do
            kill -0 "$STARTED_PID" 2>/dev/null || { tail -20 "$logf" >&2; die "$name exited at start-up (log: $logf)"; }
            port_open "$port" && return 0
            sleep 0.1
        done
        tail -20 "$logf" >&2
        die "$name is not listening on port $port after 20 s (log: $logf)"
    fi
}

declare -A ROOTS  # server → the pids whose process trees are the server (for RSS)
start_server() {  # start_server NAME
    case $1 in
        cgigate)
            start cgigate "$PORT_CGIGATE" "$WORK/cgigate.log" "$CGIGATE" --config "$WORK/conf/cgigate.toml"
            ROOTS[cgigate]=$STARTED_PID ;;
        apache)
            rm -f "$WORK/apache/cgid.sock"*
            start apache "$PORT_APACHE" "$WORK/apache/stdout.log" apache2 -f "$WORK/conf/apache.conf" -DFOREGROUND
            ROOTS[apache]=$STARTED_PID ;;
        lighttpd)
            start lighttpd "$PORT_LIGHTTPD" "$WORK/lighttpd/stdout.log" lighttpd -D -f "$WORK/conf/lighttpd.conf"
            ROOTS[lighttpd]=$STARTED_PID ;;
        nginx)
            rm -f "$WORK/nginx/fcgiwrap.sock"
            start fcgiwrap "" "$WORK/nginx/fcgiwrap.log" fcgiwrap -c 4 -s "unix:$WORK/nginx/fcgiwrap.sock"
            local fcgi_pid=$STARTED_PID
            for _ in $(seq 100); do [ -S "$WORK/nginx/fcgiwrap.sock" ] && break; sleep 0.1; done
            [ -S "$WORK/nginx/fcgiwrap.sock" ] || die "fcgiwrap did not create its socket (log: $WORK/nginx/fcgiwrap.log)"
            chmod 666 "$WORK/nginx/fcgiwrap.sock"  # nginx's workers run as nobody
            start nginx "$PORT_NGINX" "$WORK/nginx/stdout.log" nginx -p "$WORK/nginx/" -e "$WORK/nginx/error.log" \
                -c "$WORK/conf/nginx.conf" -g 'daemon off;'
            ROOTS[nginx]="$STARTED_PID $fcgi_pid" ;;
        go)
            start go "$PORT_GO" "$WORK/go.log" "$BENCH/gocgi/gocgi" "$CGI" "127.0.0.1:$PORT_GO"
            ROOTS[go]=$STARTED_PID ;;
    esac
}

stop_server() {  # stop_server NAME — its process groups: TERM, then KILL after 5 s
    local pid keep=() p
    for pid in ${ROOTS[$1]}; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    for pid in ${ROOTS[$1]}; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        case " ${ROOTS[$1]} " in *" $p "*) ;; *) keep+=("$p") ;; esac
    done
    PIDS=("${keep[@]}")
    for _ in $(seq 100); do
        ss -Hltn "sport = :$(port_of "$1")" | grep -q . || return 0
        sleep 0.1
    done
    die "$1 still listening on port $(port_of "$1") after it was stopped"
}

log "starting servers"
for s in $SERVERS; do start_server "$s"; done

port_of() {
    case $1 in
        cgigate*) echo "$PORT_CGIGATE" ;; apache) echo "$PORT_APACHE" ;;
        lighttpd) echo "$PORT_LIGHTTPD" ;; nginx*) echo "$PORT_NGINX" ;; go) echo "$PORT_GO" ;;
    esac
}
url_of() { echo "http://127.0.0.1:$(port_of "$1")$2"; }

# ---------------------------------------------------------------------------------------
# Check every server answers every program correctly before measuring anything.
log "checking responses"
head -c 102400 /dev/urandom >"$WORK/post.bin"
check() {  # check SERVER PATH WHAT
    local server=$1 path=$2 what=$3 url out
    url=$(url_of "$server" "$path")
    out="$WORK/raw/check.out"
    rm -f "$out"
    case $what in
        hello) curl -sf --max-time 10 "$url?q=1" -o "$out" && grep -q 'Hello from C, query=q=1' "$out" ;;
        hello.sh) curl -sf --max-time 10 "$url?q=1" -o "$out" && grep -q 'Hello from sh, query=q=1' "$out" ;;
        big) curl -sf --max-time 10 "$url" -o "$out" && [ "$(stat -c %s "$out")" = 1048576 ] ;;
        post-cl) curl -sf --max-time 10 --data-binary @"$WORK/post.bin" "$url" -o "$out" && cmp -s "$out" "$WORK/post.bin" ;;
        post-chunked) curl -sf --max-time 10 -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/post.bin" "$url" -o "$out" \
            && cmp -s "$out" "$WORK/post.bin" ;;
        slow) curl -sf --max-time 10 "$url" -o "$out" && grep -q '^second$' "$out" ;;
        ok) curl -sf --max-time 10 "$url" -o "$out" ;;
        refuses-chunked) [ "$(curl -s --max-time 10 -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/post.bin" \
            "$url" -o "$out" -w '%{http_code}')" = 400 ] ;;
    esac || die "$server: $what check failed for $url (got: $(head -c 300 "$out" 2>/dev/null | tr -c '[:print:]\n' '?'))"
}
for s in $SERVERS; do
    for p in hello hello.sh big slow; do check "$s" "/cgi/$p" "$p"; done
    check "$s" /cgi/echo post-cl
    # Go's net/http/cgi answers a chunked request body with 400 "Chunked request bodies are
    # not supported by CGI."; (d) chunked skips it.
    if [ "$s" = go ]; then check go /cgi/echo refuses-chunked; else check "$s" /cgi/echo post-chunked; fi
done
for m in auto buffer stream; do
    for p in hello big slow; do check cgigate "/$m/$p" "$p"; done
done
check cgigate /isolated/hello hello
check cgigate /hello ok
check cgigate /echo ok
check cgigate /static/hello.txt ok
check cgigate /ext/hello ok
check nginx /ret ok
check nginx /static/hello.txt ok
for s in cgigate nginx; do
    curl -sf --max-time 10 "$(url_of "$s" /static/big.bin)" -o "$WORK/raw/check.out" && cmp -s "$WORK/raw/check.out" "$WORK/static/big.bin" \
        || die "$s: /static/big.bin is not the file"
done

# ---------------------------------------------------------------------------------------
# Measurements. Every result is one line of results.tsv: round workload case server k=v...
RESULTS=$WORK/results.tsv
: >"$RESULTS"
COMMANDS=$WORK/commands.log
: >"$COMMANDS"
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }

run_wrk() {  # run_wrk ROUND WORKLOAD CASE SERVER PATH CONNS [POSTMODE]
    local round=$1 wl=$2 case=$3 server=$4 path=$5 conns=$6 post=${7:-} url raw line
    url=$(url_of "$server" "$path")
    raw="$WORK/raw/r$round-$wl-$case-$server.txt"
    local cmd=(wrk -t"$WRK_THREADS" -c"$conns" -d"${DURATION}s" --timeout 5s --latency -s "$BENCH/wrk.lua" "$url")
    echo "round $round $wl $case $server: ${post:+BENCH_POST=$post }${CLI_PIN[*]:+${CLI_PIN[*]} }${cmd[*]}" >>"$COMMANDS"
    if ! BENCH_POST=$post timeout $((DURATION + 30)) "${CLI_PIN[@]}" "${cmd[@]}" >"$raw" 2>&1; then
        log "wrk failed for $server $path (see $raw)"
        record "$round" "$wl" "$case" "$server" "failed=1"
        return 0
    fi
    line=$(grep '^WRKRESULT ' "$raw" | head -1) || { log "no result from wrk for $server $path"; record "$round" "$wl" "$case" "$server" "failed=1"; return 0; }
    record "$round" "$wl" "$case" "$server" "${line#WRKRESULT }"
    log "  round $round $wl $case $(printf '%-15s' "$server") $(awk '{for(i=1;i<=NF;i++){split($i,kv,"=");v[kv[1]]=kv[2]} printf "%8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  errors %d", v["requests"]/(v["duration_us"]/1e6), v["p50_us"]/1000, v["p99_us"]/1000, v["err_connect"]+v["err_read"]+v["err_write"]+v["err_status"]+v["err_timeout"]}' <<<"${line#WRKRESULT }")"
    sleep 0.5
}

run_ttfb() {  # run_ttfb ROUND SERVER PATH
    local round=$1 server=$2 path=$3 out
    echo "round $round f slow $server: python3 bench/ttfb.py 127.0.0.1 $(port_of "$server") $path" >>"$COMMANDS"
    if out=$(timeout 20 "${CLI_PIN[@]}" python3 "$BENCH/ttfb.py" 127.0.0.1 "$(port_of "$server")" "$path" 2>&1); then
        record "$round" f slow "$server" "${out#TTFB }"
        log "  round $round f slow $(printf '%-15s' "$server") ${out#TTFB }"
    else
        log "ttfb failed for $server $path: $out"
        record "$round" f slow "$server" "failed=1"
    fi
}

run_idle() {  # run_idle ROUND SERVER
    local round=$1 server=$2 out
    # A fresh server, warmed by 1 s of load, so "before" carries nothing kept from earlier
    # rounds' connections (allocators and GCs keep freed memory).
    stop_server "$server"
    start_server "$server"
    timeout 30 wrk -t"$WRK_THREADS" -c8 -d1s "$(url_of "$server" /cgi/hello)" >/dev/null 2>&1 || true
    sleep 1
    echo "round $round g idle $server: python3 bench/idle.py 127.0.0.1 $(port_of "$server") /cgi/hello $IDLE_CONNS ${ROOTS[$server]}" >>"$COMMANDS"
    if out=$(timeout 330 "${CLI_PIN[@]}" python3 "$BENCH/idle.py" 127.0.0.1 "$(port_of "$server")" /cgi/hello "$IDLE_CONNS" ${ROOTS[$server]} 2>&1); then
        record "$round" g idle "$server" "${out#IDLE }"
        log "  round $round g idle $(printf '%-15s' "$server") ${out#IDLE }"
    else
        log "idle connections failed for $server: $out"
        record "$round" g idle "$server" "failed=1"
    fi
    # And a fresh server again for the next round: a server that held 10,000 connections
    # keeps memory (lighttpd keeps its connection objects, and forks every CGI from that
    # bigger process), which would slow it in the later rounds' load runs.
    stop_server "$server"
    start_server "$server"
    timeout 30 wrk -t"$WRK_THREADS" -c8 -d1s "$(url_of "$server" /cgi/hello)" >/dev/null 2>&1 || true
}

run_cpu() {  # run_cpu ROUND SERVER PATH — (i): CPU per request from /proc around one wrk run
    local round=$1 server=$2 path=$3 out
    echo "round $round i cpu $server: python3 bench/cpu.py $(url_of "$server" "$path") 8 $DURATION ${ROOTS[${server%%-*}]}" >>"$COMMANDS"
    if out=$(timeout $((DURATION + 30)) "${CLI_PIN[@]}" python3 "$BENCH/cpu.py" "$(url_of "$server" "$path")" 8 "$DURATION" ${ROOTS[${server%%-*}]} 2>&1); then
        record "$round" i c8 "$server" "${out#CPU }"
        log "  round $round i cpu $(printf '%-15s' "$server") ${out#CPU }"
    else
        log "cpu measurement failed for $server $path: $out"
        record "$round" i c8 "$server" "failed=1"
    fi
    sleep 0.5
}

run_spawn() {  # run_spawn ROUND — 2 workers (the brief's), 8 (more in flight), and 2 workers
    # each holding IDLE_CONNS extra descriptors (what spawning costs a server holding (g)'s
    # connections)
    local round=$1 out spec case workers fds
    for spec in w2:2:0 w8:8:0 "w2-f$IDLE_CONNS:2:$IDLE_CONNS"; do
        IFS=: read -r case workers fds <<<"$spec"
        echo "round $round h spawn: ${SRV_PIN[*]:+${SRV_PIN[*]} }bench/spawn -w $workers -d $DURATION -m process -f $fds bench/cgi/hello" >>"$COMMANDS"
        if out=$(timeout $((DURATION + 30)) "${SRV_PIN[@]}" "$BENCH/spawn" -w "$workers" -d "$DURATION" -m process -f "$fds" "$CGI/hello" 2>&1); then
            record "$round" h "$case" spawn.c "$out"
            log "  round $round h spawn ${out}"
        else
            log "spawn.c failed: $out"
            record "$round" h "$case" spawn.c "failed=1"
        fi
        sleep 0.5
    done
}

printf 'start\t%s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" >"$WORK/meta.tsv"
printf 'load_start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$WORK/meta.tsv"

# Warm-up (not recorded): one short run per server, so no round pays for start-up.
log "warming up"
for s in $SERVERS; do
    timeout 30 wrk -t"$WRK_THREADS" -c8 -d1s "$(url_of "$s" /cgi/hello)" >/dev/null 2>&1 || true
done
timeout 30 wrk -t"$WRK_THREADS" -c8 -d1s "$(url_of nginx /ret)" >/dev/null 2>&1 || true

for round in $(seq "$ROUNDS"); do
    log "round $round of $ROUNDS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    printf 'load_round%s\t%s\n' "$round" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$WORK/meta.tsv"
    if has a; then
        for c in 8 32; do
            for s in $SERVERS; do run_wrk "$round" a "c$c" "$s" /cgi/hello "$c"; done
            run_wrk "$round" a "c$c" cgigate-isolated /isolated/hello "$c"
        done
    fi
    if has b; then
        for c in 8 32; do for s in $SERVERS; do run_wrk "$round" b "c$c" "$s" /cgi/hello.sh "$c"; done; done
    fi
    if has c; then
        for s in $SERVERS; do run_wrk "$round" c c8 "$s" /cgi/big 8; done
        run_wrk "$round" c c8 cgigate-buffer /buffer/big 8
        run_wrk "$round" c c8 cgigate-stream /stream/big 8
    fi
    if has d; then
        for mode in cl chunked; do
            for s in $SERVERS; do
                [ "$mode:$s" != chunked:go ] || continue  # refused with 400, see the checks
                run_wrk "$round" d "$mode" "$s" /cgi/echo 8 "$mode"
            done
        done
    fi
    if has e; then
        for c in 8 32; do
            run_wrk "$round" e "c$c" nginx /ret "$c"
            run_wrk "$round" e "c$c" cgigate-hello /hello "$c"
            run_wrk "$round" e "c$c" cgigate-echo /echo "$c"
            run_wrk "$round" e "c$c" cgigate-plugin /ext/hello "$c"
            run_wrk "$round" e "c$c" nginx-static /static/hello.txt "$c"
            run_wrk "$round" e "c$c" cgigate-static /static/hello.txt "$c"
            run_wrk "$round" e "c$c" nginx-static-big /static/big.bin "$c"
            run_wrk "$round" e "c$c" cgigate-static-big /static/big.bin "$c"
        done
    fi
    if has f; then
        for _ in $(seq "$TTFB_SAMPLES"); do
            for s in apache lighttpd nginx go; do run_ttfb "$round" "$s" /cgi/slow; done
            run_ttfb "$round" cgigate-stream /stream/slow
            run_ttfb "$round" cgigate-auto /auto/slow
            run_ttfb "$round" cgigate-buffer /buffer/slow
        done
    fi
    if has g; then
        for s in $SERVERS; do run_idle "$round" "$s"; done
    fi
    if has h; then
        run_spawn "$round"
    fi
    if has i; then
        for s in $SERVERS; do run_cpu "$round" "$s" /cgi/hello; done
        run_cpu "$round" cgigate-isolated /isolated/hello
        # The bare loop's parent and child, one worker (as one connection's worth of spawns).
        echo "round $round i cpu spawn.c: ${SRV_PIN[*]:+${SRV_PIN[*]} }bench/spawn -w 1 -d $DURATION -m process bench/cgi/hello" >>"$COMMANDS"
        if out=$(timeout $((DURATION + 30)) "${SRV_PIN[@]}" "$BENCH/spawn" -w 1 -d "$DURATION" -m process "$CGI/hello" 2>&1); then
            record "$round" i c8 spawn.c "$out"
            log "  round $round i cpu spawn.c ${out}"
        else
            log "spawn.c failed: $out"
            record "$round" i c8 spawn.c "failed=1"
        fi
    fi
done

# ---------------------------------------------------------------------------------------
# Report.
{
    printf 'end\t%s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    printf 'load_end\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf 'rounds\t%s\n' "$ROUNDS"
    printf 'duration\t%s\n' "$DURATION"
    printf 'wrk_threads\t%s\n' "$WRK_THREADS"
    printf 'ttfb_samples\t%s\n' "$TTFB_SAMPLES"
    printf 'idle_conns\t%s\n' "$IDLE_CONNS"
    printf 'workloads\t%s\n' "$WORKLOADS"
    printf 'pin\t%s\n' "$PIN"
    printf 'flush_after_ms\t%s\n' "$FLUSH_AFTER_MS"
    printf 'nproc\t%s\n' "$(nproc)"
    printf 'cpu\t%s\n' "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    printf 'mem\t%s\n' "$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    printf 'kernel\t%s\n' "$(uname -sr)"
    printf 'os\t%s\n' "$(. /etc/os-release && echo "$PRETTY_NAME")"
    printf 'nofile\t%s\n' "$NOFILE"
    printf 'git\t%s\n' "$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)"
    printf 'v_cgigate\t%s\n' "$("$CGIGATE" --version 2>/dev/null | head -1)"
    printf 'v_apache\t%s\n' "$(apache2 -v | head -1 | sed 's/^Server version: //')"
    printf 'v_lighttpd\t%s\n' "$(lighttpd -v | head -1 | sed 's/ - a light.*//')"
    printf 'v_nginx\t%s\n' "$(nginx -v 2>&1 | sed 's/^nginx version: //')"
    printf 'v_fcgiwrap\t%s\n' "fcgiwrap $(dpkg-query -W -f '${Version}' fcgiwrap 2>/dev/null || echo '?')"
    printf 'v_go\t%s\n' "$(go version)"
    printf 'v_wrk\t%s\n' "$(wrk -v 2>&1 | head -1 | sed 's/ Copyright.*//')"
    printf 'v_gcc\t%s\n' "$(gcc --version | head -1)"
    printf 'v_python\t%s\n' "$(python3 --version)"
    printf 'v_curl\t%s\n' "$(curl --version | head -1 | cut -d' ' -f1-2)"
    printf 'v_rustc\t%s\n' "$(rustc --version 2>/dev/null || echo '?')"
} >>"$WORK/meta.tsv"

python3 "$BENCH/report.py" "$WORK" "$OUTPUT" || die "report.py failed"
log "wrote $OUTPUT (raw results: $RESULTS)"
