"""`nextmavens apply --edge-config` end to end on this machine: the database on a real PostgreSQL, then the
edge with a real nginx, contract stand-ins of Kong's, Supavisor's and Realtime's admin APIs, and a docker
stand-in that records the commands it gets (no Docker engine runs here; the sandbox host runs real ones)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from nextmavens.cli import main
from nextmavens.edge import apply, step
from tests.support.dotenv import compose_go_dotenv
from tests.support.edgehost import SUPAVISOR_SECRET, Edge
from tests.support.edgesamples import SHARED_MB
from tests.support.engine import Stage
from tests.support.localnginx import get_after_reload
from tests.support.projects import write_project


def _apply_shop(stage: Stage, edge: Edge) -> None:
    write_project(stage.projects, "acme", "shop")
    assert stage.cli("apply", "--yes", "--edge-config", str(edge.config)).returncode == 0


def _latest_runs(stage: Stage) -> list[tuple[str, str]]:
    """The audit record's two latest runs, newest first: (command, result)."""
    return stage.sql("SELECT command, result FROM apply_runs ORDER BY id DESC LIMIT 2", dbname="nextmavens")


def test_apply_serves_each_project_through_nginx_and_kong_and_converges(stage: Stage, edge: Edge) -> None:
    write_project(stage.projects, "acme", "shop", domains=["api.shop.acme.test"])
    write_project(stage.projects, "globex", "desk", state="suspended")
    first = stage.cli("apply", "--yes", "--edge-config", str(edge.config))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "edge: kong: config loaded" in first.stdout and "edge: nginx: reloaded" in first.stdout

    calls = edge.docker_log.read_text().splitlines()
    assert calls[0].startswith("ps ")
    assert any(c.startswith("compose -p nm-shop ") and " up -d " in c for c in calls)
    assert any(c.startswith("compose -p nm-desk ") and c.endswith(" stop") for c in calls)
    env_files = list((edge.services_dir / "shop").glob("*.env"))
    assert env_files and all(f.stat().st_mode & 0o077 == 0 for f in env_files)

    answer = get_after_reload(edge.http_port, "shop.api.example.test", "/rest/v1/")
    assert answer is not None and answer[0] == 200
    assert json.loads(answer[2])["upstream"] == "kong-proxy"
    custom = get_after_reload(edge.http_port, "api.shop.acme.test", "/rest/v1/")
    assert custom is not None and custom[0] == 200
    assert set(edge.supavisor.tenants) == {"shop"} and set(edge.realtime.tenants) == {"shop"}
    # Supavisor's manager logs in as the engine's pgbouncer role: the tenant carries that role's password.
    sent = json.dumps(edge.supavisor.tenants)
    assert stage.password("_cluster", "pgbouncer") in sent and "pooler-password-x" not in sent

    keys = json.loads(stage.cli("keys", "show", "acme/shop", "--json", "--edge-config", str(edge.config)).stdout)
    assert keys["api_url"] == "https://shop.api.example.test"
    loaded = json.loads(edge.kong.config or "{}")
    credentials = {c["key"] for consumer in loaded["consumers"] for c in consumer.get("keyauth_credentials", [])}
    assert keys["anon_key"] in credentials and keys["service_role_key"] in credentials
    assert stage.sql("SELECT command, result FROM apply_runs ORDER BY id", dbname="nextmavens")[-1] == (
        "apply edge",
        "ok",
    )

    second = stage.cli("apply", "--yes", "--edge-config", str(edge.config))
    assert second.returncode == 0, second.stderr
    assert "edge: kong: config unchanged" in second.stdout and "edge: nginx: unchanged" in second.stdout
    assert edge.kong.loads == 1


def test_an_edge_that_cannot_serve_the_manifests_stops_apply_before_any_change(stage: Stage, edge: Edge) -> None:
    for index in range(3):
        write_project(stage.projects, "acme", f"app{index}")
    edge.rewrite(memory_budget_mb=SHARED_MB + 300)  # room for one project of the three
    before = stage.sql("SELECT count(*) FROM pg_roles")
    refused = stage.cli("apply", "--yes", "--edge-config", str(edge.config))
    assert refused.returncode == 1
    assert "nothing was applied" in refused.stderr and "memory" in refused.stderr.lower()
    assert stage.sql("SELECT count(*) FROM pg_roles") == before
    assert edge.kong.loads == 0 and "compose -p" not in edge.docker_log.read_text()

    write_project(stage.projects, "acme", "app0", domains=["studio.example.test"])
    edge.rewrite(memory_budget_mb=8192)
    clash = stage.cli("apply", "--yes", "--edge-config", str(edge.config))
    assert clash.returncode == 1 and "already claimed by the platform (Studio)" in clash.stderr
    assert stage.sql("SELECT count(*) FROM pg_roles") == before


def test_more_projects_than_max_projects_stops_apply_before_any_change(stage: Stage, edge: Edge) -> None:
    for index in range(3):
        write_project(stage.projects, "acme", f"app{index}")
    edge.rewrite(max_projects=2)  # the shared Postgres has Realtime slots for two
    before = stage.sql("SELECT count(*) FROM pg_roles"), stage.sql("SELECT datname FROM pg_database ORDER BY 1")
    refused = stage.cli("apply", "--yes", "--edge-config", str(edge.config))
    assert refused.returncode == 1
    assert "nothing was applied" in refused.stderr, refused.stderr
    assert "3 projects would be served" in refused.stderr and "max_projects = 2" in refused.stderr
    assert (
        stage.sql("SELECT count(*) FROM pg_roles"),
        stage.sql("SELECT datname FROM pg_database ORDER BY 1"),
    ) == before
    assert edge.kong.loads == 0 and "compose -p" not in edge.docker_log.read_text()

    edge.rewrite(max_projects=3)
    assert stage.cli("apply", "--yes", "--edge-config", str(edge.config)).returncode == 0


def test_a_loose_platform_secret_file_is_refused(stage: Stage, edge: Edge) -> None:
    write_project(stage.projects, "acme", "shop")
    document = yaml.safe_load(edge.config.read_text())
    Path(document["secret_files"]["supavisor_api_secret"]).chmod(0o644)
    result = stage.cli("apply", "--yes", "--edge-config", str(edge.config))
    assert result.returncode == 1 and "accessible by group or others" in result.stderr
    assert SUPAVISOR_SECRET not in result.stderr + result.stdout


def _keys(stage: Stage, project: str) -> dict[str, str]:
    shown = stage.cli("keys", "show", project, "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def _env(edge: Edge, ref: str, name: str) -> dict[str, str]:
    """The env file as docker compose reads it (no variable is defined, so nothing could be expanded)."""
    return compose_go_dotenv((edge.services_dir / ref / name).read_text(), lambda _name: None)


def test_keys_rotate_converges_the_edge_so_only_the_new_keys_work(stage: Stage, gated_edge: Edge) -> None:
    edge = gated_edge
    write_project(stage.projects, "acme", "shop")
    applied = stage.cli("apply", "--yes", "--edge-config", str(edge.config))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    old = _keys(stage, "acme/shop")
    host = "shop.api.example.test"
    before = edge.get(host, "/rest/v1/", old["anon_key"])
    assert before is not None and before[0] == 200 and json.loads(before[2])["consumer"] == "anon_shop"
    ups_before = sum(" up -d " in c for c in edge.docker_log.read_text().splitlines())

    rotated = stage.cli("keys", "rotate", "acme/shop", "--edge-config", str(edge.config))
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert "edge: kong: config loaded" in rotated.stdout and "old keys are revoked" in rotated.stdout
    assert old["anon_key"] not in rotated.stdout + rotated.stderr
    new = _keys(stage, "acme/shop")
    assert new["anon_key"] != old["anon_key"] and new["jwt_secret"] != old["jwt_secret"]

    # Through nginx and Kong: the old key is refused, the new one passes.
    refused = edge.get(host, "/rest/v1/", old["anon_key"], want=401)
    assert refused is not None and refused[0] == 401, refused
    passed = edge.get(host, "/rest/v1/", new["anon_key"])
    assert passed is not None and passed[0] == 200 and json.loads(passed[2])["consumer"] == "anon_shop"
    old_service = edge.get(host, "/rest/v1/", old["service_role_key"], want=401)
    assert old_service is not None and old_service[0] == 401
    # Behind Kong, the services check tokens with the new secret: their env files hold it, and the
    # containers were brought up again with them.
    assert _env(edge, "shop", "rest.env")["PGRST_JWT_SECRET"] == new["jwt_secret"]
    assert _env(edge, "shop", "auth.env")["GOTRUE_JWT_SECRET"] == new["jwt_secret"]
    calls = edge.docker_log.read_text().splitlines()
    assert sum(" up -d " in c for c in calls) == ups_before + 1 and calls[-1].startswith("compose -p nm-shop ")
    assert edge.realtime.tenants["shop"]["jwt_secret"] == new["jwt_secret"]
    assert _latest_runs(stage) == [("apply edge", "ok"), ("keys rotate", "ok")]


def test_keys_rotate_with_a_failing_edge_exits_non_zero_and_says_what_still_works(
    stage: Stage, gated_edge: Edge, tmp_path: Path
) -> None:
    edge = gated_edge
    _apply_shop(stage, edge)
    old = _keys(stage, "acme/shop")

    # Manifests that do not declare the project: refused before anything changes.
    empty = tmp_path / "no-projects"
    empty.mkdir()
    for folder in (empty, tmp_path / "missing"):
        wrong = stage.cli("keys", "rotate", "acme/shop", "--edge-config", str(edge.config), "--projects", str(folder))
        assert wrong.returncode == 1 and "no keys were rotated" in wrong.stderr and "--projects" in wrong.stderr
    assert _keys(stage, "acme/shop")["anon_key"] == old["anon_key"]

    edge.break_docker()
    failed = stage.cli("keys", "rotate", "acme/shop", "--edge-config", str(edge.config))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "are issued" in failed.stderr and "but the edge step failed" in failed.stderr
    assert "Cannot connect to the Docker daemon" in failed.stderr
    assert "nextmavens apply --edge-config" in failed.stderr
    new = _keys(stage, "acme/shop")
    assert new["anon_key"] != old["anon_key"]  # stored: the next edge step converges to them
    assert _env(edge, "shop", "rest.env")["PGRST_JWT_SECRET"] == new["jwt_secret"]
    assert _latest_runs(stage) == [("apply edge", "failed"), ("keys rotate", "ok")]

    edge.break_docker(False)
    repaired = stage.cli("apply", "--yes", "--edge-config", str(edge.config))
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    passed = edge.get("shop.api.example.test", "/rest/v1/", new["anon_key"])
    assert passed is not None and passed[0] == 200


def test_destroy_with_the_edge_removes_the_projects_containers_files_tenants_and_routes(
    stage: Stage, gated_edge: Edge, tmp_path: Path
) -> None:
    edge = gated_edge
    write_project(stage.projects, "acme", "shop", domains=["api.shop.acme.test"])
    write_project(stage.projects, "acme", "crm")
    assert stage.cli("apply", "--yes", "--edge-config", str(edge.config)).returncode == 0
    shop, crm = _keys(stage, "acme/shop"), _keys(stage, "acme/crm")
    served = edge.get("shop.api.example.test", "/rest/v1/", shop["anon_key"])
    assert served is not None and served[0] == 200
    assert (edge.services_dir / "shop" / "rest.env").exists() and "shop" in edge.realtime.tenants

    # Declared absent and destroyed at once: the edge still serves it until destroy cleans up.
    write_project(stage.projects, "acme", "shop", state="absent", domains=["api.shop.acme.test"])
    destroyed = stage.cli(
        "destroy", "acme/shop", "--confirm", "acme/shop", "--dump-dir", str(tmp_path / "dumps"),
        "--edge-config", str(edge.config),
    )  # fmt: skip
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    downs = [c for c in edge.docker_log.read_text().splitlines() if c.endswith(" down")]
    assert downs == [f"compose -p nm-shop -f {edge.services_dir / 'shop' / 'compose.yaml'} down"]  # never -v
    assert not (edge.services_dir / "shop").exists()
    assert "shop" not in edge.supavisor.tenants and "shop" not in edge.realtime.tenants
    loaded = json.loads(edge.kong.config or "{}")
    assert {c["username"] for c in loaded["consumers"]} == {"anon_crm", "service_role_crm"}
    site = Path(yaml.safe_load(edge.config.read_text())["paths"]["nginx_site"]).read_text()
    assert "shop.api.example.test" not in site and "api.shop.acme.test" not in site
    still = edge.get("crm.api.example.test", "/rest/v1/", crm["anon_key"])
    assert still is not None and still[0] == 200
    assert _latest_runs(stage) == [("apply edge", "ok"), ("destroy", "ok")]


def test_destroy_stops_before_dropping_when_the_edge_cannot_serve_the_rest(
    stage: Stage, gated_edge: Edge, tmp_path: Path
) -> None:
    edge = gated_edge
    _apply_shop(stage, edge)
    write_project(stage.projects, "acme", "shop", state="absent")
    write_project(stage.projects, "acme", "desk", domains=["studio.example.test"])  # claims the platform's name
    refused = stage.cli(
        "destroy", "acme/shop", "--confirm", "acme/shop", "--dump-dir", str(tmp_path / "dumps"),
        "--edge-config", str(edge.config),
    )  # fmt: skip
    assert refused.returncode == 1 and "nothing was dropped" in refused.stderr, refused.stderr
    assert stage.sql("SELECT 1 FROM pg_database WHERE datname = 'shop'") == [(1,)]
    assert (edge.services_dir / "shop" / "compose.yaml").exists()


def test_destroy_whose_edge_cleanup_fails_exits_non_zero_and_says_what_is_left(
    stage: Stage, gated_edge: Edge, tmp_path: Path
) -> None:
    edge = gated_edge
    _apply_shop(stage, edge)
    write_project(stage.projects, "acme", "shop", state="absent")
    edge.break_docker()
    failed = stage.cli(
        "destroy", "acme/shop", "--confirm", "acme/shop", "--dump-dir", str(tmp_path / "dumps"),
        "--edge-config", str(edge.config),
    )  # fmt: skip
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Destroyed acme/shop" in failed.stderr and "but the edge step failed" in failed.stderr
    assert "docker compose -p nm-shop" in failed.stderr and "never -v" in failed.stderr
    assert (edge.services_dir / "shop" / "compose.yaml").exists()  # kept: `down` needs it
    assert stage.sql("SELECT 1 FROM pg_database WHERE datname = 'shop'") == []


def test_each_command_checks_the_edge_once(
    stage: Stage, gated_edge: Edge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apply, keys rotate and destroy check the edge before their database change, and the edge step after it
    takes that check's result instead of checking (or asking docker what runs) again."""
    edge = gated_edge
    checks: list[frozenset[str]] = []
    admissions: list[int] = []
    real_check, real_admit = step.check_edge, apply.admit

    def counted_check(*args: Any, **kwargs: Any) -> apply.EdgeCheck:
        checked = real_check(*args, **kwargs)
        checks.append(checked.refs)
        return checked

    def counted_admit(*args: Any, **kwargs: Any) -> Any:
        admissions.append(1)
        return real_admit(*args, **kwargs)

    monkeypatch.setattr(step, "check_edge", counted_check)
    monkeypatch.setattr(apply, "admit", counted_admit)
    runner = CliRunner(env=stage.env())
    config = ["--edge-config", str(edge.config)]

    def run(*args: str) -> None:
        before = len(edge.docker_log.read_text().splitlines()) if edge.docker_log.exists() else 0
        result = runner.invoke(main, [*args, *config])
        assert result.exit_code == 0, result.output + repr(result.exception)
        listed = [c for c in edge.docker_log.read_text().splitlines()[before:] if c.startswith("ps ")]
        assert len(checks) == len(admissions) == 1 and len(listed) == 1, (args, checks, admissions, listed)
        checks.clear()
        admissions.clear()

    write_project(stage.projects, "acme", "shop")
    write_project(stage.projects, "acme", "crm")
    run("apply", "--yes")
    run("keys", "rotate", "acme/shop")
    write_project(stage.projects, "acme", "shop", state="absent")
    run("destroy", "acme/shop", "--confirm", "acme/shop", "--dump-dir", str(tmp_path / "dumps"))
    assert "shop" not in edge.realtime.tenants and "crm" in edge.realtime.tenants
