"""A project's container log as server-sent events, bounded in time and size: the /v1 logs route and the
dashboard's live tail open it through here (authorized by auth.guard, one stream slot per credential)."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool

from nextmavens.containerlogs import (
    LogsRefused,
    LogTarget,
    command_argv,
    docker_logs_argv,
    log_target,
    parse_since,
)
from nextmavens.dockerenv import docker_environment
from nextmavens.platform.auth import ApiError, Caller, audit_call
from nextmavens.platform.authz import Action
from nextmavens.platform.logstream import Bounds, EventStream, start
from nextmavens.platform.projectaccess import not_applied, visible_project
from nextmavens.platform.service import Service


def checked_target(
    service: Service, caller: Caller, org: str, ref: str, name: str, since: str | None
) -> tuple[LogTarget, str | None]:
    """The container to read and docker's `--since`, or the refusal (audited)."""
    action = Action.READ_LOGS
    view = visible_project(service, caller, action, org, ref)
    if since is not None:
        try:
            since = parse_since(since, datetime.now(UTC))
        except LogsRefused as exc:
            raise ApiError(422, "invalid_request", f"since: {exc}") from None
    manifests = service.manifests.current()
    declared = manifests.by_key(f"{org}/{ref}") if manifests else None
    applied = view.applied_state is not None
    try:
        target = log_target(org, ref, name, declared.manifest if declared else None, applied)
    except LogsRefused as exc:
        refused = ApiError(409, "no_such_service", str(exc)) if applied else not_applied(org, ref)
        audit_call(service, caller, action.value, "refused", org, ref, {"service": name, "error": refused.code})
        raise refused from None
    return target, since


async def open_stream(
    service: Service, caller: Caller, org: str, ref: str, name: str, since: str | None, follow: bool
) -> EventStream:
    """The stream of `name`'s log (rest, auth, storage, app:<name>), or the refusal (audited)."""
    settings = service.settings
    target, cutoff = await run_in_threadpool(checked_target, service, caller, org, ref, name, since)
    if settings.privileged_argv:
        argv = [*settings.privileged_argv, *command_argv(org, ref, name, cutoff, follow)]
    elif target.app is not None:  # its active release is in the host's state, which root's command reads
        raise ApiError(503, "logs_unavailable", "an app's log is read on the host, through its privileged command")
    else:
        argv = docker_logs_argv(target, cutoff, follow)
    slots = service.log_streams
    token = caller.token.id
    if not slots.take(token):
        raise ApiError(429, "too_many_streams", f"at most {slots.per_token} log streams at once per token or session")
    try:
        child = await start(argv, docker_environment())
    except OSError as exc:
        slots.give_back(token)
        await run_in_threadpool(
            audit_call, service, caller, Action.READ_LOGS.value, "failed", org, ref, {"error": type(exc).__name__}
        )
        raise ApiError(503, "logs_unavailable", "the host cannot read container logs now") from None
    bounds = Bounds(settings.logs_max_seconds, settings.logs_max_bytes, settings.logs_max_lines)
    return EventStream(child, bounds, lambda: slots.give_back(token))
