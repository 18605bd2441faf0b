#!/usr/bin/env python3
"""Server memory per idle keep-alive connection.

    idle.py HOST PORT PATH COUNT PID...

Measures the summed VmRSS of the server's processes (each PID and all its descendants),
opens COUNT connections, sends one GET PATH on each and reads the whole response (at most
8 requests in flight), waits 2 s, measures again, checks how many connections the server
still holds open, and prints one line:

    IDLE conns=N alive=A rss_before_kib=… rss_after_kib=… kib_per_conn=… open_s=…

kib_per_conn = (rss_after - rss_before) / alive. Connections are closed with RST at the end.
"""
import os
import selectors
import socket
import struct
import sys
import time

INFLIGHT = 8


def descendants(roots):
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    seen, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(children.get(p, []))
    return seen


def rss_kib(roots):
    total = 0
    for pid in descendants(roots):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def response_complete(buf):
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = buf[:end].decode("latin-1").lower().split("\r\n")
    body = buf[end + 4:]
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip() == "content-length":
            return len(body) >= int(value)
        if name.strip() == "transfer-encoding" and "chunked" in value:
            return body.endswith(b"0\r\n\r\n")
    raise RuntimeError(f"response has neither Content-Length nor chunked: {head[0]}")


def main():
    host, port, path, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    roots = [int(p) for p in sys.argv[5:]]
    req = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    linger = struct.pack("ii", 1, 0)
    before = rss_kib(roots)

    sel = selectors.DefaultSelector()
    done, started, inflight = [], 0, 0
    t0 = time.time()
    deadline = t0 + 300
    while len(done) < count:
        while inflight < INFLIGHT and started < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            s.setblocking(False)
            s.connect_ex((host, port))
            sel.register(s, selectors.EVENT_WRITE, [b""])
            started += 1
            inflight += 1
        if time.time() > deadline:
            print(f"idle.py: only {len(done)} of {count} connections done in 300 s",
                  file=sys.stderr)
            sys.exit(1)
        for key, ev in sel.select(timeout=1):
            s, state = key.fileobj, key.data
            if ev & selectors.EVENT_WRITE:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    print(f"idle.py: connect: {os.strerror(err)}", file=sys.stderr)
                    sys.exit(1)
                s.send(req)  # small: fits in the socket buffer
                sel.modify(s, selectors.EVENT_READ, state)
                continue
            try:
                data = s.recv(65536)
            except ConnectionError as e:
                print(f"idle.py: {e}", file=sys.stderr)
                sys.exit(1)
            if not data:
                print(f"idle.py: server closed a connection before answering "
                      f"({len(done)} done): {state[0][:200]!r}", file=sys.stderr)
                sys.exit(1)
            state[0] += data
            if response_complete(state[0]):
                if not state[0].startswith(b"HTTP/1.1 200"):
                    print(f"idle.py: {state[0][:200]!r}", file=sys.stderr)
                    sys.exit(1)
                sel.unregister(s)
                done.append(s)
                inflight -= 1
    open_s = time.time() - t0
    time.sleep(2)
    after = rss_kib(roots)

    # Which connections did the server keep? A closed one is readable (EOF or RST).
    sel2 = selectors.DefaultSelector()
    for s in done:
        sel2.register(s, selectors.EVENT_READ)
    closed = len(sel2.select(timeout=0.2))
    alive = count - closed
    per = (after - before) / alive if alive else float("nan")
    print(f"IDLE conns={count} alive={alive} rss_before_kib={before} rss_after_kib={after} "
          f"kib_per_conn={per:.2f} open_s={open_s:.1f}")
    for s in done:
        s.close()


if __name__ == "__main__":
    main()
