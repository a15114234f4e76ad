"""Forwarding stored WhatsApp rows to a project's app, on a real PostgreSQL (an applied project, its whatsapp tables
made from the agreed layout) and a real loopback HTTP receiver that checks every signature: delivered once, retried
with backoff through a 500 and a timeout, given up at the bound, pending-false rows never sent, a loopback address
refused unless allowed, logged in as the project's owner role, and stopped with the service within two seconds."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from nextmavens.platform import forwardqueue
from nextmavens.platform.forwarder import Credentials, Forwarder, ForwarderSettings, engine_credentials
from nextmavens.platform.service import Service
from nextmavens.whatsapp.forwarding import RetryPolicy, Target
from nextmavens.whatsapp.signing import verify
from tests.integration.platform.harness import service_settings
from tests.support.engine import Stage
from tests.support.projects import write_project
from tests.support.scratch import cloned_server

PORTS = range(25600, 25700)  # this test's own port range
QUICK = RetryPolicy(first_delay_s=0.3, max_delay_s=0.6, max_attempts=3)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """Answers each POST with the next scripted answer (a status, or ("sleep", seconds) then 200); 200 when the
    script is empty. `during` runs inside each request, while the forwarder waits for the answer."""

    port: int = 0
    script: list[Any] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    during: Callable[[], None] | None = None

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.received if r.path == path]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the standard library's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.received.append(Received(self.path, dict(self.headers), body, time.time()))
            if receiver.during is not None:
                receiver.during()
            answer = receiver.script.pop(0) if receiver.script else 200
            if isinstance(answer, tuple):
                time.sleep(answer[1])
                answer = 200
            try:
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the forwarder gave up waiting and closed the connection

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the standard library's name
            pass

    return Handler


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    server = None
    for port in PORTS:
        try:
            server = ThreadingHTTPServer(("127.0.0.1", port), _handler(state))
            break
        except OSError:
            continue
    assert server is not None, "no free port in 25600-25699"
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stage(pg_template: Any, receiver: Receiver) -> Iterator[Stage]:
    with cloned_server(pg_template, "nextmavens-forward-") as (server, base):
        projects = base / "projects"
        instances = [{"name": "orders", "webhook_url": receiver.url("/service")}, {"name": "quiet"}]
        write_project(projects, "acme", "shop", whatsapp={"instances": instances})
        applied = Stage(server=server, projects=projects, master_key=base / "keys" / "master.key")
        applied.apply()
        yield applied


@pytest.fixture
def fresh(receiver: Receiver) -> Iterator[Receiver]:
    receiver.script.clear()
    receiver.received.clear()
    receiver.during = None
    yield receiver


def add_message(stage: Stage, instance: str, message_id: str, pending: bool = True) -> int:
    payload = {"event": "messages.upsert", "instance": f"shop--{instance}", "data": {"key": {"id": message_id}}}
    rows = stage.sql(
        "INSERT INTO whatsapp.messages (instance, message_id, remote_jid, from_me, payload, forward_pending)"
        " VALUES (%s, %s, '123@s.whatsapp.net', false, %s, %s) RETURNING id",
        (instance, message_id, Jsonb(payload), pending),
        dbname="shop",
    )
    return int(rows[0][0])


def add_event(stage: Stage, instance: str, key: str) -> int:
    payload = {"event": "connection.update", "data": {"state": "open"}}
    rows = stage.sql(
        "INSERT INTO whatsapp.events (instance, event, state, event_key, payload, forward_pending)"
        " VALUES (%s, 'connection.update', 'open', %s, %s, true) RETURNING id",
        (instance, key, Jsonb(payload)),
        dbname="shop",
    )
    return int(rows[0][0])


def forward_state(stage: Stage, table: str, row_id: int) -> tuple[bool, int, bool, float | None]:
    """(pending, attempts, forwarded, seconds until the next attempt)."""
    [row] = stage.sql(
        f"SELECT forward_pending, forward_attempts, forwarded_at IS NOT NULL,"  # noqa: S608 - the test's own names
        f" extract(epoch FROM forward_next_at - now()) FROM whatsapp.{table} WHERE id = %s",
        (row_id,),
        dbname="shop",
    )
    return row[0], row[1], row[2], None if row[3] is None else float(row[3])


def forwarder(stage: Stage, urls: dict[str, str], allow_private: bool = True, **settings: Any) -> Forwarder:
    values: dict[str, Any] = {"allow_private": allow_private, "timeout_s": 1.0, "retry": QUICK}
    values.update(settings)
    return Forwarder(
        ForwarderSettings(dsn=stage.server.dsn, **values),
        targets=lambda: [Target("acme", "shop", urls)],
        credentials=engine_credentials(stage.engine()),
    )


def forward_secret(stage: Stage) -> str:
    with stage.engine().secrets() as store:
        secret = store.whatsapp_forward_secret("shop")
    assert secret is not None
    return secret


def test_a_stored_row_is_forwarded_once_signed_and_pending_false_rows_never(stage: Stage, fresh: Receiver) -> None:
    message = add_message(stage, "once", "M1")
    event = add_event(stage, "once", "k1")
    untouched = add_message(stage, "once", "M0", pending=False)
    worker = forwarder(stage, {"once": fresh.url("/once")})
    worker.run_pass()
    worker.run_pass()  # nothing is due any more
    assert len(fresh.received) == 2
    secret = forward_secret(stage)
    for request in fresh.received:
        assert verify(secret, request.headers, request.body, now=time.time())
        assert not verify(secret + "x", request.headers, request.body, now=time.time())
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["Host"] == f"127.0.0.1:{fresh.port}"
    bodies = {b["type"]: b for b in fresh.bodies("/once")}
    assert bodies["message"]["id"] == message and bodies["event"]["id"] == event
    assert bodies["message"]["project"] == "acme/shop" and bodies["message"]["instance"] == "once"
    assert bodies["message"]["event"] == "messages.upsert" and bodies["event"]["event"] == "connection.update"
    assert bodies["message"]["payload"]["data"]["key"]["id"] == "M1"
    assert bodies["message"]["received_at"].startswith("20")
    assert forward_state(stage, "messages", message)[:3] == (False, 0, True)
    assert forward_state(stage, "events", event)[:3] == (False, 0, True)
    assert forward_state(stage, "messages", untouched) == (False, 0, False, None)


def test_a_host_name_is_sent_as_the_host_header(stage: Stage, fresh: Receiver) -> None:
    add_message(stage, "named", "N1")
    forwarder(stage, {"named": fresh.url("/named", host="localhost")}).run_pass()
    [request] = fresh.received
    assert request.headers["Host"] == f"localhost:{fresh.port}"


def test_a_failing_app_gets_the_row_again_with_backoff_until_it_answers(stage: Stage, fresh: Receiver) -> None:
    row = add_message(stage, "flaky", "F1")
    fresh.script[:] = [500, ("sleep", 2.0)]  # then 200
    worker = forwarder(stage, {"flaky": fresh.url("/flaky")})
    worker.run_pass()
    pending, attempts, forwarded, wait = forward_state(stage, "messages", row)
    assert (pending, attempts, forwarded) == (True, 1, False) and wait is not None and 0.1 < wait <= 0.3
    worker.run_pass()
    assert len(fresh.received) == 1  # not due yet
    time.sleep(0.35)
    started = time.monotonic()
    worker.run_pass()  # the app takes 2 s: the post gives up after its 1 s
    assert time.monotonic() - started < 1.8
    pending, attempts, forwarded, wait = forward_state(stage, "messages", row)
    assert (pending, attempts, forwarded) == (True, 2, False) and wait is not None and 0.3 < wait <= 0.6  # doubled
    time.sleep(0.65)
    worker.run_pass()
    assert forward_state(stage, "messages", row)[:3] == (False, 2, True)
    assert [b["id"] for b in fresh.bodies("/flaky")] == [row, row, row]
    gaps = [b.at - a.at for a, b in zip(fresh.received, fresh.received[1:], strict=False)]
    assert gaps[0] >= 0.3 and gaps[1] >= 0.6 + 1.0 - 0.1  # the backoff, and the second one after the timeout


def test_a_row_is_given_up_at_the_bound_and_logged_once(
    stage: Stage, fresh: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    row = add_message(stage, "down", "D1")
    fresh.script[:] = [503] * 10
    worker = forwarder(stage, {"down": fresh.url("/down?token=app-secret")})
    with caplog.at_level(logging.INFO, logger="nextmavens.platform.forwarder"):
        for _ in range(QUICK.max_attempts):
            worker.run_pass()
            time.sleep(0.65)
        worker.run_pass()
    assert len(fresh.received) == QUICK.max_attempts
    assert forward_state(stage, "messages", row) == (False, QUICK.max_attempts, False, None)
    given_up = [r for r in caplog.records if "given up" in r.getMessage()]
    assert len(given_up) == 1 and given_up[0].levelno == logging.WARNING
    assert "HTTP 503" in given_up[0].getMessage()
    assert not any("app-secret" in r.getMessage() or "/down" in r.getMessage() for r in caplog.records)


def test_after_a_failure_the_instances_later_rows_wait_for_the_next_pass(stage: Stage, fresh: Receiver) -> None:
    first, second = add_message(stage, "ordered", "O1"), add_message(stage, "ordered", "O2")
    other = add_message(stage, "other", "X1")
    fresh.script[:] = [500]
    forwarder(stage, {"ordered": fresh.url("/ordered"), "other": fresh.url("/other")}).run_pass()
    assert [b["id"] for b in fresh.bodies("/ordered")] == [first]  # the second was not sent before the first
    assert [b["id"] for b in fresh.bodies("/other")] == [other]  # another instance goes on
    assert forward_state(stage, "messages", second) == (True, 0, False, None)


def test_a_loopback_address_is_refused_unless_allowed(
    stage: Stage, fresh: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    row = add_message(stage, "inside", "I1")
    with caplog.at_level(logging.INFO, logger="nextmavens.platform.forwarder"):
        forwarder(stage, {"inside": fresh.url("/inside")}, allow_private=False).run_pass()
    assert fresh.received == []
    assert forward_state(stage, "messages", row)[:3] == (True, 1, False)
    assert any("refused: 127.0.0.1 is loopback" in r.getMessage() for r in caplog.records)
    time.sleep(0.35)
    forwarder(stage, {"inside": fresh.url("/inside")}, allow_private=True).run_pass()
    assert [b["id"] for b in fresh.bodies("/inside")] == [row]


def test_the_forwarder_logs_in_as_the_projects_owner_role(stage: Stage, fresh: Receiver) -> None:
    seen: list[tuple[str, bool]] = []

    def sessions() -> None:
        with psycopg.connect(stage.server.dsn_for("shop"), autocommit=True) as conn:
            seen.extend(
                conn.execute(
                    "SELECT a.usename::text, r.rolsuper FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid"
                    " WHERE a.application_name = 'nextmavens-forwarder'"
                ).fetchall()
            )

    fresh.during = sessions
    add_message(stage, "whoami", "W1")
    forwarder(stage, {"whoami": fresh.url("/whoami")}).run_pass()
    assert seen == [("owner_shop", False)]
    credentials = engine_credentials(stage.engine())("shop")
    assert credentials is not None
    with forwardqueue.owner_connection(stage.server.dsn, "shop", credentials.owner_password, 10_000) as conn:
        settings = conn.execute(
            "SELECT current_user::text, current_setting('search_path'), current_setting('statement_timeout')"
        ).fetchone()
    assert settings == ("owner_shop", "pg_catalog", "10s")


def test_a_wrong_owner_password_leaves_the_rows_waiting(stage: Stage, fresh: Receiver) -> None:
    row = add_message(stage, "locked", "L1")
    worker = Forwarder(
        ForwarderSettings(dsn=stage.server.dsn, allow_private=True, retry=QUICK),
        targets=lambda: [Target("acme", "shop", {"locked": fresh.url("/locked")})],
        credentials=lambda ref: Credentials("not-the-password", "secret"),
    )
    worker.run_pass()
    assert fresh.received == [] and forward_state(stage, "messages", row) == (True, 0, False, None)


def test_a_project_not_applied_yet_is_logged_once_and_the_others_go_on(
    stage: Stage, fresh: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    row = add_message(stage, "after", "A1")
    worker = Forwarder(
        ForwarderSettings(dsn=stage.server.dsn, allow_private=True, retry=QUICK, credentials_recheck_s=0.0),
        targets=lambda: [
            Target("acme", "ghost", {"after": fresh.url("/ghost")}),
            Target("acme", "shop", {"after": fresh.url("/after")}),
        ],
        credentials=engine_credentials(stage.engine()),
    )
    with caplog.at_level(logging.INFO, logger="nextmavens.platform.forwarder"):
        worker.run_pass()
        worker.run_pass()
    assert [r.getMessage() for r in caplog.records] == [
        "ghost: no sealed owner password or forwarding secret yet (apply)"
    ]
    assert [b["id"] for b in fresh.bodies("/after")] == [row] and fresh.bodies("/ghost") == []


def test_the_service_forwards_in_the_background_and_stops_within_two_seconds(stage: Stage, fresh: Receiver) -> None:
    row = add_message(stage, "orders", "S1")
    service = Service(service_settings(stage, forward_poll_s=0.05, forward_allow_private=True))
    service.open()
    try:
        deadline = time.monotonic() + 15
        while not fresh.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [b["id"] for b in fresh.bodies("/service")] == [row]
        fresh.script[:] = [("sleep", 10.0)]  # the next post hangs: stopping must not wait for it
        hanging = add_message(stage, "orders", "S2")
        while len(fresh.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(fresh.received) == 2
    finally:
        started = time.monotonic()
        service.close()
        stopped_in = time.monotonic() - started
    assert stopped_in < 2.0
    assert forward_state(stage, "messages", hanging) == (True, 0, False, None)  # not an attempt the app failed
