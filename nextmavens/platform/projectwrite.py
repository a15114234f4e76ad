"""The write path of projects: a manifest written through the manifest repository as the member (write, validate,
apply, commit), every failure answered and audited. POST/PATCH /v1/projects, PUT /v1/orgs/{org}/members and the
dashboard's forms all call these."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from nextmavens.control.locks import LockTimeout
from nextmavens.control.store import access
from nextmavens.engine.plan import PlanError
from nextmavens.manifest.loader import ORG_FILE, ManifestSet
from nextmavens.platform.auth import ApiError, Caller, audit_call, guard, refuse_missing
from nextmavens.platform.authz import Action
from nextmavens.platform.catalog import project_views
from nextmavens.platform.manifestedit import document_problems, project_document, render_document, with_state
from nextmavens.platform.manifestrepo import (
    Conflict,
    ManifestRejected,
    ManifestRepository,
    Render,
    RepositoryMissing,
    Written,
)
from nextmavens.platform.privileged import Applied, applier
from nextmavens.platform.service import Service

STATES = ("active", "suspended")  # what a member may set; `absent` (destroy) is the operator's
EDGE_NOT_APPLIED = (
    "the service applies the database side only (it has no edge config): the project's containers, Kong and "
    "domains follow at the next apply on the host (the reconcile timer's)"
)
EDGE_FAILED = (
    "the database side is applied and committed, but the edge step failed: the host's apply reports it, and the "
    "next apply (the reconcile timer's) tries again"
)

class NotDeclared(Exception):
    pass


def repository(service: Service) -> ManifestRepository:
    return ManifestRepository(service.settings.projects_dir)


@contextmanager
def refusals(service: Service, caller: Caller, action: Action, org: str, ref: str | None) -> Iterator[None]:
    """The write path's failures as answers, each audited; the file is already back as it was."""
    try:
        yield
    except RepositoryMissing as exc:
        audit_call(service, caller, action.value, "failed", org, ref, {"error": "no_manifest_repository"})
        raise ApiError(409, "no_manifest_repository", str(exc)) from None
    except ManifestRejected as exc:
        audit_call(service, caller, action.value, "invalid", org, ref, {"problems": len(exc.problems)})
        raise ApiError(422, "invalid_request", "; ".join(exc.problems)) from None
    except Conflict as exc:
        audit_call(service, caller, action.value, "refused", org, ref, {"error": exc.code})
        raise ApiError(409, exc.code, exc.message) from None
    except LockTimeout:
        audit_call(service, caller, action.value, "failed", org, ref, {"error": "busy"})
        raise ApiError(409, "busy", "another apply is running; try again when it ends") from None
    except PlanError as exc:
        audit_call(service, caller, action.value, "failed", org, ref, {"error": "apply_failed"})
        problems = own_problems(exc, org, ref)
        raise ApiError(409, "apply_failed", f"the apply failed; nothing was committed: {problems}") from None
    except (ApiError, NotDeclared):
        raise
    except Exception as exc:
        audit_call(service, caller, action.value, "failed", org, ref, {"error": type(exc).__name__})
        raise


def own_problems(exc: PlanError, org: str, ref: str | None) -> str:
    """The plan's problems with this project's manifest (the org.yaml's when `ref` is None); the others are counted,
    not shown (they may name another org's projects). Each problem starts with its manifest's path."""
    lines = str(exc).splitlines()
    own_file = f"/{org}/{ref}.yaml" if ref is not None else f"/{org}/{ORG_FILE}"
    own = [line for line in lines if line.partition(": ")[0].endswith(own_file)]
    others = len(lines) - len(own)
    if others:
        own.append(
            f"and {others} problem(s) with other projects' manifests (the operator's `nextmavens plan` lists them)"
        )
    return "; ".join(own)


def answer(service: Service, org: str, ref: str, written: Written) -> dict[str, Any]:
    service.projects_changed()
    with service.pool.connection() as conn:
        view = project_views(written.manifests, access.applied_projects(conn))[(org, ref)]
    return {"project": view.as_json(), "commit": written.commit, **apply_outcome(written.applied)}


def apply_outcome(applied: Applied | None) -> dict[str, Any]:
    """The engine's run and whether the edge followed: the privileged apply (the host) converges it, the in-process
    engine has no edge config. Problems of the edge step are the operator's (they may name other projects), so
    the answer counts them."""
    if applied is None:
        return {"apply": None, "edge_converged": False, "warning": None}
    result, edge = applied.result, applied.edge
    if edge is None:
        warning: str | None = EDGE_NOT_APPLIED
    elif edge.errors:
        warning = f"{EDGE_FAILED} ({len(edge.errors)} problem(s))"
    else:
        warning = None
    return {
        "apply": {"run": result.run_id, **result.plan.as_json()},
        "edge_converged": edge is not None and edge.converged,
        "warning": warning,
    }


def commit_message(subject: str, caller: Caller) -> str:
    return f"{subject}\n\nRequested by {caller.member} through the platform ({caller.via})."


def write_manifest(
    service: Service, caller: Caller, action: Action, org: str, ref: str | None, render: Render, subject: str
) -> Written:
    """`<org>/<ref>.yaml` (the org.yaml when `ref` is None) as `render` says, through the manifest repository as
    the caller; every failure answered and audited. `render` raises NotDeclared for a file that is not there: 404."""
    relative = f"{org}/{ref}.yaml" if ref is not None else f"{org}/{ORG_FILE}"
    actor = f"{caller.member} ({caller.via})"
    write = applier(service.engine_as(actor), service.settings.privileged_argv, actor)
    try:
        with refusals(service, caller, action, org, ref):
            return repository(service).change(relative, render, write, caller.member, commit_message(subject, caller))
    except NotDeclared:
        raise refuse_missing(service, caller, action, org, ref) from None


def create_project(
    service: Service,
    caller: Caller,
    org: str,
    ref: str,
    name: str,
    site_url: str,
    redirect_urls: list[str],
    disable_signup: bool,
) -> dict[str, Any]:
    """Write `<org>/<ref>.yaml`, validate it with the manifests, apply, commit as the member (POST /v1/projects
    and the dashboard's form)."""
    action = Action.CREATE_PROJECT
    guard(service, caller, action, org)
    document = project_document(ref, name, site_url, redirect_urls, disable_signup)
    problems = document_problems(document)
    if problems:
        audit_call(service, caller, action.value, "invalid", org, None, {"problems": len(problems)})
        raise ApiError(422, "invalid_request", "; ".join(problems))
    with service.pool.connection() as conn:
        applied = {project.ref for project in access.applied_projects(conn)}

    def render(current: ManifestSet, existing: str | None) -> str:
        if existing is not None or current.by_ref(ref) is not None or ref in applied:
            raise Conflict("exists", f"a project with ref {ref!r} already exists (refs are unique across orgs)")
        return render_document(document)

    written = write_manifest(service, caller, action, org, ref, render, f"Create project {org}/{ref}")
    audit_call(service, caller, action.value, "ok", org, ref, {"commit": written.commit})
    return answer(service, org, ref, written)


def change_state(service: Service, caller: Caller, org: str, ref: str, state: str) -> dict[str, Any]:
    """Suspend or resume a project: its manifest's `state`, applied and committed as the member."""
    action = Action.SUSPEND_PROJECT
    guard(service, caller, action, org, ref)
    if state not in STATES:
        raise ApiError(422, "invalid_request", f"state: one of {', '.join(STATES)}")

    def render(current: ManifestSet, existing: str | None) -> str | None:
        declared = current.by_key(f"{org}/{ref}")
        if declared is None or existing is None:
            raise NotDeclared
        if declared.manifest.state == "absent":  # an orphan awaiting destroy: bringing it back is the operator's call
            raise Conflict("absent", f"{org}/{ref} is declared absent; only its manifest, by hand, brings it back")
        return None if declared.manifest.state == state else with_state(existing, state)

    verb = "Suspend" if state == "suspended" else "Resume"
    written = write_manifest(service, caller, action, org, ref, render, f"{verb} project {org}/{ref}")
    audit_call(
        service, caller, action.value, "ok" if written.commit else "unchanged", org, ref, {"commit": written.commit}
    )
    return answer(service, org, ref, written)
