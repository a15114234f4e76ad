"""The privileged apply's answer (`nextmavens apply --json` run through the prefix) parsed back into what the
in-process engine returns or raises, so the routes answer the same either way."""

from __future__ import annotations

import json
import subprocess
from typing import Any, cast

import pytest

from nextmavens.control.locks import LockTimeout
from nextmavens.engine.plan import PlanError
from nextmavens.engine.session import Engine
from nextmavens.manifest.loader import ManifestSet
from nextmavens.platform.manifestrepo import ManifestRejected
from nextmavens.platform.privileged import InProcess, Privileged, PrivilegedFailed, applier, parse_apply_answer

CHANGE = {"project": "acme/shop", "action": "create", "kind": "database", "target": "shop", "detail": "new"}


def answer(**fields: Any) -> str:
    return json.dumps({"run": 7, "result": "ok", "changes": [CHANGE], "notices": [], "errors": [], **fields})


def failed(kind: str, *problems: str) -> str:
    return json.dumps({"result": "failed", "error": {"kind": kind, "problems": list(problems)}})


def test_an_answer_becomes_the_engines_result() -> None:
    applied = parse_apply_answer(0, answer())
    assert applied.result.run_id == 7 and applied.edge is None
    assert applied.result.plan.as_json() == {"changes": [CHANGE], "notices": [], "errors": []}


def test_the_edge_step_is_reported() -> None:
    applied = parse_apply_answer(0, answer(edge={"done": ["nginx"], "warnings": [], "errors": []}))
    assert applied.edge is not None and applied.edge.converged and applied.edge.done == ("nginx",)
    # The database side applied, the edge step failed: apply exits 1 with its answer; still an apply result.
    broken = parse_apply_answer(1, answer(edge={"done": [], "warnings": [], "errors": ["kong: refused"]}))
    assert broken.edge is not None and not broken.edge.converged and broken.result.run_id == 7


@pytest.mark.parametrize(
    ("stdout", "raised", "text"),
    [
        (failed("busy", "another apply (pid 9) holds the lock"), LockTimeout, "pid 9"),
        (failed("plan", "/p/acme/shop.yaml: extension x is not installed", "other"), PlanError, "extension x"),
        (failed("manifests", "acme/shop.yaml:3: name: required"), ManifestRejected, "name: required"),
        (failed("edge", "the edge cannot serve these manifests", "shop: over budget"), PlanError, "over budget"),
        (failed("surprise"), PrivilegedFailed, "surprise"),
        ("sudo: a password is required\n", PrivilegedFailed, "exited 1 without a JSON answer"),
        (json.dumps({"run": "x"}), PrivilegedFailed, "not an apply result"),
    ],
)
def test_failures_come_back_as_the_engine_raises_them(stdout: str, raised: type[Exception], text: str) -> None:
    with pytest.raises(raised, match=text):
        parse_apply_answer(1, stdout)


def test_a_plan_error_keeps_one_problem_per_line() -> None:
    with pytest.raises(PlanError) as caught:
        parse_apply_answer(1, failed("plan", "a.yaml: one", "b.yaml: two"))
    assert str(caught.value).splitlines() == ["a.yaml: one", "b.yaml: two"]


def test_a_nonzero_exit_with_a_clean_answer_is_not_success() -> None:
    with pytest.raises(PrivilegedFailed, match="exited 2"):
        parse_apply_answer(2, answer())


def test_the_command_is_the_prefix_and_the_exact_apply_words() -> None:
    seen: list[list[str]] = []

    def runner(argv: list[str]) -> subprocess.CompletedProcess[str]:
        seen.append(argv)
        return subprocess.CompletedProcess(argv, 0, answer(), "")

    prefix = ("sudo", "-n", "/opt/nextmavens/bin/nextmavens-privileged")
    applied = Privileged(prefix, "ana", runner=runner).apply(cast(ManifestSet, None))
    assert seen == [[*prefix, "apply", "--yes", "--json"]] and applied.result.run_id == 7


def test_a_prefix_that_cannot_run_is_a_privileged_failure() -> None:
    with pytest.raises(PrivilegedFailed, match="FileNotFoundError"):
        Privileged(("/nonexistent/prefix",), "ana").apply(cast(ManifestSet, None))


def test_in_process_is_the_default() -> None:
    engine = cast(Engine, object())
    assert isinstance(applier(engine, (), "ana"), InProcess)
    assert isinstance(applier(engine, ("sudo", "-n", "x"), "ana"), Privileged)
