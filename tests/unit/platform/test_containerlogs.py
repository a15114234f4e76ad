"""What `container-logs` accepts: project names, services the project has, `--since` rewritten, one argv."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from nextmavens.containerlogs import (
    LogsRefused,
    LogTarget,
    command_argv,
    docker_logs_argv,
    log_target,
    parse_since,
    split_project,
)
from nextmavens.manifest.models import ProjectManifest

NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)


def manifest(**fields: object) -> ProjectManifest:
    return ProjectManifest.model_validate(
        {"ref": "shop", "name": "Shop", "auth": {"site_url": "https://s.example"}, **fields}
    )


def test_since_takes_durations_and_rfc3339_times_and_gives_docker_a_utc_time() -> None:
    assert parse_since("10m", NOW) == "2026-12-02T11:50:00Z"
    assert parse_since("2h", NOW) == "2026-12-02T10:00:00Z"
    assert parse_since("30s", NOW) == "2026-12-02T11:59:30Z"
    assert parse_since("1d", NOW) == "2026-12-01T12:00:00Z"
    assert parse_since("2026-12-02T10:30:00+02:00", NOW) == "2026-12-02T08:30:00Z"
    assert parse_since("2026-12-02t11:00:00.5z", NOW) == "2026-12-02T11:00:00Z"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "10",
        "0m",
        "10w",
        "-10m",
        "10m;ls",
        "--volumes",
        "400d",
        "2026-12-02T13:00:00Z",
        "2024-01-01T00:00:00Z",
        "2026-12-02T10:00:00",
        "2026-13-02T10:00:00Z",
        "2026-12-02 10:00:00Z --follow",
        "x" * 100,
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(LogsRefused):
        parse_since(text, NOW)


def test_project_names_are_slugs_only() -> None:
    assert split_project("acme/shop") == ("acme", "shop")
    for bad in ("acme", "acme/", "/shop", "acme/shop/x", "../etc/passwd", "Acme/shop", "acme/sh op", "-a/b"):
        with pytest.raises(LogsRefused):
            split_project(bad)


def test_only_a_declared_applied_projects_own_services_are_read() -> None:
    plain = manifest()
    assert log_target("acme", "shop", "rest", plain, applied=True).container == "nm-shop-rest-1"
    assert log_target("acme", "shop", "auth", plain, applied=True).container == "nm-shop-auth-1"
    with pytest.raises(LogsRefused, match="no storage"):
        log_target("acme", "shop", "storage", plain, applied=True)
    stored = manifest(storage={"enabled": True})
    assert log_target("acme", "shop", "storage", stored, applied=True).container == "nm-shop-storage-1"
    for service in ("db", "kong", "rest-1", "../rest"):
        with pytest.raises(LogsRefused):
            log_target("acme", "shop", service, plain, applied=True)
    with pytest.raises(LogsRefused):
        log_target("acme", "shop", "rest", plain, applied=False)
    with pytest.raises(LogsRefused):
        log_target("acme", "shop", "rest", None, applied=True)
    with pytest.raises(LogsRefused):
        log_target("acme", "shop", "rest", manifest(state="absent"), applied=True)


def test_the_argv_is_docker_logs_with_the_checked_values_only() -> None:
    target = LogTarget("acme", "shop", "rest")
    assert docker_logs_argv(target, None, False) == ["docker", "logs", "--timestamps", "nm-shop-rest-1"]
    assert docker_logs_argv(target, "2026-12-02T11:50:00Z", True) == [
        "docker",
        "logs",
        "--timestamps",
        "--since=2026-12-02T11:50:00Z",
        "--follow",
        "nm-shop-rest-1",
    ]
    assert command_argv("acme", "shop", "auth", "2026-12-02T11:50:00Z", True) == [
        "container-logs",
        "acme/shop",
        "auth",
        "--since",
        "2026-12-02T11:50:00Z",
        "--follow",
    ]


def test_an_apps_log_is_its_active_releases_container() -> None:
    from nextmavens.containerlogs import LogsRefused as Refused

    manifest = ProjectManifest.model_validate(
        {"ref": "shop", "name": "Shop", "auth": {"site_url": "https://x.example"}, "apps": [{"name": "web"}]}
    )
    target = log_target("acme", "shop", "app:web", manifest, applied=True)
    assert target.app == "web"
    with pytest.raises(Refused, match="has no active release"):
        _ = target.container
    assert dataclasses.replace(target, release=7).container == "nm-app-shop--web-r7"
    for name in ("app:api", "app:Web", "app:", "app:web/../x"):
        with pytest.raises(Refused, match="declares no app"):
            log_target("acme", "shop", name, manifest, applied=True)
