"""The optional /metrics endpoint on loopback, as Prometheus scrapes it."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from nextmavens.metrics.prometheus import CONTENT_TYPE, render, serve
from tests.support.ports import free_port


def test_the_last_minute_is_served_in_the_text_format() -> None:
    port = free_port()
    server = serve(f"127.0.0.1:{port}", lambda: render({"acme/shop": {"requests": 12.0}}, 1_790_000_040))
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:  # noqa: S310
            assert answer.headers["Content-Type"] == CONTENT_TYPE
            body = answer.read().decode()
        assert 'nextmavens_requests{scope="acme/shop"} 12.0' in body
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)  # noqa: S310
        assert refused.value.code == 404
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ValueError, match="loopback"):
        serve(f"0.0.0.0:{port}", lambda: "")  # noqa: S104 - the refusal under test
