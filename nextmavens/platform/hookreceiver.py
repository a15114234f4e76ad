"""Evolution API's webhooks into the project's database: who may send (the instance's signed token), where a
webhook goes (the project's database, logged in as its owner role), how fast (a token bucket per instance).

What a request needs of the control database (the instance's webhook secret, the owner's password, whether the
project is active and declares the instance) is looked up once and kept `hook_secret_ttl_s` seconds, so in the
steady state a webhook costs one round trip: its insert, on a small pool of the project's own. Every refusal
answers the same (401): the log line alone says why, and names neither the token nor the body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.concurrency import run_in_threadpool

from nextmavens.control.db import owner_dsn
from nextmavens.manifest.models import REF_PATTERN
from nextmavens.naming import evolution_instance_name, project_names
from nextmavens.platform.hookauth import webhook_token_problem
from nextmavens.platform.ratelimit import FailureLimiter
from nextmavens.platform.service import Service
from nextmavens.whatsapp.rows import row_from_webhook
from nextmavens.whatsapp.store import insert_row_async

log = logging.getLogger("nextmavens.platform.hooks")

# Path segments of the shape manifests allow (orgs, refs and instance names alike); anything else is refused
# before any lookup, and not cached.
SEGMENT = re.compile(REF_PATTERN)
MAX_SEGMENT = 63
MAX_TARGETS = 1024  # (org, ref, instance) lookups kept at once
UNKNOWN_TTL_S = 5.0  # a refused lookup is tried again this soon (an instance applied just now)
# Errors after which the same webhook may well succeed: the database restarting, refusing connections, a
# statement cancelled by its timeout, a serialization failure, no free connection in time. Evolution retries 5xx.
TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)


@dataclass(frozen=True)
class HookTarget:
    """Where one instance's webhooks go, and what proves they come from Evolution."""

    ref: str
    instance: str  # the manifest's name
    evolution_name: str  # the name Evolution knows it by, which its bodies carry
    forward_pending: bool  # the manifest gives the instance a webhook_url: its rows wait for the forwarder
    webhook_secret: str = field(repr=False)
    owner_dsn: str = field(repr=False)


@dataclass(frozen=True)
class Answer:
    status: int  # 200, 401, 422, 429 or 503
    stored: bool = False  # with 200: a new row (False: the same webhook was stored before)
    retry_after_s: int | None = None


REFUSED = Answer(401)
UNAVAILABLE = Answer(503, retry_after_s=5)


def find_target(service: Service, org: str, ref: str, instance: str) -> tuple[HookTarget | None, str]:
    """The target of /hooks/evolution/{org}/{ref}/{instance}, or None and why. Blocking: control database."""
    manifests = service.manifests.current()
    project = manifests.by_ref(ref) if manifests else None
    if project is None or project.org != org:
        return None, "no such project"
    if project.manifest.state != "active":
        return None, "project not active"
    declared = next((i for i in project.manifest.whatsapp.instances if i.name == instance), None)
    if declared is None:
        return None, "no such instance"
    view = service.catalog().views.get((org, ref))
    if view is None or view.applied_state != "active":
        return None, "project not applied as active"
    with service.engine.secrets() as store:
        pair = store.whatsapp_secrets(ref, instance)
        project_secrets = store.project_secrets(ref)
    password = project_secrets.passwords.get(project_names(ref).owner) if project_secrets else None
    if pair is None or password is None:
        return None, "instance secrets not sealed yet"
    settings = service.settings
    dsn = owner_dsn(
        settings.dsn,
        ref,
        password,
        settings.hook_statement_timeout_ms,
        application_name="nextmavens-webhooks",
        search_path="pg_catalog",
    )
    target = HookTarget(
        ref=ref,
        instance=instance,
        evolution_name=evolution_instance_name(ref, instance),
        forward_pending=declared.webhook_url is not None,
        webhook_secret=pair[1],
        owner_dsn=dsn,
    )
    return target, "found"


class TargetCache:
    """(org, ref, instance) -> (target or None, reason) until it expires; the least recently used is forgotten
    first when full. Used from the event loop only."""

    def __init__(self, ttl_s: float, max_entries: int = MAX_TARGETS) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str, str], tuple[float, HookTarget | None, str]] = OrderedDict()

    def get(self, key: tuple[str, str, str], now: float) -> tuple[HookTarget | None, str] | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= now:
            return None
        self._entries.move_to_end(key)
        return entry[1], entry[2]

    def put(self, key: tuple[str, str, str], found: tuple[HookTarget | None, str], now: float) -> None:
        ttl = self.ttl_s if found[0] is not None else min(self.ttl_s, UNKNOWN_TTL_S)
        self._entries[key] = (now + ttl, *found)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


async def _refuse_superuser(conn: psycopg.AsyncConnection[Any]) -> None:
    """A pool connection's first check: the tenant's objects never run with a superuser's rights."""
    cursor = await conn.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = session_user")
    row = await cursor.fetchone()
    if row is None or row[0]:
        raise psycopg.OperationalError("the webhook session is not the project owner's")


class OwnerPools:
    """One small pool per project, logged in as its owner role, opened at the project's first webhook and
    closed with the service. A new password (the lookup found another DSN) replaces the project's pool."""

    def __init__(self, max_size: int, timeout_s: float) -> None:
        self.max_size = max_size
        self.timeout_s = timeout_s
        self._pools: dict[str, tuple[str, AsyncConnectionPool[Any]]] = {}
        self._lock = asyncio.Lock()

    async def get(self, ref: str, dsn: str) -> AsyncConnectionPool[Any]:
        current = self._pools.get(ref)
        if current is not None and current[0] == dsn:
            return current[1]
        async with self._lock:
            current = self._pools.get(ref)
            if current is not None and current[0] == dsn:
                return current[1]
            pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                dsn,
                min_size=0,
                max_size=self.max_size,
                timeout=self.timeout_s,
                max_idle=300,
                kwargs={"autocommit": True},
                configure=_refuse_superuser,
                open=False,
                name=f"hooks-{ref}",
            )
            await pool.open()
            self._pools[ref] = (dsn, pool)
        if current is not None:
            await current[1].close()
        return pool

    async def close(self) -> None:
        async with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for _, pool in pools:
            await pool.close()


def parse_body(raw: bytes) -> dict[str, Any] | None:
    """The webhook's JSON object with a string `event` and `instance`, or None. NaN and Infinity are refused:
    the body is stored as jsonb, which has neither."""

    def refuse(constant: str) -> Any:
        raise ValueError(constant)

    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=refuse)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError too
        return None
    if not isinstance(body, dict) or not all(isinstance(body.get(name), str) for name in ("event", "instance")):
        return None
    return body


class HookReceiver:
    def __init__(self, service: Service) -> None:
        settings = service.settings
        self.service = service
        self.targets = TargetCache(settings.hook_secret_ttl_s)
        self.pools = OwnerPools(settings.hook_pool_size, settings.pool_timeout_s)
        self.limiter = FailureLimiter(settings.hook_burst, 1.0 / settings.hook_rate_per_s)
        self._finding: dict[tuple[str, str, str], asyncio.Future[tuple[HookTarget | None, str]]] = {}
        self._decoy_secret = secrets.token_urlsafe(32)

    async def _target(self, key: tuple[str, str, str]) -> tuple[HookTarget | None, str]:
        """From the cache, or looked up once however many requests wait for it (in a worker thread: blocking)."""
        found = self.targets.get(key, time.monotonic())
        if found is not None:
            return found
        pending = self._finding.get(key)
        if pending is None:
            pending = asyncio.ensure_future(run_in_threadpool(find_target, self.service, *key))
            self._finding[key] = pending
            pending.add_done_callback(lambda done: self._found(key, done))
        return await asyncio.shield(pending)  # a caller that goes away does not cancel the others' lookup

    def _found(self, key: tuple[str, str, str], done: asyncio.Future[tuple[HookTarget | None, str]]) -> None:
        del self._finding[key]
        if not done.cancelled() and done.exception() is None:  # a failed lookup (control database) is not kept
            self.targets.put(key, done.result(), time.monotonic())

    async def receive(self, org: str, ref: str, instance: str, authorization: str | None, raw: bytes) -> Answer:
        if not all(len(part) <= MAX_SEGMENT and SEGMENT.fullmatch(part) for part in (org, ref, instance)):
            webhook_token_problem(authorization, self._decoy_secret, time.time())
            log.warning("webhook refused: malformed path")
            return REFUSED
        where = f"{org}/{ref}/{instance}"
        target, reason = await self._target((org, ref, instance))
        if target is None:
            webhook_token_problem(authorization, self._decoy_secret, time.time())  # the same work as a known one
            log.warning("webhook for %s refused: %s", where, reason)
            return REFUSED
        problem = webhook_token_problem(authorization, target.webhook_secret, time.time())
        if problem is not None:
            log.warning("webhook for %s refused: %s", where, problem)
            return REFUSED
        body = parse_body(raw)
        if body is None:
            log.warning("webhook for %s refused: not a JSON object with event and instance", where)
            return REFUSED
        if body["instance"] != target.evolution_name:
            log.warning("webhook for %s refused: the body names another instance", where)
            return REFUSED
        wait = self.limiter.take(f"{ref}/{instance}", time.monotonic())
        if wait:
            log.warning("webhook for %s rate limited (%d s)", where, wait)
            return Answer(429, retry_after_s=wait)
        try:
            row = row_from_webhook(body, raw, instance)
        except ValueError as exc:  # names the field it lacks, never its value; sending it again cannot help
            log.warning("webhook for %s not storable: %s; answered 422", where, exc)
            return Answer(422)
        pool = await self.pools.get(ref, target.owner_dsn)
        try:
            async with pool.connection() as conn:
                stored = await insert_row_async(conn, row, target.forward_pending)
        except TRANSIENT as exc:
            log.warning("webhook for %s not stored (%s): answered 503, Evolution retries", where, type(exc).__name__)
            if not isinstance(exc, PoolTimeout):
                await pool.check()  # drop the connections a restart left dead, so the retry finds a live one
            return UNAVAILABLE
        except psycopg.ProgrammingError as exc:  # no whatsapp tables or grants yet: an apply fixes it, keep retrying
            log.error("webhook for %s not stored (%s): answered 503; has apply run?", where, type(exc).__name__)
            return UNAVAILABLE
        except psycopg.DataError as exc:  # e.g. a \u0000 jsonb cannot hold: sending it again cannot help
            log.warning("webhook for %s not storable (%s): answered 422", where, type(exc).__name__)
            return Answer(422)
        return Answer(200, stored=stored)

    async def close(self) -> None:
        await self.pools.close()
