"""The collector's last minute in Prometheus' text exposition format (version 0.0.4), for operators who already run
Prometheus: served on loopback only, when NEXTMAVENS_METRICS_LISTEN names an address. Rendering is pure."""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NAME = re.compile(r"[^a-zA-Z0-9_]")


def label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(samples: Mapping[str, Mapping[str, float]], minute: int | None) -> str:
    """`nextmavens_<series>{scope="...",item="..."} value` per sample, grouped by metric with one TYPE line each."""
    grouped: dict[str, list[str]] = {}
    for scope in sorted(samples):
        for series, value in sorted(samples[scope].items()):
            base, _, item = series.partition(":")
            metric = "nextmavens_" + _NAME.sub("_", base)
            labels = f'scope="{label_value(scope)}"' + (f',item="{label_value(item)}"' if item else "")
            grouped.setdefault(metric, []).append(f"{metric}{{{labels}}} {value!r}")
    lines = []
    for metric in sorted(grouped):
        lines.append(f"# TYPE {metric} gauge")
        lines.extend(grouped[metric])
    if minute is not None:
        lines += ["# TYPE nextmavens_collected_at_seconds gauge", f"nextmavens_collected_at_seconds {minute}"]
    return "\n".join(lines) + "\n"


def parse_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:9187' -> (host, port); anything but a loopback address is refused (the figures name projects)."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"NEXTMAVENS_METRICS_LISTEN={text!r}: a loopback address and port, e.g. 127.0.0.1:9187")
    return host, int(port)


def serve(listen: str, current: Callable[[], str]) -> ThreadingHTTPServer:
    """Serve GET /metrics from a daemon thread; the caller shuts the server down."""
    host, port = parse_listen(listen)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404)
                return
            body = current().encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="prometheus", daemon=True).start()
    return server
