#!/usr/bin/env python3
"""Capture real traffic as fuzzing seeds: the request heads and chunked bodies that curl and
git send, and the header blocks that git http-backend and php-cgi write.

A tiny HTTP/1.1 server on 127.0.0.1 records every request byte for byte, runs
`git http-backend` as a CGI for /git/ paths (so that clone and push go all the way) and
answers anything else with a short 200. Run from anywhere; writes to fuzz/seeds/<target>/
files named real-* (Host ports and git object ids differ from run to run). Needs curl, git and php-cgi; see docs/RELIABILITY.md.
"""

import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import threading

SEEDS = pathlib.Path(__file__).resolve().parent / "seeds"
counter = iter(range(1000))


def save(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"real-{name}").write_bytes(data)


def slug(method, target):
    path = target.split("?")[0]
    return re.sub(r"[^A-Za-z0-9]+", "-", f"{method}-{path}").strip("-")[:60]


def read_request(conn):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    head += b"\r\n\r\n"
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    fields = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.strip()
    if fields.get("expect", "").lower() == "100-continue":
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    raw_body, body = b"", b""
    if "content-length" in fields:
        n = int(fields["content-length"])
        while len(rest) < n:
            rest += conn.recv(65536)
        raw_body = body = rest[:n]
    elif "chunked" in fields.get("transfer-encoding", "").lower():
        raw_body, body = read_chunked(conn, rest)
    return method, target, fields, head, raw_body, body


def read_chunked(conn, buf):
    raw, body, pos = b"", b"", 0

    def need(n):
        nonlocal buf
        while len(buf) < n:
            more = conn.recv(65536)
            if not more:
                raise EOFError
            buf += more

    while True:
        while b"\r\n" not in buf[pos:]:
            need(len(buf) + 1)
        eol = buf.index(b"\r\n", pos)
        size = int(buf[pos:eol].split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            while b"\r\n\r\n" not in buf[pos - 2:]:
                need(len(buf) + 1)
            end = buf.index(b"\r\n\r\n", pos - 2) + 4
            return buf[:end], body
        need(pos + size + 2)
        body += buf[pos:pos + size]
        pos += size + 2


def serve(conn, git_root):
    req = read_request(conn)
    if req is None:
        return
    method, target, fields, head, raw_body, body = req
    name = f"{next(counter):02d}-{slug(method, target)}"
    save("head", name, head + raw_body)
    # The path below its first segment, as a route prefix like /cgi-bin/ leaves it.
    save("path_mapping", name, target.split("?")[0].split("/", 2)[-1].encode())
    if "chunked" in fields.get("transfer-encoding", "").lower():
        save("chunked", name, b"\x00" + raw_body)
    path, _, query = target.partition("?")
    if path.startswith("/git/"):
        env = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": git_root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "REQUEST_METHOD": method,
            "PATH_INFO": path[len("/git"):],
            "QUERY_STRING": query,
            "CONTENT_TYPE": fields.get("content-type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "seed",
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_PROTOCOL": fields.get("git-protocol", ""),
        }
        out = subprocess.run(["git", "http-backend"], input=body, env=env,
                             capture_output=True, check=False).stdout
        save("cgi_header", name, out)
        sep = b"\r\n\r\n" if b"\r\n\r\n" in out else b"\n\n"
        block, _, payload = out.partition(sep)
        status = b"200 OK"
        headers = b""
        for line in block.splitlines():
            if line.lower().startswith(b"status:"):
                status = line.split(b":", 1)[1].strip()
            else:
                headers += line + b"\r\n"
        conn.sendall(b"HTTP/1.1 " + status + b"\r\n" + headers +
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(payload) + payload)
    else:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")


def main():
    work = tempfile.mkdtemp(prefix="cgigate-seeds-")
    git_root = os.path.join(work, "srv")
    os.makedirs(git_root)
    run = lambda *a, **kw: subprocess.run(a, check=True, capture_output=True, **kw)
    run("git", "init", "-q", "--bare", os.path.join(git_root, "repo.git"))
    run("git", "-C", os.path.join(git_root, "repo.git"), "config", "http.receivepack", "true")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]

    def loop():
        while True:
            conn, _ = sock.accept()
            with conn:
                try:
                    serve(conn, git_root)
                except (OSError, EOFError, ValueError):
                    pass

    threading.Thread(target=loop, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    big = os.path.join(work, "big")
    with open(big, "wb") as f:
        f.write(b"field=" + b"x" * 3000)

    run("curl", "-s", f"{base}/cgi-bin/env?name=value&x=%20y")
    run("curl", "-s", "-H", "Transfer-Encoding: chunked", "--data-binary", "hello=world",
        f"{base}/cgi-bin/echo")
    run("curl", "-s", "-H", "Transfer-Encoding: chunked", "-H", "Expect: 100-continue",
        "--data-binary", f"@{big}", f"{base}/cgi-bin/upload")
    run("curl", "-s", "-0", "-H", "Connection: keep-alive", "-d", "a=1&b=2", f"{base}/cgi-bin/form")
    run("curl", "-s", "-F", "file=@" + big, f"{base}/cgi-bin/multipart")
    run("curl", "-s", "-I", f"{base}/static/index.html")

    clone = os.path.join(work, "clone")
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", HOME=work)
    run("git", "clone", "-q", f"{base}/git/repo.git", clone, env=env)
    run("git", "-C", clone, "-c", "user.name=seed", "-c", "user.email=seed@example.test",
        "commit", "-q", "--allow-empty", "-m", "seed", env=env)
    # A small postBuffer makes git send the pack with Transfer-Encoding: chunked.
    run("git", "-C", clone, "-c", "http.postBuffer=1024", "push", "-q", "origin", "HEAD:main",
        env=env)
    run("git", "-C", clone, "-c", "protocol.version=0", "fetch", "-q", "origin", env=env)

    # php-cgi's own header block.
    script = os.path.join(work, "page.php")
    with open(script, "w") as f:
        f.write('<?php header("X-Seed: 1"); setcookie("a", "b"); echo "hi";')
    php_env = dict(os.environ, REDIRECT_STATUS="200", SCRIPT_FILENAME=script,
                   REQUEST_METHOD="GET", GATEWAY_INTERFACE="CGI/1.1")
    out = subprocess.run(["php-cgi"], env=php_env, capture_output=True, check=True).stdout
    save("cgi_header", "php-cgi", out)
    php_env["SCRIPT_FILENAME"] = os.path.join(work, "missing.php")
    out = subprocess.run(["php-cgi"], env=php_env, capture_output=True).stdout
    save("cgi_header", "php-cgi-missing", out)
    print(f"seeds written under {SEEDS}", file=sys.stderr)


if __name__ == "__main__":
    main()
