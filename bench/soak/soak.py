#!/usr/bin/env python3
"""Soak and fault harness for cgigate (bench/soak/run.sh runs it).

Three roles in one file, each its own process so that the attack's event loop never delays
the latency measurement and the sampler:

  soak.py run    --bin BIN ...   the orchestrator: per scenario, start cgigate on its own
                                 config, warm up, take a baseline, run the attack and a
                                 latency probe side by side while sampling the server, let it
                                 settle, check for leaks, write RESULTS.md
  soak.py probe  --port P ...    legitimate client: open-loop GETs, fresh connection each,
                                 prints latencies as JSON
  soak.py attack --scenario X    the fault load (a..e), prints what it saw as JSON

Only loopback is used; every phase has a deadline; every process started is stopped.
"""

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

HOST = "127.0.0.1"
# The legitimate client comes from another address than the attacks, as it would in life:
# the server's per-client bound (max_children_per_client) tells them apart.
LEGIT_SOURCE = "127.0.0.2"
MIB = 1024 * 1024

# --------------------------------------------------------------------------------------------
# Scripts and configs
# --------------------------------------------------------------------------------------------

SCRIPTS = {
    # the legitimate request
    "hello": "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhello\\n'\n",
    # b: reads its whole stdin before answering
    "slurp": "#!/bin/sh\ncat >/dev/null\nprintf 'Content-Type: text/plain\\r\\n\\r\\nread\\n'\n",
    # c: 8 MiB of output; `head` is a second process of the script's group
    "big": "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\r\\n\\r\\n'\n"
    "head -c 8388608 /dev/zero\n",
    # d: a line every 50 ms, for ten minutes unless stopped
    "ticker.pl": "$| = 1;\nprint \"Content-Type: text/plain\\r\\n\\r\\n\";\n"
    "for my $i (1 .. 12000) { print \"tick $i\\n\"; select(undef, undef, undef, 0.05); }\n",
}

BASE_SERVER = {
    "max_connections": 12000,
    "header_timeout": '"10s"',
    "body_timeout": '"2s"',
    "keep_alive_timeout": '"5s"',
    "write_timeout": '"5s"',
    "shutdown_timeout": '"5s"',
}

# Per-scenario overrides of [server] (see RESULTS.md for why).
SERVER_OVERRIDES = {
    # an idle keep-alive connection is bounded by min(keep_alive_timeout, header_timeout):
    # both must outlast the 30 s hold plus the ramp
    "e": {"header_timeout": '"120s"', "keep_alive_timeout": '"120s"'},
}


def write_config(root, tag, scenario):
    cgi = os.path.join(root, "cgi-bin")
    os.makedirs(cgi, exist_ok=True)
    for name, text in SCRIPTS.items():
        path = os.path.join(cgi, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
    server = dict(BASE_SERVER)
    server.update(SERVER_OVERRIDES.get(scenario, {}))
    lines = ["[server]", 'listen = ["127.0.0.1:0"]']
    lines += [f"{k} = {v}" for k, v in server.items()]
    lines += [
        "",
        "[log]",
        'level = "warn"',
        'access = "off"',
        "",
        "[cgi]",
        "max_children = 512",
        # an attacking address gets 32 scripts running or waiting; the rest is 503 at once
        "max_children_per_client = 32",
        'queue_timeout = "5s"',
        'idle_timeout = "30s"',
        'kill_grace = "1s"',
        # every script carries the run's tag, so leftovers are found anywhere (orphans too)
        f'env = {{ SOAK_TAG = "{tag}" }}',
        "",
        "[[route]]",
        'prefix = "/status"',
        'handler = "status"',
        "",
        "[[route]]",
        'prefix = "/echo"',
        'handler = "echo"',
        "",
        "[[route]]",
        'prefix = "/cgi-bin/"',
        f'cgi_dir = "{cgi}"',
        "",
        "[[route]]",
        'prefix = "/streamed/"',
        f'cgi_dir = "{cgi}"',
        'output = "stream"',
        "",
        "[[route]]",
        'prefix = "/stream-in/"',
        f'cgi_dir = "{cgi}"',
        'request_body = "stream"',
        "",
    ]
    path = os.path.join(root, f"config-{scenario}.toml")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


# --------------------------------------------------------------------------------------------
# Observing the server through /proc
# --------------------------------------------------------------------------------------------


def rss_kib(pid):
    """(VmRSS, VmHWM) in KiB."""
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def reset_hwm(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_kinds(pid):
    kinds = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kind = target.split(":")[0] if ":" in target else "file"
        if kind == "anon_inode":
            kind = target
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def cpu_seconds(pid):
    """(own, reaped children) utime + stime of a process, in seconds. The server reaps its
    scripts, so the second figure is what the scripts used."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    rest = stat[stat.rfind(b")") + 2:].split()
    tck = os.sysconf("SC_CLK_TCK")
    return (int(rest[11]) + int(rest[12])) / tck, (int(rest[13]) + int(rest[14])) / tck


def own_cpu():
    """CPU seconds of this process and of the clients it has waited for."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def machine_busy():
    """(busy, total) CPU seconds over all CPUs since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:8]]
    idle = fields[3] + fields[4]
    tck = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tck, sum(fields) / tck


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def processes(server_pid, tag):
    """Children of the server (and how many are zombies) and every process carrying the tag."""
    needle = f"SOAK_TAG={tag}".encode()
    children = zombies = tagged = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(b")") + 2:].split()
        state, ppid = rest[0], int(rest[1])
        if ppid == server_pid:
            children += 1
            if state == b"Z":
                zombies += 1
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read():
                    tagged += 1
        except OSError:
            pass
    return {"children": children, "zombies": zombies, "scripts": tagged}


def tagged_pids(tag):
    needle = f"SOAK_TAG={tag}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if needle in f.read():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def snapshot(pid, tag):
    rss, hwm = rss_kib(pid)
    s = {"rss_kib": rss, "hwm_kib": hwm, "fds": fd_count(pid), "threads": threads(pid)}
    s.update(processes(pid, tag))
    return s


def status_json(port):
    with urllib.request.urlopen(f"http://{HOST}:{port}/status?format=json", timeout=5) as r:
        return json.loads(r.read())


# --------------------------------------------------------------------------------------------
# Small async HTTP helpers (raw bytes, no library)
# --------------------------------------------------------------------------------------------


def request(path, close=True, extra=""):
    conn = "Connection: close\r\n" if close else ""
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n{conn}{extra}\r\n".encode()


async def read_response(reader):
    """Read one response with Content-Length or chunked body; returns (status, body length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lines = head.decode("latin-1").lower().split("\r\n")
    length = None
    chunked = False
    for line in lines[1:]:
        if line.startswith("content-length:"):
            length = int(line.split(":", 1)[1])
        elif line.startswith("transfer-encoding:") and "chunked" in line:
            chunked = True
    if length is not None:
        await reader.readexactly(length)
        return status, length
    if chunked:
        total = 0
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            total += size
            if size == 0:
                return status, total
    body = await reader.read()
    return status, len(body)


def abort_with_reset(writer):
    sock = writer.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def percentile(values, p):
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100 * len(v) + 0.5)) - 1))
    return v[k]


# --------------------------------------------------------------------------------------------
# The legitimate client
# --------------------------------------------------------------------------------------------


async def probe_main(args):
    """Open loop: request i starts at t0 + i/rate whatever happened to the earlier ones, so a
    stall shows up as latency instead of as fewer samples (no coordinated omission). Each
    path gets its own schedule; the paths are interleaved."""
    paths = args.path or ["/cgi-bin/hello"]
    out = {p: {"latencies_ms": [], "connect_ms": [], "started_s": [], "errors": 0,
               "statuses": {}} for p in paths}
    t0 = time.perf_counter()
    t0_wall = time.time()

    async def one(path):
        r = out[path]
        start = time.perf_counter()
        writer = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(HOST, args.port, local_addr=(LEGIT_SOURCE, 0)),
                args.timeout,
            )
            r["connect_ms"].append((time.perf_counter() - start) * 1000)
            writer.write(request(path))
            status, _ = await asyncio.wait_for(read_response(reader), args.timeout)
            r["statuses"][status] = r["statuses"].get(status, 0) + 1
            if status != 200:
                r["errors"] += 1
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
            r["errors"] += 1
        finally:
            if writer is not None:
                writer.close()
        r["latencies_ms"].append((time.perf_counter() - start) * 1000)
        r["started_s"].append(round(start - t0, 3))

    tasks = []
    i = 0
    step = 1 / (args.rate * len(paths))
    while True:
        at = t0 + i * step
        if at >= t0 + args.duration:  # SIGINT shortens the duration
            break
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(paths[i % len(paths)])))
        i += 1
    await asyncio.gather(*tasks)
    out["t0_wall"] = t0_wall
    print(json.dumps(out))


# --------------------------------------------------------------------------------------------
# The attacks
# --------------------------------------------------------------------------------------------


def ready():
    print("ready", flush=True)


async def attack_slowloris(args):
    """a. Connections that send a head a byte at a time and never finish it; each reconnects
    when the server closes it."""
    head = (
        b"GET /cgi-bin/hello HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\n"
        + b"X-Pad: "
        + b"a" * 4000
    )
    stop = time.monotonic() + args.duration
    stats = {"connects": 0, "connect_errors": 0, "closed_by_server": 0, "got_408": 0,
             "lifetimes_s": [], "teardown_wall": time.time() + args.duration}
    established = 0
    all_up = asyncio.Event()

    async def one(k):
        nonlocal established
        await asyncio.sleep(random.random() * args.ramp)
        first = True
        while time.monotonic() < stop:
            try:
                reader, writer = await asyncio.open_connection(HOST, args.port)
            except OSError:
                stats["connect_errors"] += 1
                await asyncio.sleep(0.5)
                continue
            stats["connects"] += 1
            if first:
                first = False
                established += 1
                if established == args.count:
                    all_up.set()
            born = time.monotonic()
            reading = asyncio.create_task(reader.read())
            sent = 0
            try:
                while time.monotonic() < stop and not reading.done() and sent < len(head):
                    writer.write(head[sent:sent + 1])
                    sent += 1
                    await asyncio.wait([reading], timeout=args.interval)
                if reading.done():
                    data = reading.result() if not reading.exception() else b""
                    stats["closed_by_server"] += 1
                    if data.startswith(b"HTTP/1.1 408"):
                        stats["got_408"] += 1
                    stats["lifetimes_s"].append(time.monotonic() - born)
            except OSError:
                stats["closed_by_server"] += 1
                stats["lifetimes_s"].append(time.monotonic() - born)
            finally:
                reading.cancel()
                writer.transport.abort()

    tasks = [asyncio.create_task(one(k)) for k in range(args.count)]
    try:
        await asyncio.wait_for(all_up.wait(), args.ramp + 30)
    except asyncio.TimeoutError:
        pass
    ready()
    await asyncio.gather(*tasks)
    lt = stats.pop("lifetimes_s")
    stats["lifetime_p50_s"] = percentile(lt, 50)
    stats["lifetime_max_s"] = max(lt) if lt else None
    return stats


async def attack_stalled_uploads(args):
    """b. Chunked uploads to a streaming CGI that stop in the middle of a chunk."""
    head = (
        b"POST /stream-in/slurp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Transfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n"
        b"1000\r\n" + b"x" * 100
    )
    ends, statuses, errors = [], {}, 0

    async def one():
        nonlocal errors
        try:
            reader, writer = await asyncio.open_connection(HOST, args.port)
        except OSError:
            errors += 1
            return
        writer.write(head)
        sent = time.monotonic()
        try:
            data = await asyncio.wait_for(reader.read(), args.limit)
            ends.append(time.monotonic() - sent)
            key = data[9:12].decode() if data.startswith(b"HTTP/1.1 ") else "none"
            statuses[key] = statuses.get(key, 0) + 1
        except asyncio.TimeoutError:
            statuses["still-open"] = statuses.get("still-open", 0) + 1
        except OSError:
            statuses["reset"] = statuses.get("reset", 0) + 1
        finally:
            writer.transport.abort()

    ready()
    for _ in range(args.rounds):
        await asyncio.gather(*(one() for _ in range(args.count)))
    return {
        "uploads": args.count * args.rounds,
        "connect_errors": errors,
        "statuses": statuses,
        "closed_after_p50_s": percentile(ends, 50),
        "closed_after_max_s": max(ends) if ends else None,
    }


async def attack_slow_readers(args):
    """c. Clients that read a large CGI response a few KiB per second."""
    results = []

    async def one(k):
        try:
            reader, writer = await asyncio.open_connection(HOST, args.port)
        except OSError:
            results.append(("connect-error", 0, 0.0))
            return
        if args.rcvbuf:
            writer.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf
            )
        writer.write(request("/cgi-bin/big"))
        start = time.monotonic()
        got = 0
        outcome = "read-until-limit"
        try:
            while time.monotonic() - start < args.limit:
                data = await asyncio.wait_for(reader.read(args.chunk), args.limit)
                if not data:
                    outcome = "closed-by-server"
                    break
                got += len(data)
                await asyncio.sleep(1.0)
        except (OSError, asyncio.TimeoutError):
            outcome = "closed-by-server"
        finally:
            writer.transport.abort()
        results.append((outcome, got, time.monotonic() - start))

    tasks = [asyncio.create_task(one(k)) for k in range(args.count)]
    await asyncio.sleep(1.0)
    ready()
    await asyncio.gather(*tasks)
    by = {}
    for outcome, _, _ in results:
        by[outcome] = by.get(outcome, 0) + 1
    dropped = [t for o, _, t in results if o == "closed-by-server"]
    return {
        "readers": args.count,
        "outcomes": by,
        "bytes_read_p50_kib": (percentile([g for _, g, _ in results], 50) or 0) // 1024,
        "dropped_after_p50_s": percentile(dropped, 50),
        "dropped_after_max_s": max(dropped) if dropped else None,
    }


async def attack_disconnects(args):
    """d. Requests to a streaming CGI that the client abandons after 100 ms (half with FIN,
    half with RST)."""
    sem = asyncio.Semaphore(args.concurrency)
    stats = {"requests": 0, "connect_errors": 0, "head_before_leaving": 0, "fin": 0, "rst": 0}

    async def one(k):
        async with sem:
            try:
                reader, writer = await asyncio.open_connection(HOST, args.port)
            except OSError:
                stats["connect_errors"] += 1
                return
            stats["requests"] += 1
            leave = time.monotonic() + args.after
            writer.write(request("/streamed/ticker.pl", close=False))
            try:
                data = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), args.after)
                if data.startswith(b"HTTP/1.1 200"):
                    stats["head_before_leaving"] += 1
                await asyncio.sleep(max(0.0, leave - time.monotonic()))
            except (asyncio.TimeoutError, asyncio.IncompleteReadError, OSError):
                pass
            if k % 2:
                stats["rst"] += 1
                abort_with_reset(writer)
            else:
                stats["fin"] += 1
                writer.close()

    ready()
    await asyncio.gather(*(one(k) for k in range(args.count)))
    return stats


async def attack_idle(args):
    """e. Keep-alive connections left idle after one request each."""
    sem = asyncio.Semaphore(args.concurrency)
    conns, failures = [], {"connect": 0, "request": 0}

    async def open_one():
        async with sem:
            try:
                reader, writer = await asyncio.open_connection(HOST, args.port)
                writer.write(request(args.path, close=False))
                status, _ = await asyncio.wait_for(read_response(reader), 30)
                if status != 200:
                    raise ValueError(status)
            except OSError:
                failures["connect"] += 1
                return
            except (asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
                failures["request"] += 1
                return
            conns.append((reader, writer))

    t0 = time.monotonic()
    await asyncio.gather(*(open_one() for _ in range(args.count)))
    ramp = time.monotonic() - t0
    ready()
    await asyncio.sleep(args.hold)
    teardown = time.time()
    # Still open? A closed connection has EOF waiting; an open one has nothing to read.
    alive = 0
    for reader, _ in conns:
        if not reader.at_eof() and not reader._buffer:
            try:
                await asyncio.wait_for(reader.read(1), 0.0001)
            except asyncio.TimeoutError:
                alive += 1
                continue
    # Prove the survivors are usable: a second request on a sample of them.
    sample = conns[:: max(1, len(conns) // 100)]
    reused = 0
    for reader, writer in sample:
        try:
            writer.write(request(args.path, close=False))
            status, _ = await asyncio.wait_for(read_response(reader), 10)
            reused += status == 200
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
            pass
    for _, writer in conns:
        writer.transport.abort()
    return {
        "opened": len(conns),
        "failures": failures,
        "ramp_s": round(ramp, 1),
        "alive_after_hold": alive,
        "second_request_ok": f"{reused}/{len(sample)}",
        "teardown_wall": teardown,
    }


ATTACKS = {
    "a": attack_slowloris,
    "b": attack_stalled_uploads,
    "c": attack_slow_readers,
    "d": attack_disconnects,
    "e": attack_idle,
}


async def attack_main(args):
    stats = await ATTACKS[args.scenario](args)
    print(json.dumps(stats), flush=True)


# --------------------------------------------------------------------------------------------
# The orchestrator
# --------------------------------------------------------------------------------------------

SCENARIOS = {
    "a": {
        "title": "a. slowloris: 2,000 connections sending a head a byte at a time, 60 s",
        "args": ["--count", "2000", "--duration", "60", "--interval", "1", "--ramp", "5"],
        "limit": 120,
    },
    "b": {
        "title": "b. 500 chunked uploads stopping mid-chunk into a streaming CGI (4 rounds)",
        "args": ["--count", "500", "--rounds", "4", "--limit", "20"],
        "limit": 120,
    },
    "c": {
        "title": "c. 200 slow readers of an 8 MiB CGI response (4 KiB/s each)",
        "args": ["--count", "200", "--chunk", "4096", "--limit", "20"],
        "limit": 120,
    },
    "d": {
        "title": "d. 5,000 requests to a streaming CGI abandoned after 100 ms (concurrency 200)",
        "args": ["--count", "5000", "--concurrency", "200", "--after", "0.1"],
        "limit": 180,
    },
    "e": {
        "title": "e. 10,000 idle keep-alive connections after one request each, held 30 s",
        "args": ["--count", "10000", "--concurrency", "200", "--hold", "30",
                 "--path", "/cgi-bin/hello"],
        "limit": 240,
    },
}

SETTLE_LIMIT = 30.0
RSS_SETTLE_LIMIT = 30.0


def rss_target_kib(baseline_kib):
    """What "back to baseline" means: within 10 % or 2 MiB of the baseline, whichever is more."""
    return baseline_kib + max(2048, baseline_kib // 10)


class Server:
    def __init__(self, binary, config, log_path, pids_file):
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [binary, "--config", config],
            stdout=subprocess.PIPE,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
        )
        with open(pids_file, "a") as f:
            f.write(f"{self.proc.pid}\n")
        self.port = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                break
            if line.startswith("listening on http://"):
                self.port = int(line.strip().rsplit(":", 1)[1])
                break
        if self.port is None:
            self.stop()
            raise RuntimeError("cgigate did not report a listening address")
        # The access log is off; nothing else comes on stdout. Drain it anyway.
        self.proc.stdout.close()

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        """SIGTERM (graceful shutdown), SIGKILL after 15 s. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


CHILDREN = []


def child(args_list, limit):
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__)] + args_list,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    CHILDREN.append(proc)
    return proc, time.monotonic() + limit


def stop_children():
    for proc in CHILDREN:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    CHILDREN.clear()


# The legitimate requests: a tiny sh CGI (the target), and the in-process status page, which
# tells the server's own responsiveness apart from the cost of starting a process.
LEGIT = ["/cgi-bin/hello", "/status"]


def run_probe(port, duration, rate, paths=LEGIT):
    args = ["probe", "--port", str(port), "--duration", str(duration), "--rate", str(rate)]
    for p in paths:
        args += ["--path", p]
    return child(args, duration + 30)


def collect(proc, deadline):
    try:
        out, _ = proc.communicate(timeout=max(1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return {"error": "timed out"}
    lines = [l for l in out.splitlines() if l.strip() and l.strip() != "ready"]
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"error": f"no result (exit {proc.returncode})"}


def latency_summary(result):
    return {path: path_summary(r) for path, r in result.items() if isinstance(r, dict)}


def path_summary(result):
    lat = result.get("latencies_ms", [])
    slow = sorted(zip(lat, result.get("started_s", [])), reverse=True)[:5]
    return {
        "n": len(lat),
        "p50": percentile(lat, 50),
        "p99": percentile(lat, 99),
        "max": max(lat) if lat else None,
        "connect_p99": percentile(result.get("connect_ms", []), 99),
        "errors": result.get("errors"),
        # the slowest requests and when they started (s after the probe began)
        "slowest": [[round(l, 1), t] for l, t in slow],
    }


def poll(cond, limit, step=0.25):
    """Poll `cond` until it returns a truthy value or `limit` seconds pass; (value, seconds)."""
    t0 = time.monotonic()
    while True:
        v = cond()
        if v or time.monotonic() - t0 >= limit:
            return v, time.monotonic() - t0
        time.sleep(step)


def warm_up(port):
    """So that the baseline is not a cold process."""
    proc, deadline = run_probe(port, 3, 50)
    collect(proc, deadline)


def run_scenario(key, opts, root, tag, pids_file):
    sc = SCENARIOS[key]
    print(f"== {sc['title']}", flush=True)
    config = write_config(root, tag, key)
    server = Server(opts.bin, config, os.path.join(root, f"server-{key}.log"), pids_file)
    pid, port = server.pid, server.port
    result = {"key": key, "title": sc["title"]}
    try:
        warm_up(port)
        poll(lambda: processes(pid, tag)["scripts"] == 0, 10)
        before = snapshot(pid, tag)
        before["fd_kinds"] = fd_kinds(pid)
        result["before"] = before
        print(f"   before: {before}", flush=True)

        proc, deadline = run_probe(port, opts.baseline, opts.rate)
        result["baseline"] = latency_summary(collect(proc, deadline))
        print(f"   baseline latency: {result['baseline']}", flush=True)

        reset_hwm(pid)
        cpu0, busy0, ours0 = cpu_seconds(pid), machine_busy(), own_cpu()
        attack, attack_deadline = child(
            ["attack", "--scenario", key, "--port", str(port)] + sc["args"], sc["limit"]
        )
        # The probe starts once the attack is in place.
        line = ""
        ready_deadline = time.monotonic() + sc["limit"]
        while time.monotonic() < ready_deadline:
            line = attack.stdout.readline()
            if not line or line.strip() == "ready":
                break
        t_attack = time.monotonic()
        probe = None
        peak = dict(before)
        samples = 0
        released = None
        while attack.poll() is None and time.monotonic() < attack_deadline:
            if probe is None:
                probe, _ = run_probe(port, sc["limit"], opts.rate)
            try:
                s = snapshot(pid, tag)
            except OSError:
                break
            samples += 1
            for k in ("rss_kib", "fds", "threads", "children", "zombies", "scripts"):
                peak[k] = max(peak.get(k, 0), s[k])
            # When the server let go of the attack's connections (c: a slow reader cannot
            # see that, the data already sent is still in its receive buffer).
            if s["fds"] > before["fds"] + 10:
                released = None
            elif released is None and peak["fds"] > before["fds"] + 10:
                released = time.monotonic() - t_attack
            time.sleep(0.5)
        # The probe measures for as long as the attack ran; stop it and take what it has.
        attack_stats = collect(attack, attack_deadline)
        result["attack"] = attack_stats
        result["attack_seconds"] = round(time.monotonic() - t_attack, 1)
        result["released_s"] = None if released is None else round(released, 1)
        result["load"] = os.getloadavg()
        if probe is not None:
            probe.send_signal(signal.SIGINT)
            try:
                out, _ = probe.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                probe.kill()
                out, _ = probe.communicate()
            probed = parse_probe_partial(out)
            result["during"] = latency_summary(probed)
            teardown = attack_stats.get("teardown_wall") if isinstance(attack_stats, dict) else None
            if teardown and probed.get("t0_wall"):
                result["during_held"] = latency_summary(
                    until(probed, teardown - probed["t0_wall"]))
        cpu1, busy1, ours1 = cpu_seconds(pid), machine_busy(), own_cpu()
        # Where the CPU went while the attack ran (2 cores: 2 s of CPU per second).
        busy = busy1[0] - busy0[0]
        server_cpu = cpu1[0] - cpu0[0]
        scripts = cpu1[1] - cpu0[1]
        clients = ours1 - ours0
        result["cpu"] = {
            "available_s": round(busy1[1] - busy0[1], 1),
            "busy_s": round(busy, 1),
            "server_s": round(server_cpu, 1),
            "scripts_s": round(scripts, 1),
            "clients_s": round(clients, 1),
            "other_s": round(max(0.0, busy - server_cpu - scripts - clients), 1),
        }
        peak["hwm_kib"] = rss_kib(pid)[1]
        peak["rss_kib"] = max(peak["rss_kib"], peak["hwm_kib"])
        result["peak"] = peak
        print(f"   attack: {attack_stats}", flush=True)
        print(f"   during latency: {result.get('during')}", flush=True)
        print(f"   peak: {peak}", flush=True)

        # Settle: descriptors back, no scripts, no zombies — polled, not slept.
        def settled():
            s = snapshot(pid, tag)
            ok = s["fds"] <= before["fds"] and s["scripts"] == 0 and s["zombies"] == 0
            return s if ok else None

        _, t_settle = poll(settled, SETTLE_LIMIT)
        target = rss_target_kib(before["rss_kib"])
        _, t_rss = poll(lambda: rss_kib(pid)[0] <= target, RSS_SETTLE_LIMIT, 0.5)
        after = snapshot(pid, tag)
        after["fd_kinds"] = fd_kinds(pid)
        after["status"] = status_json(port)
        result["after"] = after
        result["settle_s"] = round(t_settle, 1)
        result["rss_settle_s"] = round(t_rss, 1)
        result["rss_target_kib"] = target
        print(f"   after ({t_settle:.1f} s, rss {t_rss:.1f} s): {after}", flush=True)
    finally:
        stop_children()
        result["exit_code"] = server.stop()
        for p in tagged_pids(tag):
            # Only scripts of this run carry the tag; a survivor is a finding, and is ended.
            result.setdefault("killed_leftovers", 0)
            result["killed_leftovers"] += 1
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
    with open(os.path.join(root, f"server-{key}.log"), "rb") as f:
        log = f.read().decode("utf-8", "replace").splitlines()
    result["log_warnings"] = sum(1 for l in log if " WARN " in l)
    result["log_errors"] = sum(1 for l in log if " ERROR " in l)
    result["log_sample"] = [l for l in log if " WARN " in l or " ERROR " in l][:5]
    return result


def until(probed, cutoff):
    """The probe's requests that started before `cutoff` seconds."""
    out = {}
    for path, r in probed.items():
        if not isinstance(r, dict):
            continue
        keep = [i for i, t in enumerate(r["started_s"]) if t < cutoff]
        out[path] = {
            "latencies_ms": [r["latencies_ms"][i] for i in keep],
            "started_s": [r["started_s"][i] for i in keep],
            "connect_ms": [r["connect_ms"][i] for i in keep if i < len(r["connect_ms"])],
            "errors": r["errors"],
        }
    return out


def parse_probe_partial(out):
    lines = [l for l in out.splitlines() if l.strip()]
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        return {}


# --------------------------------------------------------------------------------------------
# RESULTS.md
# --------------------------------------------------------------------------------------------


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def ms(v):
    return "–" if v is None else f"{v:.1f} ms"


def verdicts(r):
    """(RSS back, descriptors back, no scripts or zombies left, hello p99 ≤ 2× baseline)."""
    b, a = r["before"], r["after"]
    rss_back = a["rss_kib"] <= r["rss_target_kib"]
    fds_back = a["fds"] <= b["fds"]
    clean = a["scripts"] == 0 and a["zombies"] == 0 and not r.get("killed_leftovers")
    base = r["baseline"].get(LEGIT[0], {}).get("p99")
    during = r.get("during", {}).get(LEGIT[0], {}).get("p99")
    lat_ok = during is not None and base is not None and during <= 2 * base
    return rss_back, fds_back, clean, lat_ok


def yes(ok):
    return "ok" if ok else "**missed**"


def lat_cell(x):
    if not x:
        return "–"
    return (f"**{ms(x['p99'])}** (p50 {ms(x['p50'])}, max {ms(x['max'])}, n {x['n']}, "
            f"errors {x['errors']})")


def scenario_table(r):
    b, p, a = r["before"], r["peak"], r["after"]
    rss_back, fds_back, clean, lat_ok = verdicts(r)
    base, dur = r["baseline"], r.get("during", {})
    rows = [
        f"### {r['title']}",
        "",
        "| measure | before | during (peak) | after | target |",
        "| --- | --- | --- | --- | --- |",
        f"| server RSS | {mib(b['rss_kib'])} | {mib(p['rss_kib'])} | {mib(a['rss_kib'])} "
        f"(polled {r['rss_settle_s']} s) | ≤ {mib(r['rss_target_kib'])}: {yes(rss_back)} |",
        f"| open descriptors | {b['fds']} | {p['fds']} | {a['fds']} "
        f"(polled {r['settle_s']} s) | ≤ {b['fds']}: {yes(fds_back)} |",
        f"| live scripts (tagged processes) | {b['scripts']} | {p['scripts']} | "
        f"{a['scripts']} | 0: {yes(a['scripts'] == 0 and not r.get('killed_leftovers'))} |",
        f"| children of the server / zombies | {b['children']} / {b['zombies']} | "
        f"{p['children']} / {p['zombies']} | {a['children']} / {a['zombies']} | "
        f"0 zombies: {yes(a['zombies'] == 0)} |",
        f"| threads | {b['threads']} | {p['threads']} | {a['threads']} | – |",
        f"| GET /cgi-bin/hello p99 | {lat_cell(base.get(LEGIT[0]))} | "
        f"{lat_cell(dur.get(LEGIT[0]))} | – | ≤ 2× baseline: {yes(lat_ok)} |",
        f"| GET /status p99 (in-process) | {lat_cell(base.get(LEGIT[1]))} | "
        f"{lat_cell(dur.get(LEGIT[1]))} | – | – |",
        *([f"| hello p99 while held (before the attack's own teardown) | – | "
           f"{lat_cell(r['during_held'].get(LEGIT[0]))} | – | – |"]
          if r.get("during_held") else []),
        f"| connect() p99 (hello) | {ms(base.get(LEGIT[0], {}).get('connect_p99'))} | "
        f"{ms(dur.get(LEGIT[0], {}).get('connect_p99'))} | – | – |",
        "",
    ]
    c = r.get("cpu", {})
    rows += [
        "- Attack client: `"
        + json.dumps({k: v for k, v in r["attack"].items() if k != "teardown_wall"})
        + "`",
        f"- The attack ran {r['attack_seconds']} s once in place; the server's descriptors "
        "were back near the baseline "
        + (f"{r['released_s']} s after it was in place (while the attack still ran)."
           if r["released_s"] is not None else "once the attack ended."),
        f"- CPU while it ran: {c.get('busy_s')} s busy of {c.get('available_s')} s "
        f"(2 cores): server {c.get('server_s')} s, scripts {c.get('scripts_s')} s, "
        f"harness clients {c.get('clients_s')} s, everything else on the machine "
        f"{c.get('other_s')} s. Load average after: "
        f"{' '.join(f'{x:.2f}' for x in r['load'])}.",
        f"- Slowest hello requests during (ms, s after the probe started): "
        f"`{dur.get(LEGIT[0], {}).get('slowest')}`",
        f"- Server exit code after SIGTERM: {r['exit_code']}; log: {r['log_warnings']} "
        f"warnings, {r['log_errors']} errors. Descriptors after: `{a['fd_kinds']}`.",
        "",
    ]
    return rows


NOTES_MARK = "<!-- notes below this line are kept when run.sh rewrites the file -->"


def render(results, facts, opts, notes):
    out = [
        "# cgigate soak and fault results",
        "",
        f"Generated by `bench/soak/run.sh` (`soak.py {' '.join(opts.argv)}`); raw figures in "
        "`bench/soak/results.json`.",
        "",
        "## Machine",
        "",
        "```",
        *facts,
        "```",
        "",
        "The attack client, the latency probe and the sampler are Python processes on the same "
        "2 cores as the server and its scripts, and the machine is shared with other work: the "
        "CPU line of each scenario says who used what.",
        "",
        "## Method",
        "",
        "- Each scenario starts cgigate on its own config: `[server]` header_timeout 10 s, "
        "body_timeout 2 s, keep_alive_timeout 5 s, write_timeout 5 s, max_connections 12000; "
        "`[cgi]` max_children 512, kill_grace 1 s; access log off. Scenario e raises "
        "header_timeout and keep_alive_timeout to 120 s (an idle keep-alive connection is "
        "bounded by both).",
        "- Warm-up (3 s of the probe at 50 req/s), then **before**: RSS (VmRSS), open "
        "descriptors (`/proc/PID/fd`), children of the server, zombies, and scripts: every "
        "process whose environment carries this run's `SOAK_TAG` (set through `[cgi] env`), so "
        "orphans that left the server's process tree count too.",
        f"- **Baseline** latency: {opts.baseline:g} s of GET /cgi-bin/hello (a one-line sh CGI) "
        f"and GET /status (in-process), {opts.rate:g} req/s each, open loop, a fresh "
        "connection per request; the same probe runs for as long as the attack does "
        "(**during**). p99 is the target; /status shows whether the server itself stalls or "
        "only process start-up got slower.",
        "- **Peak**: sampled every 0.5 s during the attack, plus the kernel's VmHWM.",
        f"- **After**: poll (≤ {SETTLE_LIMIT:.0f} s) until descriptors ≤ before, 0 scripts and "
        f"0 zombies; then poll (≤ {RSS_SETTLE_LIMIT:.0f} s) for RSS to be *back*: RSS ≤ before "
        "+ max(2 MiB, 10 % of before). (The server's allocator is jemalloc, which hands unused "
        "pages back after its 10 s decay; no trimming is done from outside.)",
        "- Targets: descriptors back, 0 zombies, 0 scripts left, RSS back, hello p99 during ≤ "
        "2× baseline.",
        "",
        "## Summary",
        "",
        "| scenario | RSS before → peak → after | fds before → peak → after | "
        "scripts / zombies after | hello p99 baseline → during | /status p99 baseline → during |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        b, p, a = r["before"], r["peak"], r["after"]
        rss_back, fds_back, clean, lat_ok = verdicts(r)
        bl = lambda path, k="p99": r["baseline"].get(path, {}).get(k)
        dl = lambda path, k="p99": r.get("during", {}).get(path, {}).get(k)
        out.append(
            f"| {r['key']} | {mib(b['rss_kib'])} → {mib(p['rss_kib'])} → {mib(a['rss_kib'])} "
            f"{yes(rss_back)} | {b['fds']} → {p['fds']} → "
            f"{a['fds']} {yes(fds_back)} | {a['scripts']} / {a['zombies']} {yes(clean)} | "
            f"{ms(bl(LEGIT[0]))} → {ms(dl(LEGIT[0]))} {yes(lat_ok)} | "
            f"{ms(bl(LEGIT[1]))} → {ms(dl(LEGIT[1]))} |"
        )
    out += ["", "## Scenarios", ""]
    for r in results:
        out += scenario_table(r)
    out += [NOTES_MARK]
    return "\n".join(out) + ("\n" + notes if notes else "\n")


def machine_facts(binary):
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except subprocess.TimeoutExpired:
            return "?"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return [
        f"date:    {sh('date -u +%Y-%m-%dT%H:%M:%SZ')}",
        f"commit:  {sh(f'git -C {root} rev-parse --short HEAD')} "
        f"({sh(f'git -C {root} log -1 --format=%s')})",
        f"nproc:   {sh('nproc')}",
        f"kernel:  {sh('uname -srm')}",
        f"python:  {sys.version.split()[0]}",
        "free -h:",
        *("  " + l for l in sh("free -h").splitlines()),
        f"ulimit -n (client): {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}",
        f"niceness of the harness, server and scripts: {os.nice(0)}; {AUTOGROUP}",
        f"load average at start: {START_LOAD}",
        f"server binary: {binary}",
    ]


START_LOAD = ""
AUTOGROUP = "autogroup: n/a"


def prioritise(nice):
    """Run this session (harness, server, scripts) at `nice`. With autogroup scheduling a
    process's nice value only counts inside its session, so the session's autogroup gets it
    too (run.sh starts the harness in a session of its own)."""
    global AUTOGROUP
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError:
        pass
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(nice))
    except OSError:
        pass
    try:
        with open("/proc/self/autogroup") as f:
            AUTOGROUP = "autogroup: " + f.read().strip()
    except OSError:
        pass


def run_main(opts):
    global START_LOAD
    START_LOAD = " ".join(f"{x:.2f}" for x in os.getloadavg())
    if opts.nice is not None:
        prioritise(opts.nice)
    raise_nofile()
    keys = [k.strip() for k in opts.scenarios.split(",") if k.strip()]
    root = tempfile.mkdtemp(prefix="cgigate-soak-")
    tag = f"soak-{os.getpid()}-{int(time.time())}"
    results = []
    try:
        for key in keys:
            results.append(run_scenario(key, opts, root, tag, opts.pids_file))
    finally:
        if not opts.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}")
    facts = machine_facts(opts.bin)
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"facts": facts, "results": results}, f, indent=1)
    if opts.out:
        notes = ""
        if os.path.exists(opts.out):
            with open(opts.out) as f:
                old = f.read()
            if NOTES_MARK in old:
                notes = old.split(NOTES_MARK, 1)[1].lstrip("\n")
        with open(opts.out, "w") as f:
            f.write(render(results, facts, opts, notes))
        print(f"wrote {opts.out}")
    missed = [r["key"] for r in results if not all(verdicts(r))]
    print("targets missed in: " + (",".join(missed) if missed else "none"))
    return 1 if missed else 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run")
    r.add_argument("--bin", required=True)
    r.add_argument("--scenarios", default="a,b,c,d,e")
    r.add_argument("--baseline", type=float, default=15)
    r.add_argument("--rate", type=float, default=25)
    r.add_argument("--out")
    r.add_argument("--json")
    r.add_argument("--pids-file", default=os.devnull)
    r.add_argument("--keep", action="store_true")
    r.add_argument("--nice", type=int, help="niceness for the harness, server and scripts")

    pr = sub.add_parser("probe")
    pr.add_argument("--port", type=int, required=True)
    pr.add_argument("--duration", type=float, default=10)
    pr.add_argument("--rate", type=float, default=25)
    pr.add_argument("--path", action="append", help="repeat for several (default /cgi-bin/hello)")
    pr.add_argument("--timeout", type=float, default=10)

    a = sub.add_parser("attack")
    a.add_argument("--scenario", required=True, choices=sorted(ATTACKS))
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--count", type=int, default=100)
    a.add_argument("--duration", type=float, default=60)
    a.add_argument("--interval", type=float, default=1)
    a.add_argument("--ramp", type=float, default=5)
    a.add_argument("--rounds", type=int, default=1)
    a.add_argument("--limit", type=float, default=30)
    a.add_argument("--chunk", type=int, default=4096)
    a.add_argument("--rcvbuf", type=int, default=0)
    a.add_argument("--concurrency", type=int, default=200)
    a.add_argument("--after", type=float, default=0.1)
    a.add_argument("--hold", type=float, default=30)
    a.add_argument("--path", default="/cgi-bin/hello")

    args = p.parse_args()
    # SIGTERM (run.sh's trap, timeout) unwinds, so servers and clients are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.cmd == "run":
        args.argv = sys.argv[1:]
        sys.exit(run_main(args))
    raise_nofile()
    if args.cmd == "probe":
        # SIGINT ends the probe early with what it has measured (the orchestrator stops it
        # when the attack ends).
        loop = asyncio.new_event_loop()
        main_task = loop.create_task(probe_main(args))
        loop.add_signal_handler(signal.SIGINT, lambda: args.__setattr__("duration", 0))
        loop.run_until_complete(main_task)
    else:
        asyncio.run(attack_main(args))


if __name__ == "__main__":
    main()
