#!/usr/bin/env python3
"""A tiny HTTP mirror for the download tests: serves files from a folder on
127.0.0.1, honours "Range: bytes=N-" (206 with Content-Range), and can
misbehave on purpose:

  --drop-first N   the first request gets the full headers, then N bytes,
                   then the connection is closed (a mirror that breaks off)
  --rate BPS       every body is sent at about BPS bytes per second (a drip)
  --ignore-range   answers a range request with 200 and the whole file
  --wrong-range    answers a range request with 206 and the whole file
  --log FILE       appends one line per request: "GET /path range=<value|none>"
  --log-sent       and, after each body, "SENT /path N" (the bytes written)

Prints "port N" on stdout once it listens, then serves until killed.
"""
import argparse
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()
STATE = {"requests": 0}


def log(line):
    if ARGS.log:
        with LOCK, open(ARGS.log, "a") as f:
            f.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):  # quiet
        pass

    def do_GET(self):
        with LOCK:
            STATE["requests"] += 1
            first = STATE["requests"] == 1
        rng = self.headers.get("Range")
        log("GET %s range=%s" % (self.path, rng if rng else "none"))
        name = os.path.basename(self.path.split("?", 1)[0])
        path = os.path.join(ARGS.root, name)
        if not name or not os.path.isfile(path):
            self.send_error(404)
            return
        with open(path, "rb") as f:
            data = f.read()
        start = 0
        if rng and not ARGS.ignore_range:
            spec = rng.strip()
            if not (spec.startswith("bytes=") and spec.endswith("-") and spec[6:-1].isdigit()):
                self.send_error(400)
                return
            start = int(spec[6:-1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.end_headers()
                return
            if ARGS.wrong_range:
                start = 0
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if first and ARGS.drop_first is not None:
            body = body[: ARGS.drop_first]
        self.send_body(body)
        if ARGS.log_sent:
            log("SENT %s %d" % (self.path, len(body)))

    def send_body(self, body):
        try:
            if not ARGS.rate:
                self.wfile.write(body)
                return
            chunk = max(1, ARGS.rate // 8)
            for off in range(0, len(body), chunk):
                self.wfile.write(body[off:off + chunk])
                self.wfile.flush()
                time.sleep(chunk / ARGS.rate)
        except (BrokenPipeError, ConnectionResetError):
            pass


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--drop-first", type=int)
    p.add_argument("--rate", type=int, default=0)
    p.add_argument("--ignore-range", action="store_true")
    p.add_argument("--wrong-range", action="store_true")
    p.add_argument("--log")
    p.add_argument("--log-sent", action="store_true")
    ARGS = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print("port %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
