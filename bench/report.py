#!/usr/bin/env python3
"""Turn bench/work/results.tsv and meta.tsv (written by bench/run.sh) into BENCHMARKS.md.

    report.py WORK_DIR OUTPUT_FILE

Every figure in the tables is the median over the rounds; ratios are ratios of medians.
"""
import os
import statistics
import sys

NAMES = {
    "cgigate": "cgigate (auto)",
    "cgigate-auto": "cgigate (auto)",
    "cgigate-buffer": "cgigate (buffer)",
    "cgigate-stream": "cgigate (stream)",
    "cgigate-hello": "cgigate `handler = \"hello\"`",
    "cgigate-echo": "cgigate `handler = \"echo\"` (GET)",
    "cgigate-static": "cgigate `static_dir` (6-byte file)",
    "cgigate-static-big": "cgigate `static_dir` (1 MiB file)",
    "nginx-static": "nginx `root` (6-byte file)",
    "nginx-static-big": "nginx `root` (1 MiB file)",
    "cgigate-plugin": "cgigate C plugin (examples/plugins/c/hello.c)",
    "cgigate-isolated": "cgigate, isolated route (user, limits, sandbox)",
    "apache": "Apache 2.4 mod_cgid, mpm_event",
    "lighttpd": "lighttpd mod_cgi",
    "nginx": "nginx + fcgiwrap (4 workers)",
    "go": "Go net/http/cgi",
    "spawn.c": "bench/spawn.c",
}
PEERS = ["apache", "lighttpd", "nginx", "go"]


def load(work):
    meta = {}
    with open(os.path.join(work, "meta.tsv")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            meta[k] = v
    rows = []
    with open(os.path.join(work, "results.tsv")) as f:
        for line in f:
            rnd, wl, case, server, kv = line.rstrip("\n").split("\t", 4)
            d = {}
            for item in kv.split():
                k, _, v = item.partition("=")
                try:
                    d[k] = float(v)
                except ValueError:
                    d[k] = v
            if "requests" in d:
                secs = d["duration_us"] / 1e6
                d["rps"] = d["requests"] / secs
                d["mbps"] = d["bytes"] / secs / 1e6
                d["p50"] = d["p50_us"] / 1000
                d["p99"] = d["p99_us"] / 1000
                d["errors"] = sum(d[k] for k in d if k.startswith("err_"))
            rows.append((int(rnd), wl, case, server, d))
    return meta, rows


class Results:
    def __init__(self, rows):
        self.rows = rows

    def runs(self, wl, case, server):
        return [d for (_, w, c, s, d) in self.rows if (w, c, s) == (wl, case, server)]

    def med(self, wl, case, server, key):
        vals = [d[key] for d in self.runs(wl, case, server) if key in d and not d.get("failed")]
        return statistics.median(vals) if vals else None

    def errors(self, wl, case, server):
        return sum(d.get("errors", 0) for d in self.runs(wl, case, server))

    def failed(self, wl, case, server):
        return sum(1 for d in self.runs(wl, case, server) if d.get("failed"))

    def has(self, wl):
        return any(w == wl for (_, w, _, _, _) in self.rows)


def fmt(v, digits=0):
    if v is None:
        return "—"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    if a is None or not b:
        return "—"
    return f"{a / b:.2f}×"


def mark(res, wl, case, server, text):
    notes = []
    if res.failed(wl, case, server):
        notes.append(f"{res.failed(wl, case, server)} run(s) failed")
    if res.errors(wl, case, server):
        notes.append(f"{int(res.errors(wl, case, server))} errors/non-2xx")
    return f"{text} ⚠ ({', '.join(notes)})" if notes else text


def rate_table(res, wl, cases, servers, ref="cgigate", ref_label="cgigate ÷ this",
               ratio_of_row=False, mbps=False):
    """A table of req/s, p50, p99 for each case; the ratio columns compare ref to each row
    (or each row to ref, with ratio_of_row)."""
    head = ["server"]
    for c in cases:
        head += [f"{c} req/s"] + (["MB/s"] if mbps else []) + ["p50 ms", "p99 ms"]
    head += [f"{ref_label} ({c})" for c in cases]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in servers:
        if not any(res.runs(wl, c, s) for c in cases):
            continue
        cells = [NAMES.get(s, s)]
        for c in cases:
            cells.append(mark(res, wl, c, s, fmt(res.med(wl, c, s, "rps"))))
            if mbps:
                cells.append(fmt(res.med(wl, c, s, "mbps"), 1))
            cells += [fmt(res.med(wl, c, s, "p50"), 2), fmt(res.med(wl, c, s, "p99"), 2)]
        for c in cases:
            mine, theirs = res.med(wl, c, ref, "rps"), res.med(wl, c, s, "rps")
            if s == ref:
                cells.append("—")
            elif ratio_of_row:
                cells.append(ratio(theirs, mine))
            else:
                cells.append(ratio(mine, theirs))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def best_peer(res, wl, case):
    vals = [(res.med(wl, case, p, "rps"), p) for p in PEERS if res.med(wl, case, p, "rps")]
    return max(vals) if vals else (None, None)


def verdict(ok):
    return "met" if ok else "**not met**"


def main():
    work, output = os.path.abspath(sys.argv[1]), sys.argv[2]
    meta, rows = load(work)
    res = Results(rows)
    rounds = int(meta.get("rounds", 1))
    dur = meta.get("duration", "?")
    wt = meta.get("wrk_threads", "2")
    flush = float(meta.get("flush_after_ms", 50))
    pinned = meta.get("pin") == "1"
    L = []
    w = L.append

    w("# Benchmarks")
    w("")
    w("Generated by `bench/run.sh` — do not edit by hand; rerun it. Every figure is the **median "
      f"of {rounds} round(s)**; in each round every workload runs against every server in turn "
      "(Apache, lighttpd, nginx, Go, then cgigate), so slow drifts of the machine hit all of "
      "them alike. Ratios are ratios of the medians.")
    w("")
    loads = [meta.get("load_start", "?")] + [meta[k] for k in sorted(meta) if k.startswith("load_round")] + [meta.get("load_end", "?")]
    w("## Machine and run")
    w("")
    w(f"- Date: {meta.get('start')} → {meta.get('end')}")
    w(f"- Machine: {meta.get('nproc')} CPUs ({meta.get('cpu')}), {meta.get('mem')} RAM, "
      f"{meta.get('os')}, {meta.get('kernel')}")
    w(f"- Load average (1/5/15 min) at start, at each round, at the end: {' · '.join(loads)}")
    w(f"- cgigate: {meta.get('v_cgigate')} at `{meta.get('git')}`, built with "
      f"`cargo build --release` ({meta.get('v_rustc')})")
    w(f"- Peers: {meta.get('v_apache')}; {meta.get('v_lighttpd')}; {meta.get('v_nginx')} with "
      f"{meta.get('v_fcgiwrap')}; {meta.get('v_go')}")
    w(f"- Tools: {meta.get('v_wrk')}; {meta.get('v_gcc')}; {meta.get('v_python')}; {meta.get('v_curl')}")
    w(f"- Client and servers share the same {meta.get('nproc')} CPUs over loopback. "
      + ("wrk is pinned to CPU 1 and every server, its CGI children and spawn.c to CPU 0 "
         "(`taskset`, `--pin`)." if pinned else
         "Nothing is pinned: wrk (always the same `-t" + wt + "`, and the same `-c` for every "
         "server in a row) competes with the server and its CGI children for both CPUs, "
         "equally for every server. `bench/run.sh --pin` pins wrk to CPU 1 and the servers "
         "to CPU 0 instead."))
    try:
        lavg = float(meta.get("load_start", "0").split()[0])
    except ValueError:
        lavg = 0
    if lavg > 0.5:
        w(f"- **The machine was not quiet** (load average {meta.get('load_start')} at the start, "
          "from other work): absolute numbers are low and noisy; the interleaving keeps the "
          "ratios fairer than the absolute figures. Rerun on a quiet machine before quoting them.")
    w("")

    if res.has("a") or res.has("b"):
        for wl, title in (("a", "hello — the tiny C CGI (examples/cgi/hello.c)"),
                          ("b", "hello.sh — the same under /bin/sh")):
            if not res.has(wl):
                continue
            w(f"## ({wl}) {title}, keep-alive")
            w("")
            w(f"`wrk -t{wt} -c8` and `-c32`, {dur} s per run, `GET /cgi/{'hello' if wl == 'a' else 'hello.sh'}`.")
            w("")
            extra = ["cgigate-isolated"] if wl == "a" and res.runs("a", "c8", "cgigate-isolated") else []
            w(rate_table(res, wl, ["c8", "c32"], PEERS + ["cgigate"] + extra))
            w("")
            if extra:
                w("The isolated row is `GET /isolated/hello`: the same program on a route with "
                  "`user = \"nobody\"`, `limits` (cpu, memory, processes, open_files, "
                  "file_size) and `sandbox = { enabled = true, tcp_connect = false, "
                  "tcp_bind = false }`, always started by that route's spawn helper "
                  "(docs/isolation.md).")
                w("")
    spawn2 = res.med("h", "w2", "spawn.c", "rate")
    spawn8 = res.med("h", "w8", "spawn.c", "rate")
    spawn = max(v for v in (spawn2, spawn8, 0) if v is not None) or None
    if spawn:
        w("## (h) The raw limit: spawning `hello` with no HTTP at all")
        w("")
        w(f"`bench/spawn -w 2|8 -d {dur} -m process bench/cgi/hello`: 2 (or 8) worker processes, each "
          "looping pipe2 → posix_spawn (stdout on the pipe, stdin /dev/null, a 5-variable "
          "environment) → read to EOF → waitpid. The ceiling for (a) is the better of the two: "
          "on a quiet machine 2 workers keep both CPUs busy; on a shared one, 8 runnable "
          "processes get a larger share of the CPUs, as a server with 8–32 CGIs in flight does. "
          "spawn.c runs alone, while in (a) wrk shares the 2 CPUs with the server: 90% of "
          "this ceiling leaves the server and its client 10% of the CPU time for all of HTTP.")
        w("")
        nfd = int(float(meta.get("idle_conns", 0)))
        w("| workers | extra open descriptors per worker | spawns/s | rounds |")
        w("|---|---|---|---|")
        for c, workers, fds in (("w2", 2, 0), ("w8", 8, 0), (f"w2-f{nfd}", 2, nfd)):
            runs = [d.get("rate") for d in res.runs("h", c, "spawn.c")]
            if runs:
                w(f"| {workers} | {fds:,} | {fmt(res.med('h', c, 'spawn.c', 'rate'))} | "
                  f"{', '.join(fmt(r) for r in runs if r)} |")
        w("")
        w(f"The last row (`-f {nfd}`) is what each spawn costs a process that holds {nfd:,} open "
          "descriptors — a server with that many connections spawning its CGIs itself: the "
          "kernel copies the descriptor table at every spawn and closes the close-on-exec "
          "descriptors at every exec. Servers that spawn from a small helper process (Apache's "
          "cgid daemon, fcgiwrap) do not pay it; cgigate, lighttpd and Go do — see the opening "
          "rates in (g).")
        w("")
        if res.has("a"):
            beaten = [(s, c) for c in ("c8", "c32") for s in PEERS + ["cgigate"]
                      if (res.med("a", c, s, "rps") or 0) > spawn]
            if beaten:
                w("⚠ A server beat the ceiling: " + ", ".join(f"{NAMES[s]} at {c}" for s, c in beaten)
                  + " — with the machine this busy the ceiling's own run was probably starved; "
                  "compare on a quiet machine.")
                w("")
    if res.has("c"):
        w("## (c) big — 1 MiB of CGI output (no Content-Length from the script)")
        w("")
        w(f"`wrk -t{wt} -c8`, {dur} s per run, `GET /cgi/big` (cgigate also `/buffer/big` and `/stream/big`). MB/s is 10⁶ bytes of response (head + body) per second.")
        w("")
        w(rate_table(res, "c", ["c8"], PEERS + ["cgigate", "cgigate-buffer", "cgigate-stream"], mbps=True))
        w("")
    if res.has("d"):
        w("## (d) POST of 100 KB to the echo CGI")
        w("")
        w(f"`wrk -t{wt} -c8`, {dur} s per run, `POST /cgi/echo` with 102,400 bytes, once with "
          "Content-Length (`BENCH_POST=cl`) and once chunked in 16 KiB chunks "
          "(`BENCH_POST=chunked`, the request assembled in bench/wrk.lua). The script echoes the "
          "body back with a Content-Length.")
        w("")
        w(rate_table(res, "d", ["cl", "chunked"], PEERS + ["cgigate"]))
        w("")
        w("Go's net/http/cgi refuses a chunked request body (`400 Chunked request bodies are not "
          "supported by CGI.`), so it has no chunked figure.")
        w("")
    if res.has("e"):
        w("## (e) In-process: cgigate built-ins vs nginx `return 200`")
        w("")
        w(f"`wrk -t{wt} -c8` and `-c32`, {dur} s per run. nginx: `location = /ret {{ return 200 \"hello\\n\"; }}`. "
          "cgigate's counterpart is the `hello` built-in (`hello\\n`, the same bytes); its other "
          "small in-process answers are measured beside it: the `echo` built-in on GET (it "
          "describes the request back, ~150 bytes), a 6-byte static file, and the C example "
          "plugin (`hello\\n`, run on a worker thread). The static files are also served by "
          "nginx from its own `root` (`sendfile on` as in Debian's stock nginx.conf, no "
          "`open_file_cache`), a 6-byte and a 1 MiB file; the ratio column of those rows is still "
          "against `return 200`, their targets below against nginx's own static rows.")
        w("")
        w(rate_table(res, "e", ["c8", "c32"],
                     ["nginx", "cgigate-hello", "cgigate-echo", "cgigate-static", "cgigate-plugin",
                      "nginx-static", "cgigate-static-big", "nginx-static-big"],
                     ref="nginx", ref_label="this ÷ nginx", ratio_of_row=True)
          .replace(NAMES["nginx"], "nginx `return 200`"))
        w("")
    if res.has("f"):
        w("## (f) Streaming: time to first byte of the `slow` CGI")
        w("")
        w("The script writes its header block and a first line in one write — the line carries "
          "the script's own clock at that moment — sleeps 1 s, and writes a second line. "
          "`bench/ttfb.py` (one fresh connection per sample) records when the response head "
          "and the first line arrive; **held** is arrival of the first line minus the script's "
          f"stamp, i.e. how long the server sat on it. {meta.get('ttfb_samples')} sample(s) per "
          f"round, {rounds} round(s); medians.")
        w("")
        w("| server | head ms | first line ms | held ms | all ms | framing |")
        w("|---|---|---|---|---|---|")
        for s in PEERS + ["cgigate-stream", "cgigate-auto", "cgigate-buffer"]:
            if not res.runs("f", "slow", s):
                continue
            fr = sorted({d.get("framing") for d in res.runs("f", "slow", s) if d.get("framing")})
            w(f"| {mark(res, 'f', 'slow', s, NAMES.get(s, s))} | {fmt(res.med('f', 'slow', s, 'head_ms'), 1)} | "
              f"{fmt(res.med('f', 'slow', s, 'first_ms'), 1)} | {fmt(res.med('f', 'slow', s, 'lag_ms'), 2)} | "
              f"{fmt(res.med('f', 'slow', s, 'total_ms'), 1)} | {', '.join(fr)} |")
        w("")
        w("What holds the first line, with stock settings: lighttpd's `server.stream-response-body = 0` "
          "collects the whole response (it then sends a Content-Length); fcgiwrap keeps the CGI's "
          "output in its FastCGI stdio buffer until the script exits (`fastcgi_buffering off` in "
          "nginx changes nothing — checked by hand); Go's `cgi.Handler` copies the output into the "
          "ResponseWriter without flushing. Apache's mod_cgid passes each read on.")
        w("")
    if res.has("g"):
        w(f"## (g) Memory: {int(float(meta.get('idle_conns', 0))):,} idle keep-alive connections")
        w("")
        w("Before its measurement each server is restarted and warmed with 1 s of `wrk -c8` "
          "on `/cgi/hello`, so that \"before\" carries no memory kept from earlier rounds, and restarted again "
          "afterwards, so that later rounds do not run against a server grown by 10,000 connections. "
          "`bench/idle.py` opens the connections (at most 8 requests in flight, as wrk -c8), sends one "
          "`GET /cgi/hello` on each and reads the response, waits 2 s, and sums VmRSS over the "
          "server's processes (the server's process tree; for nginx also fcgiwrap's). "
          "KiB per connection = (RSS with the connections − RSS before) ÷ connections still open.")
        w("")
        w("| server | still open | RSS before MiB | RSS with conns MiB | KiB per connection | opening took s |")
        w("|---|---|---|---|---|---|")
        for s in PEERS + ["cgigate"]:
            if not res.runs("g", "idle", s):
                continue
            b, a = res.med("g", "idle", s, "rss_before_kib"), res.med("g", "idle", s, "rss_after_kib")
            w(f"| {mark(res, 'g', 'idle', s, NAMES[s])} | {fmt(res.med('g', 'idle', s, 'alive'))} | "
              f"{fmt(b / 1024 if b else None, 1)} | {fmt(a / 1024 if a else None, 1)} | "
              f"{fmt(res.med('g', 'idle', s, 'kib_per_conn'), 2)} | {fmt(res.med('g', 'idle', s, 'open_s'), 1)} |")
        w("")

    if res.has("i"):
        w("## (i) CPU per CGI request")
        w("")
        w(f"`bench/cpu.py URL 8 {dur} ROOTS`: one `wrk -t1 -c8 -d{dur}s` run on `/cgi/hello` "
          "(cgigate also `/isolated/hello`), with the user + system time of every process in "
          "the server's session read from /proc before and after. **server** is the server's "
          "own processes (for nginx also fcgiwrap's, for cgigate its spawn helpers), "
          "**scripts** the time of the children they reaped; \"—\" where the server ignores "
          "SIGCHLD (then the kernel reaps its children and their time is counted nowhere). "
          "Microseconds per request. The last row is bench/spawn.c with one worker: the "
          "spawning parent's own CPU per spawn, and its children's.")
        w("")
        w("| server | server µs/request | scripts µs/request | rounds (server) |")
        w("|---|---|---|---|")
        for s_ in PEERS + ["cgigate", "cgigate-isolated"]:
            if not res.runs("i", "c8", s_):
                continue
            sc = res.med("i", "c8", s_, "script_us")
            rs = [d.get("server_us") for d in res.runs("i", "c8", s_) if not d.get("failed")]
            w(f"| {mark(res, 'i', 'c8', s_, NAMES.get(s_, s_))} | {fmt(res.med('i', 'c8', s_, 'server_us'))} | "
              f"{fmt(sc if sc is not None and sc >= 0 else None)} | {', '.join(fmt(r) for r in rs)} |")
        if res.runs("i", "c8", "spawn.c"):
            rs = [d.get("parent_us_per_spawn") for d in res.runs("i", "c8", "spawn.c") if not d.get("failed")]
            w(f"| bench/spawn.c -w 1 (pipe2, posix_spawn, read, waitpid) | "
              f"{fmt(res.med('i', 'c8', 'spawn.c', 'parent_us_per_spawn'))} | "
              f"{fmt(res.med('i', 'c8', 'spawn.c', 'child_us_per_spawn'))} | {', '.join(fmt(r) for r in rs)} |")
        w("")

    # Targets.
    T = []
    for wl in ("a", "b"):
        if not res.has(wl):
            continue
        for c in ("c8", "c32"):
            mine = res.med(wl, c, "cgigate", "rps")
            best, who = best_peer(res, wl, c)
            if mine and best:
                T.append(f"| ({wl}) {c}: cgigate ÷ best CGI peer ({NAMES[who]}) | ≥ 1.25× | "
                         f"{mine / best:.2f}× | {verdict(mine / best >= 1.25)} |")
            if wl == "b":
                continue
            if mine and spawn:
                T.append(f"| (a) {c}: cgigate ÷ spawn ceiling (h) | ≥ 90% | {100 * mine / spawn:.0f}% | "
                         f"{verdict(mine / spawn >= 0.9)} |")
            iso = res.med(wl, c, "cgigate-isolated", "rps")
            if mine and iso:
                T.append(f"| (a) {c}: cost of isolation, plain ÷ isolated route | ≤ 1.10× | "
                         f"{mine / iso:.2f}× | {verdict(mine / iso <= 1.10)} |")
    if res.has("c"):
        mine = res.med("c", "c8", "cgigate", "rps")
        best, who = best_peer(res, "c", "c8")
        if mine and best:
            T.append(f"| (c) cgigate (auto) ÷ best peer ({NAMES[who]}) | ≥ 1.2× | {mine / best:.2f}× | "
                     f"{verdict(mine / best >= 1.2)} |")
        modes = [(res.med("c", "c8", m, "rps") or 0, m) for m in ("cgigate", "cgigate-buffer", "cgigate-stream")]
        bm, bmode = max(modes)
        if bm and best and bmode != "cgigate":
            T.append(f"| (c) best cgigate mode ({NAMES[bmode]}) ÷ best peer | ≥ 1.2× | {bm / best:.2f}× | "
                     f"{verdict(bm / best >= 1.2)} |")
    if res.has("e"):
        for c in ("c8", "c32"):
            ng = res.med("e", c, "nginx", "rps")
            mine = res.med("e", c, "cgigate-hello", "rps")
            if mine and ng:
                T.append(f"| (e) {c}: {NAMES['cgigate-hello']} ÷ nginx `return 200` | ≥ 1.0× | {mine / ng:.2f}× | "
                         f"{verdict(mine / ng >= 1.0)} |")
            for s, theirs in (("cgigate-static", "nginx-static"), ("cgigate-static-big", "nginx-static-big")):
                mine, ref = res.med("e", c, s, "rps"), res.med("e", c, theirs, "rps")
                if mine and ref:
                    T.append(f"| (e) {c}: {NAMES[s]} ÷ {NAMES[theirs]} | ≥ 1.0× | {mine / ref:.2f}× | "
                             f"{verdict(mine / ref >= 1.0)} |")
            mine, ref = res.med("e", c, "cgigate-plugin", "rps"), res.med("e", c, "cgigate-hello", "rps")
            if mine and ref:
                T.append(f"| (e) {c}: C plugin ÷ `hello` built-in | ≥ 0.8× | {mine / ref:.2f}× | "
                         f"{verdict(mine / ref >= 0.8)} |")
    if res.has("f"):
        st = res.med("f", "slow", "cgigate-stream", "lag_ms")
        au = res.med("f", "slow", "cgigate-auto", "lag_ms")
        if st is not None:
            T.append(f"| (f) stream: first line held after the script wrote it | ≤ 2 ms | {st:.2f} ms | {verdict(st <= 2)} |")
        if au is not None:
            T.append(f"| (f) auto: first line held (flush_after = {flush:.0f} ms) | ≤ {flush + 2:.0f} ms | {au:.2f} ms | "
                     f"{verdict(au <= flush + 2)} |")
    if res.has("g"):
        k = res.med("g", "idle", "cgigate", "kib_per_conn")
        if k is not None:
            T.append(f"| (g) cgigate memory per idle connection | ≤ 4 KiB | {k:.2f} KiB | {verdict(k <= 4)} |")
            ng = res.med("g", "idle", "nginx", "kib_per_conn")
            if ng is not None:
                T.append(f"| (g) cgigate ÷ nginx, memory per idle connection | ≤ 1.0× | {k / ng:.2f}× | "
                         f"{verdict(k <= ng)} |")
    if res.has("i"):
        mine = res.med("i", "c8", "cgigate", "server_us")
        if mine is not None:
            T.append(f"| (i) cgigate's own CPU per CGI request | ≤ 80 µs | {mine:.0f} µs | {verdict(mine <= 80)} |")
        sc, bare = res.med("i", "c8", "cgigate", "script_us"), res.med("i", "c8", "spawn.c", "child_us_per_spawn")
        if sc is not None and sc >= 0 and bare:
            T.append(f"| (i) cgigate's scripts' CPU ÷ spawn.c's children's | ≤ 1.10× | {sc / bare:.2f}× | "
                     f"{verdict(sc / bare <= 1.10)} |")
        iso = res.med("i", "c8", "cgigate-isolated", "server_us")
        if mine and iso:
            T.append(f"| (i) isolated ÷ plain route, server CPU per request | ≤ 1.10× | {iso / mine:.2f}× | "
                     f"{verdict(iso / mine <= 1.10)} |")
    if T:
        w("## cgigate against its targets")
        w("")
        w("| target | wanted | measured | |")
        w("|---|---|---|---|")
        L.extend(T)
        w("")

    # Method.
    w("## Method and settings")
    w("")
    w("All servers listen on 127.0.0.1, run in the foreground from configs generated into "
      "`bench/work/conf/` (shown below), and serve the same programs from `bench/cgi/`: "
      "`hello` (examples/cgi/hello.c), `hello.sh`, `big` (1 MiB in 64 KiB writes, no "
      "Content-Length), `echo` (reads CONTENT_LENGTH bytes, or to EOF without it, and writes "
      "them back with a Content-Length), `slow` (a line, 1 s, a line) — sources in `bench/src/`. "
      "Before measuring, run.sh checks every server's answer to every program (including a "
      "byte-exact echo of a 100 KB body, sized and chunked).")
    w("")
    w("Stock settings, except, identically where the server has the knob: access logs off; "
      "keep-alive idle timeout 300 s (so that none of (g)'s connections expires while the "
      "others are opened) and 1,000 requests per connection (Apache's stock is 100 and 5 s); connection limits raised so that (g)'s idle connections fit (nginx "
      "`worker_connections 20000`, lighttpd `server.max-fds 32768`/`max-connections 16384`, "
      "Apache `AsyncRequestWorkerFactor 400`, cgigate `max_connections 16384`; cgigate also "
      "`header_timeout = \"300s\"`, because it caps the keep-alive idle time at header_timeout); nginx "
      "`client_body_buffer_size 1m` to match cgigate's in-memory `spool_memory` (stock 16k "
      "would write every 100 KB POST to a temp file).")
    w("")
    w("- **cgigate**: stock worker threads (one per CPU), `[cgi] max_children = 64`, "
      f"`flush_after = \"{flush:.0f}ms\"`, `buffer_limit = \"1MiB\"`; `/cgi/` is auto mode (the "
      "default), `/buffer/` and `/stream/` the other two.")
    w("- **Apache**: mpm_event with Debian's stock numbers (2 processes × 25 threads to start, "
      "150 max), mod_cgid (CGIs forked by the cgid daemon), `ScriptAlias /cgi/`. Its children "
      "run as www-data (Apache refuses root); every other server runs as root.")
    w("- **lighttpd**: one process (its stock `server.max-worker = 0`), mod_cgi with "
      "`cgi.assign = (\"\" => \"\")` under `/cgi/`; stock response buffering.")
    w("- **nginx**: `worker_processes auto` (2), `fastcgi_pass` to fcgiwrap on a unix socket, "
      "fcgiwrap started with `-c 4` (4 preforked processes) so CGIs run on both CPUs; stock "
      "`fastcgi_buffering on`.")
    w("- **Go**: `bench/gocgi/main.go`, one `cgi.Handler` per program on `http.DefaultServeMux`, "
      "GOMAXPROCS = CPUs.")
    w("")
    w("Commands (PORT is 18080 for cgigate, 18081 Apache, 18082 lighttpd, 18083 nginx, "
      "18084 Go with the default `--port-base`):")
    w("")
    w("```sh")
    for name in ("cgigate", "apache", "lighttpd", "fcgiwrap", "nginx", "go"):
        p = os.path.join(work, "conf", f"{name}.cmd")
        if os.path.exists(p):
            with open(p) as f:
                w(f"# {name}\n" + f.read().strip().replace(work, "bench/work")
                  .replace(os.path.dirname(work), "bench"))
    w(f"# load (a)–(e); BENCH_POST=cl|chunked for (d)")
    w(f"wrk -t{wt} -c8|-c32 -d{dur}s --timeout 5s --latency -s bench/wrk.lua http://127.0.0.1:PORT/PATH")
    w("# (f)\npython3 bench/ttfb.py 127.0.0.1 PORT /cgi/slow")
    w(f"# (g)\npython3 bench/idle.py 127.0.0.1 PORT /cgi/hello {int(float(meta.get('idle_conns', 0)))} SERVER_PIDS...")
    w(f"# (i)\npython3 bench/cpu.py http://127.0.0.1:PORT/cgi/hello 8 {dur} SERVER_PIDS...\nbench/spawn -w 1 -d {dur} -m process bench/cgi/hello")
    w(f"# (h)\nbench/spawn -w 2 -d {dur} -m process -f 0 bench/cgi/hello\nbench/spawn -w 8 -d {dur} -m process -f 0 bench/cgi/hello\n"
      f"bench/spawn -w 2 -d {dur} -m process -f {int(float(meta.get('idle_conns', 0)))} bench/cgi/hello")
    w("```")
    w("")
    w("Every command of the run, with its round, is in `bench/work/commands.log`; raw wrk "
      "output in `bench/work/raw/`.")
    w("")
    w("<details><summary>Generated configurations</summary>")
    w("")
    for name, lang in (("cgigate.toml", "toml"), ("apache.conf", "apache"),
                       ("lighttpd.conf", ""), ("nginx.conf", "nginx")):
        p = os.path.join(work, "conf", name)
        if os.path.exists(p):
            with open(p) as f:
                text = f.read().replace(work, "bench/work").replace(os.path.dirname(work), "bench")
            w(f"`{name}`:")
            w("")
            w(f"```{lang}\n{text.rstrip()}\n```")
            w("")
    w("</details>")
    w("")

    # Every round, for judging the noise.
    w("<details><summary>Every round (req/s; (f) held ms; (g) KiB per connection; (h) spawns/s; (i) server µs per request)</summary>")
    w("")
    w("| workload | case | server | " + " | ".join(f"round {r}" for r in range(1, rounds + 1)) + " |")
    w("|---|---|---|" + "---|" * rounds)
    seen = []
    for (_, wl, case, server, _) in rows:
        if (wl, case, server) not in seen:
            seen.append((wl, case, server))
    key = {"f": "lag_ms", "g": "kib_per_conn", "h": "rate", "i": "server_us"}
    for wl, case, server in seen:
        cells = []
        for r in range(1, rounds + 1):
            ds = [d for (rr, w2, c2, s2, d) in rows if (rr, w2, c2, s2) == (r, wl, case, server)]
            vals = [d.get(key.get(wl, "rps")) for d in ds if not d.get("failed")]
            vals = [v for v in vals if isinstance(v, float)]
            cells.append(" / ".join(fmt(v, 2 if wl in "fg" else 0) for v in vals) if vals
                         else ("failed" if ds else "—"))
        w(f"| {wl} | {case} | {NAMES.get(server, server)} | " + " | ".join(cells) + " |")
    w("")
    w("</details>")
    w("")

    with open(output, "w") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    main()
