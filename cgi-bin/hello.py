#!/usr/bin/env python3
"""A Python CGI: says hello, counts the request body, shows a few variables."""
import os
import sys

body = sys.stdin.buffer.read()
sys.stdout.write("Content-Type: text/plain; charset=utf-8\r\n\r\n")
sys.stdout.write("Hello from Python %d.%d\n" % sys.version_info[:2])
for name in ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_LENGTH"):
    sys.stdout.write("%s=%s\n" % (name, os.environ.get(name, "")))
sys.stdout.write("body bytes: %d\n" % len(body))
