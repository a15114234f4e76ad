"""How the service's write path applies: in this process through the engine (tests, a developer's machine), or,
when `ServiceSettings.privileged_argv` is set (the host), as `<argv> apply --yes --json` run through that prefix
(sudo to the root-owned apply unit), whose JSON answer is parsed back into the ApplyResult the engine returns.
Its failures come back as the engine's own exceptions (LockTimeout, PlanError) or the repository's
ManifestRejected, so the routes map them to the same answers either way."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from nextmavens.control.locks import LockTimeout
from nextmavens.engine.plan import Change, Notice, Plan, PlanError
from nextmavens.engine.session import ApplyResult, Engine
from nextmavens.gitrepo import Revision
from nextmavens.manifest.loader import ManifestSet
from nextmavens.runner import Runner, run_command

log = logging.getLogger("nextmavens.platform")

APPLY_ARGS = ("apply", "--yes", "--json")  # the exact words the host's sudoers rule allows after the prefix
APPLY_TIMEOUT_S = 900.0  # a first apply pulls images and waits for containers and certificates


class ManifestRejected(Exception):
    """The change (or the set it would join) is invalid: `problems` as the CLI prints them."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class PrivilegedFailed(RuntimeError):
    """The privileged apply gave no usable answer (it could not run, or died): the message has no output text,
    which could hold a secret."""


@dataclass(frozen=True)
class EdgeOutcome:
    """The edge step of a privileged apply (containers, Kong, nginx, certificates, tenants)."""

    done: tuple[str, ...]
    warnings: tuple[str, ...]
    errors: tuple[str, ...]

    @property
    def converged(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class Applied:
    result: ApplyResult
    edge: EdgeOutcome | None  # None: no edge step ran (the in-process engine has no edge config)


class Applier(Protocol):
    def apply(self, manifests: ManifestSet, revision: Revision | None = None) -> Applied: ...


@dataclass(frozen=True)
class InProcess:
    engine: Engine

    def apply(self, manifests: ManifestSet, revision: Revision | None = None) -> Applied:
        result = self.engine.apply(manifests, revision=revision)
        if result is None:  # only a declined confirmation returns None, and none is asked
            raise RuntimeError("the engine applied nothing")
        return Applied(result, None)


@dataclass(frozen=True)
class Privileged:
    """`argv + apply --yes --json`; the other side reads the same projects folder the service just wrote."""

    argv: tuple[str, ...]
    actor: str
    runner: Runner | None = None
    timeout_s: float = APPLY_TIMEOUT_S

    def command(self) -> list[str]:
        return [*self.argv, *APPLY_ARGS]

    def apply(self, manifests: ManifestSet, revision: Revision | None = None) -> Applied:
        """`revision` is read again by the apply on the other side, from the same folder."""
        try:
            done = self._run(self.command())
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PrivilegedFailed(f"the privileged apply could not run ({type(exc).__name__})") from None
        try:
            return parse_apply_answer(done.returncode, done.stdout)
        except PrivilegedFailed:
            # The command line's own failure messages hold no secret (cliparts.run_engine): its last line helps the
            # operator, in the log only.
            last = (done.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1][:300]
            log.warning("the privileged apply exited %d: %s", done.returncode, last)
            raise

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        if self.runner is not None:
            return self.runner(argv)
        # sudo drops the environment on the host (the apply unit names its own actor); a prefix run directly
        # (tests) inherits the service's, with the member as the actor of the engine's run.
        return run_command(argv, timeout=self.timeout_s, env={**os.environ, "NEXTMAVENS_ACTOR": self.actor})


def applier(engine: Engine, privileged_argv: Sequence[str], actor: str) -> Applier:
    """The write path's applier: the privileged prefix when the settings name one, else the engine in-process."""
    return Privileged(tuple(privileged_argv), actor) if privileged_argv else InProcess(engine)


def parse_apply_answer(returncode: int, stdout: str) -> Applied:
    """`nextmavens apply --json`'s answer as the engine would have returned it; its failures raised as the engine
    raises them. Pure."""
    try:
        document = json.loads(stdout)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise PrivilegedFailed(f"the privileged apply exited {returncode} without a JSON answer")
    if document.get("result") == "failed":
        error = document.get("error") or {}
        kind, problems = error.get("kind"), [str(p) for p in error.get("problems") or []]
        if kind == "busy":
            raise LockTimeout("\n".join(problems))
        if kind in ("plan", "edge"):  # the set cannot be reached here: answered as the engine's refusal
            raise PlanError("\n".join(problems))
        if kind == "manifests":
            raise ManifestRejected(problems)
        raise PrivilegedFailed(f"the privileged apply failed ({kind!r})")
    try:
        result = ApplyResult(run_id=int(document["run"]), plan=_plan(document))
        edge = _edge(document.get("edge"))
    except (KeyError, TypeError, ValueError):
        raise PrivilegedFailed("the privileged apply's JSON answer is not an apply result") from None
    if returncode != 0 and (edge is None or edge.converged):
        raise PrivilegedFailed(f"the privileged apply exited {returncode}")
    return Applied(result, edge)


def _plan(document: dict[str, Any]) -> Plan:
    changes = tuple(Change(c["project"], c["action"], c["kind"], c["target"], c["detail"]) for c in document["changes"])
    notices = tuple(Notice(n["project"], n["kind"], n["detail"]) for n in document.get("notices", []))
    return Plan(changes=changes, notices=notices, errors=tuple(document.get("errors", [])))


def _edge(report: Any) -> EdgeOutcome | None:
    if report is None:
        return None
    return EdgeOutcome(
        done=tuple(str(x) for x in report["done"]),
        warnings=tuple(str(x) for x in report["warnings"]),
        errors=tuple(str(x) for x in report["errors"]),
    )
