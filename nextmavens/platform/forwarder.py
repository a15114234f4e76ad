"""The platform service's background worker forwarding stored WhatsApp rows to each project's app.

Every `poll_s` seconds (at once again while batches come back full), for each active project whose manifest gives
an instance a `webhook_url`: log in as the project's owner role, lock the due rows (`FOR UPDATE SKIP LOCKED`, so a
second service never sends the same row at the same time), post each one signed with the project's forwarding
secret, and record the outcome in the same transaction. Delivery is at least once: a row posted just before the
process dies is posted again. Within one pass an instance's rows go in the order they arrived, and after one fails
the instance's later rows wait for the next pass; a row waiting out its backoff does not hold the others back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from nextmavens.engine.session import Engine
from nextmavens.naming import project_names
from nextmavens.platform import forwardqueue
from nextmavens.platform.migrationrun import NotOwnerSession, OwnerLoginFailed
from nextmavens.whatsapp.delivery import DEFAULT_TIMEOUT_S, Poster
from nextmavens.whatsapp.forwarding import PendingRow, RetryPolicy, Target, body, in_order
from nextmavens.whatsapp.signing import signed_headers

log = logging.getLogger("nextmavens.platform.forwarder")


@dataclass(frozen=True)
class ForwarderSettings:
    dsn: str
    allow_private: bool = False  # tests and the sandbox post to loopback; never on a real host
    poll_s: float = 2.0
    batch: int = 20  # rows of each table locked per project and pass
    timeout_s: float = DEFAULT_TIMEOUT_S  # one post, connecting included
    statement_timeout_ms: int = 10_000
    credentials_recheck_s: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True)
class Credentials:
    owner_password: str
    forward_secret: str


CredentialSource = Callable[[str], "Credentials | None"]


class NoTables(Exception):
    """The project's database has no whatsapp tables (yet): its rows, if any, cannot be read."""


def engine_credentials(engine: Engine) -> CredentialSource:
    """The owner's password and the forwarding secret of a project, as the database step sealed them (None when it
    has not run for the project yet)."""

    def read(ref: str) -> Credentials | None:
        with engine.secrets() as store:
            secrets = store.project_secrets(ref)
            forward_secret = store.whatsapp_forward_secret(ref)
        password = None if secrets is None else secrets.passwords.get(project_names(ref).owner)
        if password is None or forward_secret is None:
            return None
        return Credentials(password, forward_secret)

    return read


class Forwarder:
    def __init__(
        self,
        settings: ForwarderSettings,
        targets: Callable[[], list[Target]],
        credentials: CredentialSource,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._targets = targets
        self._credentials = credentials
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._poster = Poster(settings.allow_private)
        self._cached: dict[str, tuple[float, Credentials | None]] = {}
        self._noted: set[tuple[str, str]] = set()  # (ref, problem) logged already: a problem is logged once

    def start(self) -> None:
        self._stop.clear()
        self._poster = Poster(self.settings.allow_private)
        self._thread = threading.Thread(target=self._run, name="whatsapp-forwarder", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> bool:
        """Ends the post running, if any (the row stays due, its attempt uncounted) and waits for the thread; True
        when it ended in time."""
        self._stop.set()
        self._poster.close()
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        thread.join(timeout_s)
        return not thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_pass()
            except Exception as exc:  # the worker outlives any one failure; the next pass tries again
                self._note("", "pass", f"forwarding pass failed ({type(exc).__name__})")
                busy = False
            else:
                self._noted.discard(("", "pass"))
            if not busy:
                self._stop.wait(self.settings.poll_s)

    def run_pass(self) -> bool:
        """One pass over the projects; True when some project's batch came back full (more may be due)."""
        busy = False
        for target in self._targets():
            if self._stop.is_set():
                break
            credentials = self._credentials_of(target.ref)
            if credentials is None:
                self._note(target.ref, "unsealed", "no sealed owner password or forwarding secret yet (apply)")
                continue
            try:
                busy |= self._forward_project(target, credentials)
            except (OwnerLoginFailed, NotOwnerSession) as exc:
                self._cached.pop(target.ref, None)  # a password sealed again is read at the next pass
                self._note(target.ref, "login", f"{exc}; its rows wait")
            except NoTables:
                self._note(target.ref, "tables", "no whatsapp tables in its database yet (apply); its rows wait")
            except psycopg.Error as exc:
                self._note(target.ref, "database", f"forwarding failed ({type(exc).__name__}); its rows wait")
            else:
                self._noted = {(ref, problem) for ref, problem in self._noted if ref != target.ref}
        return busy

    def _credentials_of(self, ref: str) -> Credentials | None:
        now = time.monotonic()
        cached = self._cached.get(ref)
        if cached is None or now - cached[0] >= self.settings.credentials_recheck_s:
            cached = (now, self._credentials(ref))
            self._cached[ref] = cached
        return cached[1]

    def _note(self, ref: str, problem: str, message: str) -> None:
        """Log a problem once, not at every pass; once a pass goes through, it is logged again if it comes back."""
        if (ref, problem) not in self._noted:
            self._noted.add((ref, problem))
            log.warning("%s", f"{ref}: {message}" if ref else message)

    def _forward_project(self, target: Target, credentials: Credentials) -> bool:
        settings = self.settings
        instances = sorted(target.urls)
        with forwardqueue.owner_connection(
            settings.dsn, target.ref, credentials.owner_password, settings.statement_timeout_ms
        ) as conn:
            exists = forwardqueue.tables_exist(conn)
            conn.rollback()
            if not exists:
                raise NoTables(target.ref)
            with conn.transaction():
                rows = [
                    *forwardqueue.claim_due(conn, "message", instances, settings.batch),
                    *forwardqueue.claim_due(conn, "event", instances, settings.batch),
                ]
                failed: set[str] = set()
                for row in in_order(rows):
                    if self._stop.is_set():
                        break
                    if row.instance in failed:
                        continue  # left due: it goes after the failed one, at a later pass
                    if not self._forward_row(conn, target, credentials, row):
                        failed.add(row.instance)
            # a full batch of either table: more may be due now (a failing app waits for the next pass)
            return not failed and len(rows) > 0 and max(Counter(r.kind for r in rows).values()) >= settings.batch

    def _forward_row(self, conn: psycopg.Connection, target: Target, credentials: Credentials, row: PendingRow) -> bool:
        """Post `row` and record the outcome; False when it was not delivered."""
        posted = body(target.key, row)
        headers = signed_headers(credentials.forward_secret, int(self._clock()), posted)
        outcome = self._poster.post(target.urls[row.instance], posted, headers, self.settings.timeout_s)
        if outcome.stopped:
            return False
        if outcome.delivered:
            forwardqueue.mark_delivered(conn, row)
            return True
        delay = self.settings.retry.delay_after(row.attempts + 1)
        forwardqueue.mark_failed(conn, row, delay)
        where = f"{target.key} instance {row.instance} {row.kind} {row.id}"
        if delay is None:
            log.warning("%s: given up after %d attempts (last: %s)", where, row.attempts + 1, outcome.detail)
        else:
            log.info("%s: attempt %d failed (%s); next in %.0f s", where, row.attempts + 1, outcome.detail, delay)
        return False
