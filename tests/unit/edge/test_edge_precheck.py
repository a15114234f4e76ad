"""The edge check renders what the edge step renders, so a command stops before any database change; the
edge step takes its result instead of checking again."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from nextmavens.edge.apply import EdgeCheck, EdgeRefused, EdgeRuntime, apply_edge, check_edge, plan_edge
from nextmavens.edge.inputs import EdgeProject
from tests.support.edgesamples import manifest, project, sample_projects, secrets_for, settings


def test_a_renderable_set_passes_and_names_what_was_checked() -> None:
    checked = check_edge(settings(), [p.manifest for p in sample_projects()])
    assert checked.refs == {p.ref for p in sample_projects()}


def test_a_newline_domain_that_slipped_past_validation_stops_the_check() -> None:
    # model_copy skips validation: the shape a domain had when `re.match(...$)` let "zz\n.com" through.
    hostile = manifest("shop").model_copy(update={"domains": ["zz\n.com"]})
    with pytest.raises(EdgeRefused) as refused:
        check_edge(settings(), [hostile, manifest("crm")])
    assert refused.value.problems and all("zz\\n.com" in p for p in refused.value.problems), refused.value.problems


def test_a_config_kong_refuses_stops_the_check() -> None:
    # A host name the manifest checks would refuse, again past validation: the check refuses it too.
    hostile = manifest("shop").model_copy(update={"domains": ["UPPER.example"]})
    with pytest.raises(EdgeRefused, match="UPPER.example"):
        check_edge(settings(), [hostile])


def test_a_key_two_projects_share_is_refused_when_the_real_secrets_are_rendered() -> None:
    # The check renders throwaway secrets; only the plan with the engine's secrets can see a shared key.
    one = project("one")
    two = EdgeProject(manifest("two"), replace(secrets_for("two"), keys=one.secrets.keys))
    check_edge(settings(), [one.manifest, two.manifest])
    with pytest.raises(EdgeRefused, match="identical to one/anon"):
        plan_edge(settings(), [one, two])


def test_the_edge_step_refuses_a_project_the_check_did_not_see(tmp_path: Path) -> None:
    runtime = EdgeRuntime(settings(), tmp_path, *([None] * 6))  # type: ignore[arg-type]  # nothing is reached
    with pytest.raises(EdgeRefused, match="crm: not in the set the edge checked"):
        apply_edge(runtime, [project("shop"), project("crm")], EdgeCheck(refs=frozenset({"shop"})))
    assert list(tmp_path.iterdir()) == []


def test_projects_up_to_max_projects_pass_and_one_more_is_refused_naming_the_knob() -> None:
    # Suspended projects keep their Realtime tenant, so they count; absent ones do not.
    at_limit = [manifest("one"), manifest("two", state="suspended"), manifest("gone", state="absent")]
    assert check_edge(settings(max_projects=2), at_limit).refs == {"one", "two", "gone"}
    with pytest.raises(EdgeRefused) as refused:
        check_edge(settings(max_projects=2), [*at_limit, manifest("three")])
    (problem,) = refused.value.problems
    assert "3 projects would be served" in problem and "max_projects = 2" in problem
    assert "`max_projects` in group data" in problem


def test_an_edge_file_without_max_projects_refuses_nothing_on_that_count() -> None:
    many = [manifest(f"app{index}") for index in range(5)]
    assert settings().max_projects is None
    assert len(check_edge(settings(), many).refs) == 5
