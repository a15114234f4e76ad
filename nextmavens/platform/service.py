"""What the running service holds: its settings, the control database pool, the engine (secrets, the apply
lock), the projects as last read (manifests and applied records), and the failed-authentication limiter."""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from psycopg_pool import ConnectionPool

from nextmavens.control.crypto import Sealer, load_master_key
from nextmavens.control.db import dsn_for_database
from nextmavens.control.store import access, backups
from nextmavens.edge.clients.evolution import EvolutionApi
from nextmavens.engine.session import Engine, EngineConfig
from nextmavens.files import read_secret_file
from nextmavens.manifest.loader import ManifestErrors, ManifestSet, load_manifests
from nextmavens.monitor.state import load_json
from nextmavens.naming import CONTROL_DATABASE, PLATFORM_ROLE
from nextmavens.platform.catalog import Catalog, project_views
from nextmavens.platform.dbrole import APPLICATION_NAME, prepare_control
from nextmavens.platform.forwarder import Forwarder, ForwarderSettings, engine_credentials
from nextmavens.platform.logstream import StreamSlots
from nextmavens.platform.ratelimit import FailureLimiter
from nextmavens.platform.sqlrun import ProjectSessions, RoleLogins
from nextmavens.platform.studiofleet import IdleReaper, PrivilegedStudios, StudioFleet
from nextmavens.whatsapp.forwarding import forward_targets

log = logging.getLogger("nextmavens.platform")

MIB = 1024 * 1024


@dataclass(frozen=True)
class ServiceSettings:
    dsn: str
    master_key: Path
    projects_dir: Path
    lock_timeout_s: float = 60.0
    api_domain: str | None = None
    max_body_bytes: int = MIB
    auth_burst: int = 10  # failed authentications per client address at once ...
    auth_refill_s: float = 6.0  # ... then one more every this many seconds
    pool_size: int = 8
    pool_timeout_s: float = 5.0  # waiting for a free connection: then 503
    statement_timeout_ms: int = 10_000
    manifest_recheck_s: float = 1.0
    # The applied projects are read again at most this often: a listing then costs no query of its own (the
    # token's lookup is the request's one query), and an apply shows within this time, as a manifest change does.
    applied_recheck_s: float = 1.0
    health_file: Path | None = None  # the health monitor's state file; None or unreadable: health "unknown"
    # How the service reaches what needs root (apply, container logs): () runs them in this process (tests, a
    # developer's machine); on the host an argv prefix such as `sudo -n <wrapper> nextmavens`, which sudoers
    # allows for the exact commands the service needs and nothing else.
    privileged_argv: tuple[str, ...] = ()
    # Migrations run as the project's owner: each statement, and the whole request, within these times.
    migration_statement_timeout_ms: int = 60_000
    migration_run_timeout_s: float = 120.0
    # A log stream ends after this long (following or not), or this much output, whichever comes first; a
    # token holds at most this many streams at once.
    logs_max_seconds: float = 300.0
    logs_max_bytes: int = 8 * MIB
    logs_max_lines: int = 50_000
    logs_streams_per_token: int = 2
    # App deploys (POST .../apps/{app}/deploys): the uploaded archive's size, the stream's time bound, and, with no
    # privileged prefix, the edge settings the in-process deploy reads (on the host the wrapper sets them).
    deploy_max_body_bytes: int = 50 * MIB
    deploy_max_seconds: float = 1800.0
    deploy_edge_config: Path | None = None
    # Evolution API (WhatsApp pairing and sending): its URL on the host and a 0600 file holding its global key;
    # without both, the WhatsApp endpoints answer 503.
    evolution_url: str | None = None
    evolution_key_file: Path | None = None
    # Messages sent through one instance: this many at once, then one more every this many seconds.
    whatsapp_send_burst: int = 20
    whatsapp_send_refill_s: float = 3.0
    # Forwarding stored WhatsApp rows to the instances' webhook_url: looked for this often; posting to loopback,
    # private and link-local addresses is refused unless allowed (tests, the sandbox).
    forward_poll_s: float = 2.0
    forward_allow_private: bool = False
    # Evolution's webhooks (POST /hooks/evolution/...): their body limit; a token bucket per instance (rows per
    # second, burst); the connections per project (as its owner role) and their statement timeout; how long an
    # instance's secrets and owner login are kept in memory (a revoked secret or suspended project: this long).
    hook_max_body_bytes: int = MIB
    hook_rate_per_s: float = 200.0
    hook_burst: int = 2000
    hook_pool_size: int = 4
    hook_statement_timeout_ms: int = 5_000
    hook_secret_ttl_s: float = 30.0
    # The dashboard: a session ends after this long unused, or this long after sign-in whatever its use; its
    # last use is written at most every session_touch_s. An account locks for signin_lock_s after
    # signin_lock_after wrong passwords or codes in a row; a client address may fail signin_burst times at once,
    # then once more every signin_refill_s. Cookies are Secure unless cookie_secure is off (plain-http tests).
    session_idle_s: float = 30 * 60.0
    session_max_s: float = 12 * 3600.0
    session_touch_s: float = 60.0
    signin_lock_after: int = 5
    signin_lock_s: float = 15 * 60.0
    signin_burst: int = 20
    signin_refill_s: float = 30.0
    cookie_secure: bool = True
    # SQL run for a caller (POST .../sql, the MCP server's execute_sql): its statement timeout and row cap by
    # default (the request may ask for less, never more than the maximums); sessions per project and role.
    sql_timeout_ms: int = 10_000
    sql_max_timeout_ms: int = 60_000
    sql_max_rows: int = 1000
    sql_pool_size: int = 2
    # Email (platform/emailsend.py, platform/emailhooks.py): Resend's API and three 0600 files: the platform's Resend
    # key, the whsec_ secret Resend's webhooks are signed with, the secret the inbound mail worker signs with. Each
    # missing: what needs it answers 503.
    resend_url: str = "https://api.resend.com"
    # the operator's ceiling on emails sent a minute through the one Resend account, all projects together; a
    # project's own email.send_per_minute is capped by it too
    email_send_per_minute: int = 600
    resend_key_file: Path | None = None
    resend_webhook_secret_file: Path | None = None
    inbound_email_secret_file: Path | None = None
    # Cloudinary, where received mail's attachments go (media/cloudinary.py): the cloud name and a 0600 file holding
    # api_key:api_secret; without them attachments are described (name, type, size, sha256) and not kept.
    cloudinary_cloud: str | None = None
    cloudinary_key_file: Path | None = None
    cloudinary_url: str = "https://api.cloudinary.com"
    # Studio for a project (README "Studio for a project"): the public URL of the Studio name (None: off); the file
    # holding postgres-meta's CRYPTO_KEY; the database's host:port as postgres-meta reaches it (default: the
    # service's own DSN's); fixed per-project Studios, ref -> host:port (a developer's machine). With none fixed and a
    # privileged prefix (the host), Studios start on demand through it (studiofleet): at most studio_max_running at
    # once (the memory budget), each stopped after studio_idle_s without a request, looked for every studio_reap_s.
    studio_url: str | None = None
    studio_meta_key_file: Path | None = None
    studio_db_address: str | None = None
    studio_upstreams: tuple[tuple[str, str], ...] = ()
    # The host's postgres-meta (its loopback URL) for GET .../types/typescript, with studio_meta_key_file (its
    # CRYPTO_KEY) and studio_db_address; None: that endpoint answers 503.
    postgres_meta_url: str | None = None
    studio_max_running: int = 2
    studio_idle_s: float = 15 * 60.0
    studio_reap_s: float = 30.0


class ManifestSource:
    """The manifests, read again when a file under the folder changes (looked for at most every `recheck_s`
    seconds); an invalid set keeps the last valid one (the engine refuses to apply it too), logged once."""

    def __init__(self, folder: Path, recheck_s: float = 1.0) -> None:
        self.folder = folder
        self.recheck_s = recheck_s
        self._lock = threading.Lock()
        self._signature: tuple[tuple[str, int, int], ...] | None = None
        self._checked_at = -math.inf
        self._current: ManifestSet | None = None

    def _scan(self) -> tuple[tuple[str, int, int], ...]:
        if not self.folder.is_dir():
            return ()
        found = []
        for path in self.folder.glob("*/*.yaml"):
            try:
                stat = path.stat()
            except OSError:
                continue
            found.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(sorted(found))

    def changed(self) -> None:
        """The next `current` looks at the folder whatever the recheck time (the service itself wrote to it)."""
        with self._lock:
            self._checked_at = -math.inf

    def current(self) -> ManifestSet | None:
        with self._lock:
            now = time.monotonic()
            if now - self._checked_at < self.recheck_s:
                return self._current
            self._checked_at = now
            signature = self._scan()
            if signature != self._signature:
                self._signature = signature
                if not signature:
                    self._current = None
                else:
                    try:
                        self._current = load_manifests(self.folder)
                    except ManifestErrors as exc:
                        log.warning(
                            "manifests in %s are invalid (%d problems); serving the last valid set",
                            self.folder,
                            len(exc.errors),
                        )
            return self._current


class Service:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.manifests = ManifestSource(settings.projects_dir, settings.manifest_recheck_s)
        self.limiter = FailureLimiter(settings.auth_burst, settings.auth_refill_s)
        self._limiter_lock = threading.Lock()
        self.log_streams = StreamSlots(settings.logs_streams_per_token)
        # TypeScript types (routes/sql.py): one generation per project at a time, keyed by ref. Each holds a request
        # thread and a postgres-meta session on the shared cluster for up to a minute, so that one project's
        # callers cannot take them all from the others (its SQL is bounded by its small session pools).
        self.type_generations = StreamSlots(1)
        self.send_limiter = FailureLimiter(settings.whatsapp_send_burst, settings.whatsapp_send_refill_s)
        self.signin_limiter = FailureLimiter(settings.signin_burst, settings.signin_refill_s)
        self._sealer: Sealer | None = None
        self._evolution: EvolutionApi | None = None
        self._catalog_lock = threading.Lock()
        self._health_unreadable = False
        self._applied: list[access.AppliedProject] | None = None
        self._applied_at = -math.inf
        self._catalog = Catalog({}, {})
        self._catalog_from: tuple[ManifestSet | None, list[access.AppliedProject] | None] = (None, None)
        self._last_good: dict[str, datetime] | None = None
        self._last_good_at = -math.inf
        self.engine = Engine(
            EngineConfig(dsn=settings.dsn, master_key_path=settings.master_key, lock_timeout_s=settings.lock_timeout_s)
        )
        self.pool = ConnectionPool(
            dsn_for_database(settings.dsn, CONTROL_DATABASE),
            min_size=1,
            max_size=settings.pool_size,
            timeout=settings.pool_timeout_s,
            kwargs={
                "autocommit": True,
                "application_name": APPLICATION_NAME,
                "options": f"-c statement_timeout={settings.statement_timeout_ms}",
            },
            open=False,
            name="control",
        )
        self.sql_sessions = ProjectSessions(settings.dsn, settings.sql_pool_size, settings.pool_timeout_s)
        self.sql_logins = RoleLogins(settings.hook_secret_ttl_s)
        self.forwarder = Forwarder(
            ForwarderSettings(
                dsn=settings.dsn, allow_private=settings.forward_allow_private, poll_s=settings.forward_poll_s
            ),
            targets=lambda: forward_targets(self.manifests.current()),
            credentials=engine_credentials(self.engine),
        )
        self.studios: StudioFleet | None = None  # Studios on demand (the host): see ServiceSettings.studio_*
        self._reaper: IdleReaper | None = None
        if settings.studio_url and settings.privileged_argv and not settings.studio_upstreams:
            runner = PrivilegedStudios(settings.privileged_argv)
            self.studios = StudioFleet(
                runner, settings.studio_max_running, settings.studio_idle_s, org_of=self._org_of
            )
            self._reaper = IdleReaper(self.studios, settings.studio_reap_s)

    def open(self) -> None:
        """Check the control database (a superuser login creates and migrates it), open the pool, start forwarding.
        Privileged mode (the host) with a superuser login works, with a warning: the host's service logs in as
        PLATFORM_ROLE, which the deploy sets up."""
        if prepare_control(self.settings.dsn) and self.settings.privileged_argv:
            log.warning(
                "the service's PostgreSQL login is a superuser; on the host it should be %s (its pgpass, written by"
                " the deploy)",
                PLATFORM_ROLE,
            )
        self.pool.open(wait=True, timeout=30)
        self.forwarder.start()
        if self._reaper is not None:
            self._reaper.start()

    def close(self) -> None:
        if not self.forwarder.stop():
            log.warning("the WhatsApp forwarder did not stop in time; left to end with the process")
        if self._reaper is not None and not self._reaper.stop():
            log.warning("the idle Studio stopper did not end in time; left to end with the process")
        self.sql_sessions.close()
        self.pool.close()

    def engine_as(self, actor: str) -> Engine:
        """The engine recording `actor` in its own audit runs (apply_runs), e.g. for a key rotation."""
        return Engine(replace(self.engine.config, actor=actor))

    def _org_of(self, ref: str) -> str | None:
        """The org of a Studio found running (refs are unique across orgs), or None."""
        return next((org for org, r in self.catalog().views if r == ref), None)

    def catalog(self) -> Catalog:
        """The projects: built again only when the manifests or the applied records changed."""
        manifests = self.manifests.current()
        with self._catalog_lock:
            now = time.monotonic()
            if self._applied is None or now - self._applied_at >= self.settings.applied_recheck_s:
                with self.pool.connection() as conn:
                    applied = access.applied_projects(conn)
                self._applied_at = now
                if applied != self._applied:
                    self._applied = applied
            source = self._catalog_from
            if source[0] is not manifests or source[1] is not self._applied:
                self._catalog = Catalog.of(project_views(manifests, self._applied))
                self._catalog_from = (manifests, self._applied)
            return self._catalog

    def last_good_backups(self) -> dict[str, datetime]:
        """target (org/ref) -> when its last complete backup finished: read again at most every applied_recheck_s,
        like the applied projects (the dashboard's project list shows it on every request)."""
        with self._catalog_lock:
            now = time.monotonic()
            if self._last_good is None or now - self._last_good_at >= self.settings.applied_recheck_s:
                with self.pool.connection() as conn:
                    self._last_good = backups.last_good_by_target(conn)
                self._last_good_at = now
            return self._last_good

    def projects_changed(self) -> None:
        """After the service's own write (a manifest, an apply): the next answer reads both again, so the member
        who wrote sees the change at once rather than after the recheck times."""
        self.manifests.changed()
        with self._catalog_lock:
            self._applied_at = -math.inf

    def health_state(self) -> dict[str, Any]:
        """The health monitor's last record ({} when it never ran or its file cannot be read)."""
        path = self.settings.health_file
        if path is None:
            return {}
        try:
            return load_json(path)
        except OSError as exc:  # e.g. the monitor's 0600 file, not shared with the service's user
            if not self._health_unreadable:
                self._health_unreadable = True
                log.warning(
                    "cannot read the health monitor's state %s (%s): health shows unknown", path, type(exc).__name__
                )
            return {}

    def evolution(self) -> EvolutionApi | None:
        """The Evolution client, its key read once from the key file; None when the settings name no Evolution.
        An unreadable key file raises SecretFileError (its message names the file, never the key)."""
        settings = self.settings
        if not settings.evolution_url or settings.evolution_key_file is None:
            return None
        if self._evolution is None:
            key = read_secret_file(settings.evolution_key_file, "Evolution's key file")
            self._evolution = EvolutionApi(settings.evolution_url, key)
        return self._evolution

    def sealer(self) -> Sealer:
        """Seals and opens members' TOTP secrets with the control master key (read once)."""
        if self._sealer is None:
            self._sealer = Sealer(load_master_key(self.settings.master_key))
        return self._sealer

    def signin_retry_after(self, address: str) -> int:
        with self._limiter_lock:
            return self.signin_limiter.retry_after(address, time.monotonic())

    def signin_failed(self, address: str) -> None:
        with self._limiter_lock:
            self.signin_limiter.failed(address, time.monotonic())

    def send_allowed(self, instance: str) -> int:
        """0 when one more message may go through `instance` now (it is counted); else seconds to wait."""
        with self._limiter_lock:
            return self.send_limiter.take(instance, time.monotonic())

    def retry_after(self, address: str) -> int:
        with self._limiter_lock:
            return self.limiter.retry_after(address, time.monotonic())

    def auth_failed(self, address: str) -> None:
        with self._limiter_lock:
            self.limiter.failed(address, time.monotonic())
