"""`nextmavens db new|migrate|migrations` from a developer's folder, through the REAL platform service (loopback)
into a real PostgreSQL: applied in order with their history rows, nothing to do the second time, --dry-run
changing nothing, a failing file rolled back with its row and named, the refusals (missing versions, out of
order) and --include-all, and the history laid out as the Supabase CLI reads it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from nextmavens.cli import main
from nextmavens.projectlink import LINK_FILE
from tests.integration.platform.harness import PlatformStage

ORDERS = "create table public.orders (id int primary key);\ninsert into orders values(1)\n"
V1, V2, V3 = "20250101000000", "20250102000000", "20250103000000"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, platform_stage: PlatformStage) -> Path:
    """A developer's project folder linked to acme/shop, logged in as a developer of acme (environment pair)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEXTMAVENS_URL", platform_stage.url)
    monkeypatch.setenv("NEXTMAVENS_TOKEN", platform_stage.issue("dev@acme.test")[1])
    monkeypatch.setenv("NEXTMAVENS_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / LINK_FILE).parent.mkdir()
    (tmp_path / LINK_FILE).write_text("acme/shop\n")
    return tmp_path / "supabase" / "migrations"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def write(folder: Path, version: str, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{version}_{name}.sql"
    path.write_text(text)
    return path


def shop(stage: PlatformStage, query: str) -> list[tuple[Any, ...]]:
    return stage.stage.sql(query, dbname="shop")


def versions(stage: PlatformStage) -> list[str]:
    exists = shop(stage, "SELECT to_regclass('supabase_migrations.schema_migrations') IS NOT NULL")[0][0]
    if not exists:
        return []
    return [r[0] for r in shop(stage, "SELECT version FROM supabase_migrations.schema_migrations ORDER BY version")]


def tables(stage: PlatformStage) -> set[str]:
    return {r[0] for r in shop(stage, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_db_new_makes_a_file_as_supabase_migration_new_does(folder: Path) -> None:
    made = run("db", "new", "create_orders")
    assert made.exit_code == 0, made.output
    [path] = folder.iterdir()
    assert re.fullmatch(r"20[0-9]{12}_create_orders\.sql", path.name)
    assert made.stdout.strip() == str(Path("supabase") / "migrations" / path.name)
    assert path.read_text() == ""
    other = run("db", "new", "add-index", "--json")
    assert other.exit_code == 0 and json.loads(other.stdout)["path"].endswith("_add-index.sql")
    (folder / Path(json.loads(other.stdout)["path"]).name).unlink()
    for bad in ("../escape", "a/b", "", "has space", ".hidden", "x" * 101):
        refused = run("db", "new", bad)
        assert refused.exit_code == 1 and "NAME" in refused.stderr, (bad, refused.output)
    assert len(list(folder.iterdir())) == 1
    assert not (folder.parent.parent / "escape.sql").exists()


def test_migrate_applies_in_order_then_has_nothing_to_do_and_dry_run_changes_nothing(
    platform_stage: PlatformStage, folder: Path
) -> None:
    first = write(folder, V1, "orders", ORDERS)
    second = write(folder, V2, "items", "create table public.items (order_id int references orders);")
    (folder / "README.md").write_text("not a migration")
    dry = run("db", "migrate", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would apply 2 migration(s)" in dry.stdout and str(Path("supabase/migrations") / first.name) in dry.stdout
    assert "skipped" in dry.stderr and "README.md" in dry.stderr
    dry_json = run("db", "migrate", "--dry-run", "--json")
    assert dry_json.exit_code == 0, dry_json.output
    planned = json.loads(dry_json.stdout)
    assert planned["dry_run"] is True and planned["applied"] == [] and planned["failed"] is None
    assert [row["version"] for row in planned["pending"]] == [V1, V2]
    assert versions(platform_stage) == [] and "orders" not in tables(platform_stage)

    done = run("db", "migrate")
    assert done.exit_code == 0, done.output
    assert done.stdout.index(first.name) < done.stdout.index(second.name)
    assert "2 migration(s) applied" in done.stdout
    assert versions(platform_stage) == [V1, V2] and {"orders", "items"} <= tables(platform_stage)
    rows = shop(platform_stage, "SELECT version, name, statements FROM supabase_migrations.schema_migrations")
    statements = ["create table public.orders (id int primary key)", "insert into orders values(1)"]
    assert sorted(rows)[0] == (V1, "orders", statements)

    again = run("db", "migrate")
    assert again.exit_code == 0, again.output
    assert "nothing to do" in again.stdout and versions(platform_stage) == [V1, V2]

    write(folder, V3, "later", "create table public.later (id int)")
    dry_again = run("db", "migrate", "acme/shop", "--dry-run")
    assert dry_again.exit_code == 0 and "would apply 1 migration(s)" in dry_again.stdout
    assert "later" not in tables(platform_stage) and versions(platform_stage) == [V1, V2]

    listed = run("db", "migrations", "--json")
    assert listed.exit_code == 0, listed.output
    document = json.loads(listed.stdout)  # JSON alone on stdout
    assert document["project"] == "acme/shop"
    assert [(r["version"], r["name"]) for r in document["applied"]] == [(V1, "orders"), (V2, "items")]
    assert document["applied"][0]["file"] == str(Path("supabase/migrations") / first.name)
    assert [(r["version"], r["name"]) for r in document["pending"]] == [(V3, "later")]
    human = run("db", "migrations")
    assert "2 applied, 1 pending" in human.stdout


def test_a_failing_migration_rolls_back_with_its_row_and_names_the_file(
    platform_stage: PlatformStage, folder: Path
) -> None:
    for version in versions(platform_stage):  # the folder holds what the database has
        write(folder, version, "applied", "select 1")
    before = versions(platform_stage)
    last = max(before, default=V3)
    fine, broken, after = (f"2025020{n}000000" for n in (1, 2, 3))
    assert min(fine, broken, after) > last
    write(folder, fine, "fine", "create table public.fine (id int);")
    bad = write(folder, broken, "broken", "create table public.half (id int);\nselect 1/0;\n")
    write(folder, after, "after", "create table public.after_broken (id int)")
    failed = run("db", "migrate", "--include-all", "--json")
    assert failed.exit_code == 1, failed.output
    report = json.loads(failed.stdout)  # the JSON alone on stdout, the message on stderr
    assert [row["version"] for row in report["applied"]] == [fine]
    assert report["failed"]["version"] == broken and report["failed"]["sqlstate"] == "22012"
    assert report["failed"]["file"] == str(Path("supabase/migrations") / bad.name)
    assert [row["version"] for row in report["pending"]] == [broken, after]
    message = " ".join(failed.stderr.split())
    assert str(Path("supabase/migrations") / bad.name) in message and "division by zero" in message
    assert "statement 2 ('select 1/0')" in message and "rolled back with its history row" in message
    assert "Traceback" not in failed.output
    assert versions(platform_stage) == sorted({*before, fine})
    assert "fine" in tables(platform_stage) and not {"half", "after_broken"} & tables(platform_stage)


def test_missing_and_out_of_order_versions_are_refused_unless_include_all(
    platform_stage: PlatformStage, folder: Path
) -> None:
    applied = versions(platform_stage)
    newest = write(folder, "20250301000000", "newest", "create table public.newest (id int)")
    missing = run("db", "migrate")
    if applied:
        assert missing.exit_code == 1, missing.output
        message = " ".join(missing.stderr.split())
        assert "the database has" in message and applied[0] in message and "nothing was applied" in message
        assert "newest" not in tables(platform_stage)
    for version in applied:
        write(folder, version, "applied", "select 1")
    assert run("db", "migrate").exit_code == 0
    old = write(folder, "20241231000000", "old", "create table public.old_one (id int)")
    refused = run("db", "migrate")
    assert refused.exit_code == 1, refused.output
    message = " ".join(refused.stderr.split())
    assert "older than the last applied one" in message and old.name in message and "--include-all" in message
    assert "old_one" not in tables(platform_stage)
    forced = run("db", "migrate", "--include-all")
    assert forced.exit_code == 0, forced.output
    assert "old_one" in tables(platform_stage) and "20241231000000" in versions(platform_stage)
    assert newest.name in run("db", "migrations").stdout


def test_the_history_is_laid_out_as_the_supabase_cli_reads_it(platform_stage: PlatformStage, folder: Path) -> None:
    """The Supabase CLI (supabase/cli v2.104.0, apps/cli-go/pkg/migration/history.go) creates
    `supabase_migrations.schema_migrations (version text NOT NULL PRIMARY KEY)`, adds `statements text[]` and
    `name text`, inserts (version, name, statements) and reads
    `SELECT version, coalesce(name, '') as name, statements FROM supabase_migrations.schema_migrations`."""
    write(folder, "20250401000000", "layout", "create table public.layout (id int);\ncomment on table layout is 'a;b'")
    for version in versions(platform_stage):
        write(folder, version, "applied", "select 1")
    assert run("db", "migrate", "--include-all").exit_code == 0
    columns = shop(
        platform_stage,
        "SELECT column_name, data_type, udt_name, is_nullable FROM information_schema.columns"
        " WHERE table_schema = 'supabase_migrations' AND table_name = 'schema_migrations' ORDER BY ordinal_position",
    )
    assert columns == [("version", "text", "text", "NO"), ("statements", "ARRAY", "_text", "YES"),
                       ("name", "text", "text", "YES")]  # fmt: skip
    key = shop(
        platform_stage,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = 'supabase_migrations.schema_migrations'::regclass AND i.indisprimary",
    )
    assert key == [("version",)]
    read = shop(
        platform_stage,
        "SELECT version, coalesce(name, '') as name, statements FROM supabase_migrations.schema_migrations"
        " WHERE version = '20250401000000'",
    )
    assert read == [("20250401000000", "layout", ["create table public.layout (id int)",
                                                  "comment on table layout is 'a;b'"])]  # fmt: skip


def test_errors_say_what_to_do(platform_stage: PlatformStage, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(folder, "2025", "short", "select 1")
    bad_file = run("db", "migrate")
    assert bad_file.exit_code == 1 and "2025_short.sql" in bad_file.stderr and "14 digits" in bad_file.stderr
    (folder / "2025_short.sql").unlink()
    monkeypatch.setenv("NEXTMAVENS_TOKEN", "nmp_" + "x" * 40)
    expired = run("db", "migrations")
    assert expired.exit_code == 3 and "nextmavens login" in expired.stderr  # the developer commands' exit code
    (folder.parent.parent / LINK_FILE).unlink()
    unlinked = run("db", "migrations")
    assert unlinked.exit_code == 1 and "pass ORG/REF" in unlinked.stderr
    alias = run("db:migrate", "--help")
    assert alias.exit_code == 0 and "--include-all" in alias.stdout
    assert "db:migrate" not in run("--help").stdout


def test_db_types_prints_the_typescript_from_postgres_meta(platform_stage: PlatformStage, folder: Path) -> None:
    """Through the service and the postgres-meta STAND-IN (contract: test_types.py), for the linked project."""
    shop(platform_stage, "CREATE TABLE IF NOT EXISTS public.typed (id int8 PRIMARY KEY, label text)")
    shop(platform_stage, "ALTER TABLE public.typed OWNER TO owner_shop; GRANT SELECT ON public.typed TO readonly_shop")
    printed = run("db", "types")
    assert printed.exit_code == 0, printed.stderr
    assert printed.stdout.startswith("export type Json") and "      typed: {" in printed.stdout
    assert "          id: number\n" in printed.stdout and "label: string | null" in printed.stdout
    as_json = run("db", "types", "acme/shop", "--json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["schemas"] == ["public"]
