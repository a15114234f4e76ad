"""A real engine against a fresh throwaway server, with a manifest folder of the test's own."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg

from devkit.localdb.server import LocalPostgres
from nextmavens.engine.plan import Plan
from nextmavens.engine.session import ApplyResult, Engine, EngineConfig
from nextmavens.manifest.loader import load_manifests
from tests.support.repo import REPO


@dataclass
class Stage:
    server: LocalPostgres
    projects: Path
    master_key: Path

    def engine(self, lock_timeout_s: float = 30.0) -> Engine:
        return Engine(
            EngineConfig(
                dsn=self.server.dsn, master_key_path=self.master_key, lock_timeout_s=lock_timeout_s, actor="tests"
            )
        )

    def plan(self) -> Plan:
        return self.engine().plan(load_manifests(self.projects))

    def apply(self) -> ApplyResult:
        result = self.engine().apply(load_manifests(self.projects))
        assert result is not None
        return result

    def sql(self, query: str, params: tuple[object, ...] = (), dbname: str = "postgres") -> list[tuple]:
        with psycopg.connect(self.server.dsn_for(dbname), autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "NEXTMAVENS_DSN": self.server.dsn,
            "NEXTMAVENS_MASTER_KEY": str(self.master_key),
            "NEXTMAVENS_PROJECTS": str(self.projects),
            "PYTHONPATH": str(REPO),
        }

    def cli(self, *args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "nextmavens.cli", *args],
            env=self.env(),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"nextmavens {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def password(self, scope: str, role: str) -> str:
        with self.engine().secrets() as store:
            value = store.get(scope, f"password:{role}")
        assert value is not None
        return value

    def login(self, role: str, dbname: str, scope: str) -> psycopg.Connection:
        return psycopg.connect(
            self.server.dsn_for(dbname, user=role, password=self.password(scope, role)),
            autocommit=True,
            connect_timeout=5,
        )
