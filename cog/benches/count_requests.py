#!/usr/bin/env python3
"""Counts the HTTP requests a command makes to the loopback S3 server, server side.

    python3 count_requests.py [--upstream http://127.0.0.1:5000] -- CMD ARGS...

Starts a counting TCP proxy on 127.0.0.1 (an ephemeral port) in front of the S3 server,
runs CMD with the endpoint variables pointed at the proxy (`AWS_ENDPOINT_URL` for
`cloud::Store`, `AWS_S3_ENDPOINT` for GDAL's /vsis3/), and prints one JSON line with the
requests by method, as the server received them. The proxy parses each request head
(method line, Content-Length) on the client side of every connection, so keep-alive
connections and pipelined requests count exactly.

Issue 3's request comparison: our `read_tiles` bench vs rasterio (GDAL /vsis3/) reading
the same windows, e.g.

    python3 count_requests.py -- target/release/deps/read_tiles-* s3://bucket/s2.tif
    python3 count_requests.py -- python3 rasterio_read_tiles.py s3://bucket/s2.tif
"""
import json
import os
import socket
import subprocess
import sys
import threading
from collections import Counter
from urllib.parse import urlparse

counts = Counter()
lock = threading.Lock()


def pump_requests(src, dst):
    """Client -> server: forward bytes, counting complete request heads."""
    buf = b""
    body_left = 0
    while True:
        data = src.recv(1 << 16)
        if not data:
            break
        dst.sendall(data)
        buf += data
        while True:
            if body_left:
                take = min(body_left, len(buf))
                buf = buf[take:]
                body_left -= take
                if body_left:
                    break
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].decode("latin-1")
            buf = buf[end + 4:]
            lines = head.split("\r\n")
            method = lines[0].split(" ", 1)[0]
            with lock:
                counts[method] += 1
            for line in lines[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    body_left = int(v.strip() or 0)
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def pump_raw(src, dst):
    while True:
        data = src.recv(1 << 18)
        if not data:
            break
        dst.sendall(data)
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def serve(listener, host, port):
    while True:
        client, _ = listener.accept()
        upstream = socket.create_connection((host, port))
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=pump_requests, args=(client, upstream), daemon=True).start()
        threading.Thread(target=pump_raw, args=(upstream, client), daemon=True).start()


def main():
    args = sys.argv[1:]
    upstream = os.environ.get("GEOBUTTON_TEST_S3_ENDPOINT", "http://127.0.0.1:5000")
    if args[:1] == ["--upstream"]:
        upstream, args = args[1], args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    u = urlparse(upstream)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"{upstream} is not a loopback address")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    threading.Thread(target=serve, args=(listener, u.hostname, u.port or 80), daemon=True).start()
    env = dict(os.environ)
    env.update({
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
        "AWS_S3_ENDPOINT": f"127.0.0.1:{port}",
        "AWS_HTTPS": "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
    })
    rc = subprocess.call(args, env=env)
    with lock:
        print(json.dumps({"command": " ".join(args[:3]), "requests": sum(counts.values()),
                          "by_method": dict(counts)}))
    sys.exit(rc)


if __name__ == "__main__":
    main()
