"""A real nginx serving the rendered edge with its structured metrics log, in front of an upstream whose answer
the path chooses (`/status/503` answers 503): shared by the metrics, uptime and error-tracking tests."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nextmavens.edge.nginx import render_nginx
from nextmavens.edge.settings import EdgeSettings
from tests.support.edgesamples import sample_projects, settings
from tests.support.localnginx import MAIN_CONF, LocalNginx, http_get, need, wait_port
from tests.support.loopback import QuietHandler, serving
from tests.support.ports import free_port


class StatusUpstream(QuietHandler):
    """Answers `/status/<code>` with that code, `/slow/<ms>` after that delay, anything else 200."""

    down = False  # class-wide switch: True answers 502 to everything (a failing upstream)

    def do_GET(self) -> None:  # noqa: N802
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if type(self).down:
            self.reply_json(502, {"error": "down"})
        elif len(parts) == 2 and parts[0] == "status" and parts[1].isdigit():
            self.reply_json(int(parts[1]), {"status": int(parts[1])})
        elif len(parts) == 2 and parts[0] == "slow" and parts[1].isdigit():
            import time

            time.sleep(int(parts[1]) / 1000)
            self.reply_json(200, {"slow": int(parts[1])})
        else:
            self.reply_json(200, {"path": self.path})


@dataclass
class MetricsEdge:
    config: EdgeSettings
    nginx: LocalNginx
    log: Path
    upstream: type[StatusUpstream]

    def get(self, host: str, path: str = "/") -> int:
        return http_get(self.config.http_port, host, path)[0]

    def reopen_logs(self) -> None:
        """What logrotate's postrotate does: nginx reopens its log files on USR1."""
        assert self.nginx.pid is not None
        os.kill(self.nginx.pid, signal.SIGUSR1)


@contextmanager
def metrics_edge(tmp_path: Path) -> Iterator[MetricsEdge]:
    need("nginx")
    upstream = type("Upstream", (StatusUpstream,), {"down": False})
    with serving(upstream) as kong_port:
        log = tmp_path / "nginx-logs" / "nextmavens-metrics.log"
        log.parent.mkdir(parents=True)
        config = settings(
            listen_address="127.0.0.1",
            http_port=free_port(),
            https_port=free_port(),
            kong_proxy=f"127.0.0.1:{kong_port}",
            acme_webroot=str(tmp_path / "webroot"),
            letsencrypt_dir=str(tmp_path / "letsencrypt"),
            metrics_log=str(log),
        )
        nginx = LocalNginx(tmp_path / "nginx")
        # The host's nginx.conf logs at the http level; the harness' `access_log off` would cancel the edge's log.
        nginx.conf.write_text(MAIN_CONF.format(prefix=nginx.prefix).replace("access_log off;", ""))
        nginx.site.write_text(render_nginx(config, sample_projects()))
        nginx.start()
        try:
            wait_port(config.http_port)
            yield MetricsEdge(config, nginx, log, upstream)
        finally:
            nginx.stop()
