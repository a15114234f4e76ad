"""Running the application under uvicorn: loopback by default, behind nginx on the host."""

from __future__ import annotations

from typing import Any

import uvicorn

from nextmavens.platform.app import create_app
from nextmavens.platform.service import ServiceSettings

KEEP_ALIVE_S = 5


def server_config(settings: ServiceSettings, host: str, port: int, **options: Any) -> uvicorn.Config:
    """The client address the rate limit counts is nginx's X-Forwarded-For, trusted from loopback only."""
    return uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        timeout_keep_alive=KEEP_ALIVE_S,
        server_header=False,
        **options,
    )


def serve(settings: ServiceSettings, host: str, port: int) -> bool:
    """Serve until stopped; False when the server never started (uvicorn logs why, e.g. the control database refused
    the connection, and returns as if stopped: systemd's Restart=on-failure needs the failure as an exit code)."""
    server = uvicorn.Server(server_config(settings, host, port))
    server.run()
    return bool(server.started)
