#!/usr/bin/env python3
"""bench/cpu.py — CPU a server spends per request: (i) of bench/run.sh.

    cpu.py URL CONNS SECONDS ROOT_PID...

Runs `wrk -t1 -cCONNS -dSECONDS URL` and reads /proc before and after it. The server is every
process in the sessions of ROOT_PID... (bench/run.sh starts each server with setsid, so the
session id is the leader's pid): their own user + system time is the server's share; the time
of children they reaped (cutime + cstime) is the scripts' share. A process that ignores
SIGCHLD has its children reaped by the kernel and their time counted nowhere: then the
scripts' share is printed as -1 (unknown), not as 0. Processes running a CGI program at the
moment of a snapshot are left out of both (their time shows up once they are reaped).

Output, one line:
    CPU reqs=N server_us=S script_us=C
where S and C are microseconds per request (C is -1 when it cannot be seen).
"""
import os
import re
import subprocess
import sys

TICK = os.sysconf("SC_CLK_TCK")
# Programs that bench/run.sh serves: a snapshot that catches one running leaves it out.
SCRIPTS = {"hello", "hello.sh", "sh", "echo", "big", "slow"}


def stat_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        raw = f.read()
    # comm may hold spaces and parentheses: split after its last ')'.
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); session is field 6, utime..cstime fields 14..17.
    session = int(fields[3])
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return comm, session, utime + stime, cutime + cstime


def ignores_sigchld(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("SigIgn:"):
                return bool(int(line.split()[1], 16) & (1 << (17 - 1)))
    return False


def snapshot(sessions):
    """(own ticks, reaped ticks, whether some member ignores SIGCHLD)"""
    own = reaped = 0
    blind = False
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            comm, session, mine, children = stat_of(name)
            if session not in sessions or comm in SCRIPTS:
                continue
            blind = blind or ignores_sigchld(name)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue  # exited between listdir and the read
        own += mine
        reaped += children
    return own, reaped, blind


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    url, conns, seconds = sys.argv[1], sys.argv[2], sys.argv[3]
    sessions = {int(p) for p in sys.argv[4:]}
    before = snapshot(sessions)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "5s", url],
        capture_output=True, text=True, check=True).stdout
    after = snapshot(sessions)
    m = re.search(r"(\d+) requests in", out)
    if not m or int(m.group(1)) == 0:
        sys.exit(f"cpu.py: no requests counted in wrk's output:\n{out}")
    requests = int(m.group(1))
    per = 1e6 / TICK / requests
    server = (after[0] - before[0]) * per
    script = -1 if (before[2] or after[2]) else (after[1] - before[1]) * per
    print(f"CPU reqs={requests} server_us={server:.1f} script_us={script:.1f}")


if __name__ == "__main__":
    main()
