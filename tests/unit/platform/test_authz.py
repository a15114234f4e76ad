"""The one authorization check, with plain values: every action × role × scope."""

from __future__ import annotations

import pytest

from nextmavens.platform.authz import (
    RULES,
    Action,
    Decision,
    Scope,
    decide,
    is_platform_operator,
    visible_orgs,
    within,
)

ALLOW, NOT_FOUND, FORBIDDEN = Decision.ALLOW, Decision.NOT_FOUND, Decision.FORBIDDEN
PROJECT_ACTIONS = [a for a, rule in RULES.items() if rule.on_project]
ORG_ACTIONS = [a for a, rule in RULES.items() if not rule.on_project]

# The lowest role for each action, as the roles are defined: developer reads projects, anon keys, logs and
# migrations, applies migrations, deploys apps and sends email; admin also creates and suspends projects, reads
# service_role keys, rotates keys, manages WhatsApp and runs SQL as the owner role (developers: as the read-only
# role); owner also manages members and others' tokens, and reads the audit log.
LOWEST = {
    Action.READ_PROJECT: "developer",
    Action.READ_ANON_KEY: "developer",
    Action.READ_LOGS: "developer",
    Action.READ_MIGRATIONS: "developer",
    Action.APPLY_MIGRATIONS: "developer",
    Action.DEPLOY_APP: "developer",
    Action.READ_MEMBERS: "developer",
    Action.READ_SQL: "developer",
    Action.SEND_EMAIL: "developer",
    Action.READ_SERVICE_KEY: "admin",
    Action.WRITE_SQL: "admin",
    Action.ROTATE_KEYS: "admin",
    Action.SUSPEND_PROJECT: "admin",
    Action.MANAGE_WHATSAPP: "admin",
    Action.SEND_WHATSAPP: "admin",
    Action.CREATE_PROJECT: "admin",
    Action.OPEN_STUDIO: "admin",
    Action.MANAGE_MEMBERS: "owner",
    Action.READ_ORG_TOKENS: "owner",
    Action.MANAGE_ORG_TOKENS: "owner",
    Action.READ_AUDIT: "owner",
}
WRITES = {
    Action.APPLY_MIGRATIONS,
    Action.DEPLOY_APP,
    Action.ROTATE_KEYS,
    Action.SUSPEND_PROJECT,
    Action.MANAGE_WHATSAPP,
    Action.SEND_WHATSAPP,
    Action.SEND_EMAIL,
    Action.CREATE_PROJECT,
    Action.MANAGE_MEMBERS,
    Action.MANAGE_ORG_TOKENS,
    Action.WRITE_SQL,
    Action.OPEN_STUDIO,
}
RANK = ["developer", "admin", "owner"]


def check(roles: dict[str, str], scope: Scope, action: Action, org: str, project: str = "shop") -> Decision:
    return decide(roles, scope, action, org, project if RULES[action].on_project else None)


def test_every_action_has_its_documented_role_and_kind() -> None:
    assert {a: r.role for a, r in RULES.items()} == LOWEST
    assert {a for a, r in RULES.items() if r.write} == WRITES


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("role", RANK)
def test_role_decides_within_a_visible_org(action: Action, role: str) -> None:
    expected = ALLOW if RANK.index(role) >= RANK.index(LOWEST[action]) else FORBIDDEN
    assert check({"acme": role}, Scope(), action, "acme") is expected
    assert check({"acme": role}, Scope(org="acme"), action, "acme") is expected


@pytest.mark.parametrize("action", list(Action))
def test_another_org_is_invisible_whatever_the_role(action: Action) -> None:
    assert check({"acme": "owner"}, Scope(), action, "globex") is NOT_FOUND
    # a member of both orgs, through a token scoped to one, does not see the other
    assert check({"acme": "owner", "globex": "owner"}, Scope(org="acme"), action, "globex") is NOT_FOUND


@pytest.mark.parametrize("action", PROJECT_ACTIONS)
def test_a_project_token_sees_its_project_only(action: Action) -> None:
    scope = Scope(org="acme", project="shop")
    assert check({"acme": "owner"}, scope, action, "acme", "shop") is ALLOW
    assert check({"acme": "owner"}, scope, action, "acme", "crm") is NOT_FOUND


@pytest.mark.parametrize("action", ORG_ACTIONS)
def test_a_project_token_holds_nothing_on_its_org(action: Action) -> None:
    assert check({"acme": "owner"}, Scope(org="acme", project="shop"), action, "acme") is FORBIDDEN


@pytest.mark.parametrize("action", list(Action))
def test_a_read_only_token_refuses_every_write(action: Action) -> None:
    expected = FORBIDDEN if action in WRITES else ALLOW
    assert check({"acme": "owner"}, Scope(read_only=True), action, "acme") is expected


def test_an_unknown_role_sees_nothing() -> None:
    assert check({"acme": "superuser"}, Scope(), Action.READ_PROJECT, "acme") is NOT_FOUND
    assert visible_orgs({"acme": "superuser", "globex": "developer"}, Scope()) == {"globex": "developer"}


def test_project_actions_need_a_project() -> None:
    with pytest.raises(ValueError, match="acts on a project"):
        decide({"acme": "owner"}, Scope(), Action.ROTATE_KEYS, "acme")


def test_visible_orgs_follow_the_scope() -> None:
    roles = {"acme": "owner", "globex": "developer"}
    assert visible_orgs(roles, Scope()) == roles
    assert visible_orgs(roles, Scope(org="globex", project="web")) == {"globex": "developer"}
    assert visible_orgs(roles, Scope(org="initech")) == {}


@pytest.mark.parametrize(
    ("new", "holder", "expected"),
    [
        (Scope(), Scope(), True),
        (Scope(org="acme"), Scope(), True),
        (Scope(org="acme", project="shop", read_only=True), Scope(), True),
        (Scope(), Scope(org="acme"), False),
        (Scope(org="globex"), Scope(org="acme"), False),
        (Scope(org="acme", project="shop"), Scope(org="acme"), True),
        (Scope(org="acme"), Scope(org="acme", project="shop"), False),
        (Scope(org="acme", project="crm"), Scope(org="acme", project="shop"), False),
        (Scope(read_only=True), Scope(read_only=True), True),
        (Scope(), Scope(read_only=True), False),
    ],
)
def test_a_token_creates_only_equal_or_narrower_tokens(new: Scope, holder: Scope, expected: bool) -> None:
    assert within(new, holder) is expected


def test_the_platform_operator_owns_every_org_through_an_unnarrowed_login() -> None:
    """The host page's rule (authz.is_platform_operator): owner of every org on the platform, at least one, with a
    token or session narrowed to none of them; any other role, a missing org, or a narrowed scope is no operator."""
    owner_of_both = {"acme": "owner", "globex": "owner"}
    assert is_platform_operator(owner_of_both, Scope(), ["acme", "globex"]) is True
    assert is_platform_operator(owner_of_both, Scope(read_only=True), ["acme", "globex"]) is True  # it only reads
    assert is_platform_operator({"acme": "owner", "globex": "admin"}, Scope(), ["acme", "globex"]) is False
    assert is_platform_operator({"acme": "owner"}, Scope(), ["acme", "globex"]) is False
    assert is_platform_operator(owner_of_both, Scope(org="acme"), ["acme", "globex"]) is False
    assert is_platform_operator(owner_of_both, Scope(org="acme", project="shop"), ["acme", "globex"]) is False
    assert is_platform_operator(owner_of_both, Scope(), []) is False  # no org: nobody is the operator
    assert is_platform_operator(owner_of_both, Scope(), iter(["acme", "globex"])) is True  # any iterable, read once
