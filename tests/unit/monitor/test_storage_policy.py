"""The storage monitor's alert policy and prune plan, as pure values."""

from __future__ import annotations

import pytest

from nextmavens.monitor.storage import assert_safe, evaluate, level_for, prune_commands


def run(readings: list[float]) -> list[tuple[str, int]]:
    level, seen = 0, []
    for percent in readings:
        level, events = evaluate("/", level, percent)
        seen += [(e.kind, e.level) for e in events]
    return seen


def test_once_per_crossing_no_repeats_while_holding() -> None:
    assert run([10, 79.9, 80, 81, 85, 89, 90, 92, 94, 95, 99, 97]) == [
        ("alert", 80),
        ("alert", 90),
        ("alert", 95),
    ]


def test_jump_alerts_the_highest_threshold_crossed() -> None:
    assert run([50, 96]) == [("alert", 95)]


def test_hysteresis_prevents_flapping_at_a_threshold() -> None:
    assert run([80.1, 79.5, 80.2, 79.0, 80.5]) == [("alert", 80)]


def test_recovery_steps_down_and_realerts_on_a_new_crossing() -> None:
    assert run([96, 91, 60, 82]) == [("alert", 95), ("recovery", 90), ("recovery", 0), ("alert", 80)]


def test_level_for() -> None:
    assert [level_for(p) for p in (0, 79.99, 80, 90.5, 95, 100)] == [0, 0, 80, 90, 95, 95]


def test_prune_plan_is_exact_and_never_touches_volumes() -> None:
    # the command lines as an operator would type them: the plan is checked word for word
    assert prune_commands() == [
        "docker container prune --force --filter until=24h --filter label!=nextmavens.keep".split(),
        "docker image prune --all --force --filter until=24h".split(),
        "docker builder prune --force --filter until=24h".split(),
        "journalctl --vacuum-time=7d".split(),
    ]
    for argv in prune_commands():
        assert_safe(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["docker", "volume", "prune", "--force"],
        ["docker", "system", "prune", "--all", "--volumes", "--force"],
        ["docker", "container", "rm", "-v", "db"],
        ["docker", "rmi", "postgres"],
    ],
)
def test_unsafe_commands_are_refused(argv: list[str]) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        assert_safe(argv)


def test_prune_uses_a_single_negated_label_filter() -> None:
    """Docker ORs repeated `label!=` filters on prune: two would prune more, not less."""
    for argv in prune_commands():
        assert sum(1 for word in argv if word.startswith("label!=")) <= 1
