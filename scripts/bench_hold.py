#!/usr/bin/env python3
"""Holds N keep-alive connections to an HTTP server at once, for scripts/bench.

    scripts/bench_hold.py HOST:PORT N PID

Opens N TCP connections, sends `GET /healthz` on each and reads the whole
answer, and keeps them all open. While all N are held it reads the VmRSS of
process PID (the server under test). Then it sends a second request on every
connection: one the server dropped or answered badly in the meantime counts as
an error. Closes them all and prints one JSON line:
  {"held": ..., "errors": ..., "rss_kb": ..., "open_s": ..., "check_s": ...}

Standard library only; the file-descriptor limit is inherited (scripts/bench
raises it).
"""

import json
import socket
import sys
import time

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n"


def answer_ok(sock):
    """Reads one whole response (Content-Length framed); True on a 200."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            return False
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            return False
        body += chunk
    return lines[0].split()[1:2] == [b"200"]


def ask(sock):
    try:
        sock.sendall(REQUEST)
        return answer_ok(sock)
    except OSError:
        return False


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    target, n, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    host, port = target.rsplit(":", 1)
    errors = 0
    socks = []
    started = time.time()
    for _ in range(n):
        try:
            sock = socket.create_connection((host, int(port)), timeout=10)
        except OSError:
            errors += 1
            continue
        if ask(sock):
            socks.append(sock)
        else:
            errors += 1
            sock.close()
    opened = time.time()
    rss = rss_kb(pid)
    # Every connection still open and answering?
    held = 0
    for sock in socks:
        if ask(sock):
            held += 1
        else:
            errors += 1
    checked = time.time()
    for sock in socks:
        sock.close()
    print(json.dumps({"held": held, "errors": errors, "rss_kb": rss,
                      "open_s": round(opened - started, 2), "check_s": round(checked - opened, 2)}))


if __name__ == "__main__":
    main()
