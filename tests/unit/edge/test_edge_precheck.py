"""The edge pre-check renders what the edge step renders, so `apply` stops before any database change."""

from __future__ import annotations

from nextmavens.edge.apply import precheck_edge
from tests.unit.edge.fixtures import manifest, sample_projects, settings


def test_a_renderable_set_has_no_problem() -> None:
    assert precheck_edge(settings(), [p.manifest for p in sample_projects()]) == []


def test_a_newline_domain_that_slipped_past_validation_stops_the_precheck() -> None:
    # model_copy skips validation: the shape a domain had when `re.match(...$)` let "zz\n.com" through.
    hostile = manifest("shop").model_copy(update={"domains": ["zz\n.com"]})
    problems = precheck_edge(settings(), [hostile, manifest("crm")])
    assert problems and all("zz\\n.com" in p for p in problems), problems


def test_a_config_kong_refuses_stops_the_precheck() -> None:
    # A host name the manifest checks would refuse, again past validation: Kong's own schema must catch it.
    hostile = manifest("shop").model_copy(update={"domains": ["UPPER.example"]})
    assert precheck_edge(settings(), [hostile])
