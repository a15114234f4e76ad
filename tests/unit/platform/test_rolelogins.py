"""RoleLogins, the short-lived in-memory copy of projects' sealed role passwords that the SQL endpoint and Studio's
meta gate read instead of unsealing them on every request: at most its ttl old, per project, forgotten at once."""

from __future__ import annotations

from nextmavens.platform.sqlrun import RoleLogins


class Clock:
    now = 50.0

    def __call__(self) -> float:
        return self.now


def test_passwords_are_read_again_after_the_ttl_per_project_and_at_once_when_forgotten() -> None:
    clock = Clock()
    logins = RoleLogins(ttl_s=30.0, clock=clock)
    reads: list[str] = []
    value = {"shop": "first"}

    def load(ref: str):  # type: ignore[no-untyped-def]
        def read() -> dict[str, str]:
            reads.append(ref)
            return {"owner": value.get(ref, "none")}

        return read

    assert logins.passwords("acme", "shop", load("shop")) == {"owner": "first"}
    value["shop"] = "second"
    clock.now += 29.9
    assert logins.passwords("acme", "shop", load("shop")) == {"owner": "first"} and reads == ["shop"]
    # another project, or the same ref named under another org, is its own entry
    assert logins.passwords("acme", "crm", load("crm")) == {"owner": "none"}
    assert logins.passwords("globex", "shop", load("shop")) == {"owner": "second"}
    clock.now += 0.1
    assert logins.passwords("acme", "shop", load("shop")) == {"owner": "second"}
    value["shop"] = "third"  # a key rotation
    logins.forget("acme", "shop")
    assert logins.passwords("acme", "shop", load("shop")) == {"owner": "third"}
    assert reads == ["shop", "crm", "shop", "shop", "shop"]


def test_a_failed_read_is_not_kept() -> None:
    logins = RoleLogins(ttl_s=30.0, clock=Clock())
    calls = []

    def failing() -> dict[str, str]:
        calls.append(1)
        raise LookupError("not applied")

    for _ in range(2):
        try:
            logins.passwords("acme", "shop", failing)
        except LookupError:
            pass
    assert len(calls) == 2
