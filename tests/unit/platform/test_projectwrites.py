"""What a failed apply tells the member: its own project's problems, the others only counted."""

from __future__ import annotations

from nextmavens.engine.plan import PlanError
from nextmavens.platform.projectwrite import own_problems


def test_only_the_changed_projects_problems_are_shown() -> None:
    failed = PlanError(
        "projects/acme/shop.yaml: database 'shop' already exists on this server\n"
        "projects/globex/secret-plan.yaml: extension(s) vector are not installed\n"
        "projects/acme/shop-two.yaml: something else"
    )
    shown = own_problems(failed, "acme", "shop")
    assert shown.startswith("projects/acme/shop.yaml: database 'shop' already exists")
    assert "secret-plan" not in shown and "shop-two" not in shown
    assert shown.endswith(
        "and 2 problem(s) with other projects' manifests (the operator's `nextmavens plan` lists them)"
    )
    assert own_problems(PlanError("projects/acme/shop.yaml: x"), "acme", "shop") == "projects/acme/shop.yaml: x"


def test_a_member_write_shows_only_the_org_files_problems() -> None:
    failed = PlanError("projects/acme/shop.yaml: x\nprojects/acme/org.yaml: y")
    assert own_problems(failed, "acme", None) == (
        "projects/acme/org.yaml: y; and 1 problem(s) with other projects' manifests (the operator's `nextmavens plan` "
        "lists them)"
    )
