#!/usr/bin/env python3
"""Time to first byte of the `slow` CGI (a line, 1 s of silence, a line).

    ttfb.py HOST PORT PATH

Sends one GET on a fresh connection and prints one line:

    TTFB head_ms=… first_ms=… lag_ms=… total_ms=… framing=…

head_ms:  request sent → end of the response head received
first_ms: request sent → the script's first line received (whatever the framing)
lag_ms:   the script's first write (its own CLOCK_REALTIME stamp in that line) → received;
          how long the host held the first line
total_ms: request sent → the second line received
"""
import re
import socket
import sys
import time


def main():
    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    s = socket.create_connection((host, port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
    buf = b""
    t_head = t_first = t_total = None
    stamp = None
    t0 = time.time()
    s.sendall(req)
    deadline = t0 + 10
    while time.time() < deadline:
        data = s.recv(65536)
        now = time.time()
        if not data:
            break
        buf += data
        if t_head is None and b"\r\n\r\n" in buf:
            t_head = now
        if t_first is None:
            m = re.search(rb"first (\d+\.\d+)\n", buf)
            if m:
                t_first, stamp = now, float(m.group(1))
        if b"second\n" in buf:
            t_total = now
            break
    s.close()
    if t_head is None or t_first is None or t_total is None:
        print(f"ttfb.py: incomplete response from {host}:{port}{path}: {buf[:300]!r}",
              file=sys.stderr)
        sys.exit(1)
    head = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    framing = ("chunked" if "transfer-encoding: chunked" in head
               else "length" if "content-length:" in head else "close")
    ms = lambda t: (t - t0) * 1000
    print(f"TTFB head_ms={ms(t_head):.2f} first_ms={ms(t_first):.2f} "
          f"lag_ms={(t_first - stamp) * 1000:.2f} total_ms={ms(t_total):.2f} framing={framing}")


if __name__ == "__main__":
    main()
