#!/usr/bin/python3
"""Sandbox stand-in: answer HTTP on each port in STANDIN_PORTS; /health is 200 {"status": "ok"}."""

import json
import os
import signal
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = os.environ.get("STANDIN_NAME", "standin")
PORTS = [int(p) for p in os.environ.get("STANDIN_PORTS", "8080").replace(" ", "").split(",") if p]


class Handler(BaseHTTPRequestHandler):
    def _reply(self) -> None:
        if self.path.split("?")[0].rstrip("/") == "/health":
            body: dict[str, object] = {"status": "ok", "service": NAME}
        else:
            body = {"service": NAME, "standin": True, "method": self.command, "path": self.path}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _reply

    def log_message(self, fmt, *args):  # one line per request on stderr
        sys.stderr.write(f"{NAME} {self.command} {self.path}\n")


def main() -> None:
    if sys.argv[1:] == ["--check"]:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORTS[0]}/health", timeout=2) as r:
            sys.exit(0 if r.status == 200 else 1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    servers = [ThreadingHTTPServer(("0.0.0.0", p), Handler) for p in PORTS]
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    sys.stderr.write(f"{NAME} stand-in listening on {PORTS}\n")
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
