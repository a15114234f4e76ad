"""The collector as its own role (nextmavens_metrics, migration 1020, as on the host): a minute of samples, the
tiers' roll-up and pruning, an alert and uptime counts work on a real cluster; project secrets, keys, tokens,
members and the project databases themselves stay out of its reach."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from nextmavens.control.db import connect_cluster, connect_control
from nextmavens.control.store import metrics as store
from nextmavens.control.store import monitoring
from nextmavens.control.store.projects import add_project_if_missing
from nextmavens.metrics.cgroups import CgroupReader
from nextmavens.metrics.collectd import sources_from_env
from nextmavens.metrics.collector import Collector, Sources
from nextmavens.metrics.dockerapi import Container
from nextmavens.naming import CONTROL_DATABASE, METRICS_ROLE, project_names
from tests.integration.metrics.test_collector import Engine, write_v2

pytestmark = pytest.mark.integration


@pytest.fixture
def role_password(fresh_pg) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The control database migrated by the admin, two projects (one with its database), and the metrics role given
    LOGIN as the deploy does (tasks/platform.py)."""
    admin = connect_control(fresh_pg.dsn)
    add_project_if_missing(admin, "shop", "acme", "Shop", "active")
    add_project_if_missing(admin, "crm", "acme", "CRM", "active")
    password = secrets.token_hex(16)
    with connect_cluster(fresh_pg.dsn) as cluster:
        database = sql.Identifier(project_names("shop").database)
        cluster.execute(sql.SQL("CREATE DATABASE {}").format(database))
        cluster.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))  # as the engine does
        cluster.execute(
            sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(METRICS_ROLE), sql.Literal(password))
        )
    admin.close()
    yield password


@pytest.fixture
def role_dsn(fresh_pg, role_password: str) -> str:  # type: ignore[no-untyped-def]
    return str(fresh_pg.dsn_for(CONTROL_DATABASE, user=METRICS_ROLE, password=role_password))


def test_the_collector_writes_rolls_up_and_alerts_as_its_own_role(role_dsn: str, tmp_path: Path) -> None:
    write_v2(tmp_path / "cgroup", "a" * 64, 1_000_000, 50 * 2**20)
    # the wrapper's two connections: the collector takes its own role's
    env = {"NEXTMAVENS_METRICS_DSN": role_dsn, "NEXTMAVENS_DSN": "postgresql://unused@127.0.0.1:1/x"}
    from_env = sources_from_env(env)
    sources = Sources(
        connect=from_env.connect,
        docker=Engine([Container("a" * 64, "nm-shop-rest-1", "nm-shop", "rest")]),  # type: ignore[arg-type]
        cgroups=CgroupReader(tmp_path / "cgroup"),
        access_log=None,
        api_domain="",
        disks=(str(tmp_path),),
    )
    collector = Collector(sources)
    start = 1_790_000_000 // 3600 * 3600
    for minute in range(3):
        samples = collector.tick(start + 60 * minute)
    assert collector.conn is not None and collector.conn.info.user == METRICS_ROLE
    assert samples["acme/shop"]["mem_mb:rest"] == 50.0 and samples["acme/shop"]["db_size_mb"] > 1
    stored = store.latest(collector.conn, "acme/shop")
    assert stored is not None and stored[0] == start + 120 and stored[1]["db_size_mb"] > 1
    # a day later: the 5-minute and hourly tiers are written and the raw minutes pruned by the same role
    raw = collector.conn.execute("SELECT count(*) FROM metric_raw").fetchone()
    assert raw == (6,)  # host and acme/shop, three minutes each
    done = store.maintain(collector.conn, start + 3 * 86400)
    assert done.pruned["raw"] == 6, done
    assert collector.conn.execute("SELECT count(*) FROM metric_5m").fetchone() != (0,)
    monitoring.add_alert(collector.conn, "errors", "acme/shop", "5xx rose", {"paths": ["/x"]}, False)
    monitoring.record_checks(
        collector.conn, date(2026, 12, 1), [(monitoring.Target("acme/shop", "api", "shop.api.example.test"), True)]
    )
    target = monitoring.Target("acme/shop", "api", "shop.api.example.test")
    monitoring.record_change(collector.conn, target, True, "200")
    assert monitoring.recent_alerts(collector.conn, ["acme/shop"])[0].title == "5xx rose"


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM secrets",
        "SELECT * FROM api_keys",
        "SELECT * FROM access_tokens",
        "SELECT * FROM member_credentials",
        "SELECT * FROM dashboard_sessions",
        "SELECT * FROM audit_log",
        "SELECT * FROM backups",
        "SELECT * FROM projects",  # only org, ref and destroyed_at
        "UPDATE projects SET state = 'suspended'",
        "DELETE FROM alerts",
        "UPDATE alerts SET title = 'x'",
        "CREATE TABLE intruder (a int)",
        "CREATE ROLE intruder LOGIN",
        "SELECT pg_database_size('shop')",
        "SELECT pg_read_file('postgresql.conf')",
    ],
)
def test_the_role_cannot_read_secrets_or_act_beyond_its_grants(role_dsn: str, statement: str) -> None:
    with psycopg.connect(role_dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement.replace("'shop'", f"'{project_names('shop').database}'"))


def test_the_role_cannot_connect_to_a_project_database(fresh_pg, role_password: str) -> None:  # type: ignore[no-untyped-def]
    project_dsn = fresh_pg.dsn_for(project_names("shop").database, user=METRICS_ROLE, password=role_password)
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(project_dsn).close()
