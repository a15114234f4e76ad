"""`nextmavens destroy` of a project with WhatsApp instances, on a real PostgreSQL and the Evolution stand-in:
destroy logs out and deletes them (declared or orphaned) with their secrets; when Evolution cannot be reached it
refuses before anything is dropped, unless --leave-whatsapp says to leave them; a project that never had an
instance is destroyed without a word to Evolution; one stopped by Evolution after the drop finishes when run again."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from nextmavens.cli import main
from nextmavens.edge.clients.evolution import EvolutionApi, EvolutionError
from tests.support.edgehost import Edge
from tests.support.engine import Stage
from tests.support.ports import free_ports
from tests.support.projects import write_project

ORDERS = {"name": "orders"}


def _apply_shop_with_instances(stage: Stage, edge: Edge) -> None:
    write_project(stage.projects, "acme", "shop", whatsapp={"instances": [ORDERS, {"name": "support"}]})
    write_project(stage.projects, "acme", "crm", whatsapp={"instances": [{"name": "sales"}]})
    assert stage.cli("apply", "--yes", "--edge-config", str(edge.config)).returncode == 0
    # support no longer declared: an orphan, still in Evolution with its sealed secrets
    write_project(stage.projects, "acme", "shop", whatsapp={"instances": [ORDERS]})
    assert stage.cli("apply", "--yes", "--edge-config", str(edge.config)).returncode == 0
    assert {"shop--orders", "shop--support", "crm--sales"} <= set(edge.evolution.instances)
    write_project(stage.projects, "acme", "shop", state="absent")


def _sealed(stage: Stage, ref: str) -> list[str]:
    with stage.engine().secrets() as store:
        return sorted(store.whatsapp_instances(ref))


def _destroy(stage: Stage, tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    done = stage.cli("destroy", "acme/shop", "--confirm", "acme/shop", "--dump-dir", str(tmp_path / "dumps"), *extra)
    return done.returncode, done.stdout, done.stderr


def test_destroy_logs_out_and_deletes_the_projects_instances_and_their_secrets(
    stage: Stage, edge: Edge, tmp_path: Path
) -> None:
    _apply_shop_with_instances(stage, edge)
    tokens = [edge.evolution.instances[n]["token"] for n in ("shop--orders", "shop--support")]
    code, out, err = _destroy(stage, tmp_path, "--edge-config", str(edge.config))
    assert code == 0, out + err
    assert "shop--orders deleted from Evolution" in out and "shop--support deleted from Evolution" in out
    assert "shop--orders" not in edge.evolution.instances and "shop--support" not in edge.evolution.instances
    assert "crm--sales" in edge.evolution.instances  # another project's instance is not touched
    assert ("DELETE", "/instance/delete/shop--orders") in edge.evolution.writes()
    assert _sealed(stage, "shop") == [] and _sealed(stage, "crm") == ["sales"]
    assert stage.sql("SELECT 1 FROM pg_database WHERE datname = 'shop'") == []
    for token in tokens:
        assert token not in out + err
    runs = stage.sql("SELECT command, result FROM apply_runs ORDER BY id DESC LIMIT 2", dbname="nextmavens")
    assert runs == [("apply edge", "ok"), ("destroy", "ok")]


def test_destroy_refuses_before_dropping_anything_when_evolution_cannot_be_reached(
    stage: Stage, edge: Edge, tmp_path: Path
) -> None:
    _apply_shop_with_instances(stage, edge)
    without_edge = _destroy(stage, tmp_path)
    edge.rewrite(evolution_api_url=f"http://127.0.0.1:{free_ports(1)[0]}")  # nothing listens there
    evolution_down = _destroy(stage, tmp_path, "--edge-config", str(edge.config))
    for code, out, err in (without_edge, evolution_down):
        assert code == 1, out + err
        assert "shop--orders" in err and "shop--support" in err and "--leave-whatsapp" in err
        assert "nothing was dropped" in err and "Destroyed" not in out
    assert "--edge-config" in without_edge[2] and "127.0.0.1" in evolution_down[2]
    assert stage.sql("SELECT datconnlimit <> 0 FROM pg_database WHERE datname = 'shop'") == [(True,)]  # not blocked
    assert not (tmp_path / "dumps").exists() or not any((tmp_path / "dumps").iterdir())
    assert {"shop--orders", "shop--support"} <= set(edge.evolution.instances)
    assert _sealed(stage, "shop") == ["orders", "support"]


def test_leave_whatsapp_destroys_the_project_and_leaves_its_instances(stage: Stage, edge: Edge, tmp_path: Path) -> None:
    _apply_shop_with_instances(stage, edge)
    requests = len(edge.evolution.requests)
    code, out, err = _destroy(stage, tmp_path, "--leave-whatsapp")
    assert code == 0, out + err
    assert "Destroyed acme/shop" in out
    assert "WhatsApp instances left in Evolution" in err and "shop--orders" in err and "shop--support" in err
    assert {"shop--orders", "shop--support"} <= set(edge.evolution.instances)
    assert len(edge.evolution.requests) == requests
    assert _sealed(stage, "shop") == []
    assert stage.sql("SELECT 1 FROM pg_database WHERE datname = 'shop'") == []


def test_a_project_without_instances_is_destroyed_without_asking_evolution(
    stage: Stage, edge: Edge, tmp_path: Path
) -> None:
    write_project(stage.projects, "acme", "shop")
    assert stage.cli("apply", "--yes", "--edge-config", str(edge.config)).returncode == 0
    write_project(stage.projects, "acme", "shop", state="absent")
    requests = len(edge.evolution.requests)
    code, out, err = _destroy(stage, tmp_path, "--edge-config", str(edge.config))
    assert code == 0, out + err
    assert "WhatsApp" not in out + err
    assert len(edge.evolution.requests) == requests
    assert stage.sql("SELECT 1 FROM pg_database WHERE datname = 'shop'") == []


def test_a_destroy_stopped_by_evolution_after_the_drop_keeps_the_secrets_and_finishes_when_run_again(
    stage: Stage, edge: Edge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _apply_shop_with_instances(stage, edge)
    real_delete = EvolutionApi.delete

    def failing_delete(api: EvolutionApi, name: str) -> None:
        if name == "shop--support":
            raise EvolutionError("evolution: DELETE /instance/delete answered 503: down", 503)
        real_delete(api, name)

    monkeypatch.setattr(EvolutionApi, "delete", failing_delete)
    args = ["destroy", "acme/shop", "--confirm", "acme/shop", "--dump-dir", str(tmp_path / "dumps")]
    args += ["--edge-config", str(edge.config)]
    failed = CliRunner(env=stage.env()).invoke(main, args)
    assert failed.exit_code == 1, failed.output
    assert "Destroyed acme/shop" in failed.output and "deleting WhatsApp instance shop--support failed" in failed.output
    assert "run the same destroy again" in failed.output
    assert stage.sql("SELECT 1 FROM pg_database WHERE datname = 'shop'") == []
    assert "shop--orders" not in edge.evolution.instances and "shop--support" in edge.evolution.instances
    assert _sealed(stage, "shop") == ["orders", "support"]

    monkeypatch.setattr(EvolutionApi, "delete", real_delete)
    code, out, err = _destroy(stage, tmp_path, "--edge-config", str(edge.config))
    assert code == 0, out + err
    assert "database was already gone" in out and "shop--support deleted from Evolution" in out
    assert "shop--support" not in edge.evolution.instances and _sealed(stage, "shop") == []
    runs = stage.sql("SELECT command, result FROM apply_runs ORDER BY id DESC LIMIT 3", dbname="nextmavens")
    assert runs == [("apply edge", "ok"), ("destroy", "ok"), ("destroy", "failed")]
