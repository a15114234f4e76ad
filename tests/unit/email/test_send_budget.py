"""The send budget (issue: tenant-chosen send_per_minute against the one shared Resend account): each project's
manifest rate capped by the operator's email_send_per_minute, a ceiling for all projects together, and a changed
manifest value that does not refill a project's bucket. Pure logic: the Mailer's budget with a real clock."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from nextmavens.manifest.models import Email
from nextmavens.platform.emailsend import EmailError, Mailer, MailTarget
from nextmavens.platform.service import ServiceSettings


def mailer(ceiling: int) -> Mailer:
    service = SimpleNamespace(settings=SimpleNamespace(email_send_per_minute=ceiling))
    return Mailer(cast(Any, service))


def target(ref: str, rate: int) -> MailTarget:
    email = Email(from_domain=f"{ref}.example", from_name="X", send_per_minute=rate)
    return MailTarget("acme", ref, email, owner_dsn="", jwt_secret="")


def sends(m: Mailer, t: MailTarget, tries: int) -> int:
    done = 0
    for _ in range(tries):
        try:
            m.spend(t)
        except EmailError as exc:
            assert exc.status == 429 and exc.code == "rate_limited" and exc.retry_after_s
            break
        done += 1
    return done


def test_the_default_ceiling_is_600_a_minute() -> None:
    assert ServiceSettings.__dataclass_fields__["email_send_per_minute"].default == 600


def test_a_projects_rate_is_capped_by_the_operators_ceiling() -> None:
    assert sends(mailer(5), target("shop", 6000), 100) == 5


def test_the_ceiling_holds_for_all_projects_together() -> None:
    m = mailer(5)
    assert sends(m, target("shop", 3), 10) == 3
    assert sends(m, target("web", 3), 10) == 2
    with pytest.raises(EmailError, match="the platform sends at most 5 emails a minute"):
        m.spend(target("crm", 3))


def test_changing_the_manifest_value_does_not_refill_the_bucket() -> None:
    m = mailer(600)
    assert sends(m, target("shop", 2), 10) == 2
    assert sends(m, target("shop", 3), 10) == 0  # raised: the spent two stay spent
    assert sends(m, target("shop", 1), 10) == 0
    assert sends(m, target("shop", 2), 10) == 0
