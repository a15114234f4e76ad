"""Free loopback ports for the programs the tests start (nginx, pebble, pgbouncer, stand-ins on fixed ports)."""

from __future__ import annotations

import socket
from contextlib import ExitStack


def free_ports(count: int) -> list[int]:
    """`count` distinct ports nobody listens on now: all are bound at once, so no two are the same.

    A port is free only until someone else binds it, and a server bound to port 0 may be handed one of these:
    take them last, right before the program that listens on them starts.
    """
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port() -> int:
    return free_ports(1)[0]
