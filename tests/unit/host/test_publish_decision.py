"""The pure decision behind publishing manifests to the host, and the fact's parsing."""

from __future__ import annotations

import pytest

from nextmavens.host.publish import SECTION, HostCommit, HostRepo, decide, parse_state, pull_command

A, B = "a" * 40, "b" * 40
PULL = "git pull ssh://nextmavens@h/srv/p"


def _decide(host: HostRepo, lacking: tuple[HostCommit, ...] = ()) -> tuple[str, str]:
    action = decide(host, A, lacking, "/srv/p", "/home/op/manifests", PULL)
    return action.kind, action.message


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        (HostRepo("absent"), "create"),
        (HostRepo("plain"), "convert"),
        (HostRepo("repository", None), "fast_forward"),
        (HostRepo("repository", A), "none"),
        (HostRepo("repository", B, recent=(HostCommit(B, "bbbbbbb Op: older"),)), "fast_forward"),
    ],
)
def test_what_each_host_state_leads_to(host: HostRepo, kind: str) -> None:
    assert _decide(host)[0] == kind


def test_host_commits_the_operator_lacks_refuse_with_each_named_and_the_pull_command() -> None:
    lacking = (HostCommit(B, "bbbbbbb ann@example.com: Add crm"), HostCommit("c" * 40, "ccccccc bob: Members"))
    kind, message = _decide(HostRepo("repository", B, recent=lacking), lacking)
    assert kind == "refuse"
    assert "bbbbbbb ann@example.com: Add crm\n  ccccccc bob: Members" in message
    assert f"in /home/op/manifests run\n  {PULL}\n" in message


def test_uncommitted_files_refuse_even_at_the_published_commit() -> None:
    kind, message = _decide(HostRepo("repository", A, dirty=(" M acme/shop.yaml", "?? acme/new.yaml")))
    assert kind == "refuse"
    assert "uncommitted changes" in message and "acme/new.yaml" in message


def test_the_pull_command_trusts_the_service_owned_repository_on_the_host() -> None:
    assert pull_command("nextmavens", "203.0.113.5", 22, "/opt/nextmavens/projects") == (
        "git pull '--upload-pack=git -c safe.directory=/opt/nextmavens/projects/.git upload-pack' "
        "ssh://nextmavens@203.0.113.5/opt/nextmavens/projects"
    )
    assert "ssh://nextmavens@h:2222/p" in pull_command("nextmavens", "h", 2222, "/p")


def test_fact_output_parses_into_head_dirty_files_and_recent_commits() -> None:
    lines = ["repository", A, SECTION, " M acme/shop.yaml", SECTION, f"{A} aaaaaaa Op: one", f"{B} bbbbbbb Op: two"]
    state = parse_state(lines)
    assert state == HostRepo(
        "repository", A, (" M acme/shop.yaml",), (HostCommit(A, "aaaaaaa Op: one"), HostCommit(B, "bbbbbbb Op: two"))
    )
    assert parse_state(["repository", "", SECTION, SECTION]) == HostRepo("repository")
    assert parse_state(["plain"]).kind == "plain" and parse_state([]).kind == "absent"
