"""The offload rewrites the references the project keeps (issue 17), against a real PostgreSQL with an applied
project and the Cloudinary STAND-IN, through `nextmavens media offload` as the timer runs it: each declared column
holding a verified file's path gets its URL, committed as the project's owner role, before the file is deleted;
again changes nothing; references that cannot be rewritten keep the file and roll back every column."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from devkit.standins.cloudinary import CloudinaryStandin
from nextmavens.manifest.models import MediaOffload, OffloadReference
from nextmavens.media.cloudinary import CloudinaryClient
from nextmavens.media.offload import offload_pass
from nextmavens.media.references import ReferencesError, replace_references
from nextmavens.media.run import monitor_pass
from tests.support.engine import Stage
from tests.support.projects import write_project
from tests.support.repo import REPO
from tests.support.scratch import cloned_server

SECRET = "cloudinary-standin-secret-for-references"
REFERENCES = [
    {"schema": "public", "table": "photos", "column": "path"},
    {"schema": "shop", "table": "avatars", "column": "file"},
]
TRIGGERS = """
CREATE TABLE public.resets (file text);
CREATE TABLE public.slow (file text);
CREATE FUNCTION public.reset_timeouts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('statement_timeout', '0', false);
  PERFORM set_config('lock_timeout', '0', false);
  RETURN NEW;
END $$;
CREATE FUNCTION public.sleep_long() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('statement_timeout', '0', false);
  PERFORM pg_sleep(120);
  RETURN NEW;
END $$;
CREATE TRIGGER resets BEFORE UPDATE ON public.resets FOR EACH ROW EXECUTE FUNCTION public.reset_timeouts();
CREATE TRIGGER slow BEFORE UPDATE ON public.slow FOR EACH ROW EXECUTE FUNCTION public.sleep_long();
"""
POLICY = {"paths": ["uploads/*.jpg"], "older_than_days": 7, "references": REFERENCES}


def old_file(root: Path, relative: str, content: bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    stamp = time.time() - 30 * 86400
    os.utime(path, (stamp, stamp))
    return path


@pytest.fixture(scope="module")
def staged(pg_template: Any) -> Iterator[tuple[Stage, CloudinaryStandin, Path]]:
    with cloned_server(pg_template, "nextmavens-offload-refs-") as (server, base):
        projects = base / "projects"
        write_project(projects, "acme", "shop", media_offload=POLICY)
        stage = Stage(server=server, projects=projects, master_key=base / "keys" / "master.key")
        stage.apply()
        with stage.login("owner_shop", "shop", "shop") as owner:  # the project's own tables, as its owner made them
            owner.execute("CREATE TABLE public.photos (id int PRIMARY KEY, path text)")
            owner.execute("CREATE SCHEMA shop")
            owner.execute("CREATE TABLE shop.avatars (id int PRIMARY KEY, file text)")
            owner.execute(
                "INSERT INTO public.photos VALUES (1, 'uploads/a.jpg'), (2, 'uploads/a.jpg'), (3, 'uploads/b.jpg'),"
                " (4, 'uploads/new.jpg')"
            )
            owner.execute("INSERT INTO shop.avatars VALUES (1, 'uploads/a.jpg'), (2, 'elsewhere/a.jpg')")
            # the tenant's triggers: one turns the session's timeouts off, one sleeps (each on its own table, so the
            # sleeping UPDATE comes after the one that changed the settings)
            owner.execute(TRIGGERS)
        # a table the owner may read but not change (a superuser's)
        stage.sql("CREATE TABLE public.locked (file text)", dbname="shop")
        stage.sql("INSERT INTO public.locked VALUES ('uploads/c.jpg')", dbname="shop")
        stage.sql("GRANT SELECT ON public.locked TO owner_shop", dbname="shop")
        key_file = base / "cloudinary.key"
        key_file.write_text(f"4242:{SECRET}\n")
        key_file.chmod(0o600)
        with CloudinaryStandin("demo", "4242", SECRET) as cloud:
            yield stage, cloud, key_file


@contextmanager
def locked_reference(stage: Stage) -> Iterator[None]:
    """acme/shop's policy also naming public.locked, a table its owner may not change, for the block's duration."""
    manifest = stage.projects / "acme" / "shop.yaml"
    original = manifest.read_text()
    data = yaml.safe_load(original)
    data["media_offload"]["references"] = [*REFERENCES, {"schema": "public", "table": "locked", "column": "file"}]
    manifest.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        yield
    finally:
        manifest.write_text(original)


def offload_env(stage: Stage, cloud: CloudinaryStandin, key_file: Path) -> dict[str, str]:
    return {
        **stage.env(),
        "NEXTMAVENS_CLOUDINARY_CLOUD": "demo",
        "NEXTMAVENS_CLOUDINARY_KEY_FILE": str(key_file),
        "NEXTMAVENS_CLOUDINARY_URL": cloud.base_url,
        "NEXTMAVENS_STORAGE_ROOT": str(stage.projects.parent / "storage"),
    }


def offload(stage: Stage, cloud: CloudinaryStandin, key_file: Path) -> tuple[int, dict[str, Any]]:
    env = offload_env(stage, cloud, key_file)
    done = subprocess.run(
        [sys.executable, "-m", "nextmavens.cli", "media", "offload", "--json"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert SECRET not in done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout)["acme/shop"]


def test_verified_uploads_replace_their_paths_then_go_and_again_changes_nothing(
    staged: tuple[Stage, CloudinaryStandin, Path],
) -> None:
    stage, cloud, key_file = staged
    storage = stage.projects.parent / "storage" / "shop"
    old_file(storage, "uploads/a.jpg", b"photo-a")
    old_file(storage, "uploads/b.jpg", b"photo-b")
    code, report = offload(stage, cloud, key_file)
    assert code == 0, report
    assert sorted(report["offloaded"]) == ["uploads/a.jpg", "uploads/b.jpg"] and report["references"] == 4
    record = json.loads((storage / ".offloaded.json").read_text())
    url_a, url_b = record["uploads/a.jpg"], record["uploads/b.jpg"]
    assert url_a.startswith(f"{cloud.base_url}/demo/") and url_a != url_b  # the stand-in's secure_url
    photos = stage.sql("SELECT id, path FROM public.photos ORDER BY id", dbname="shop")
    assert photos == [(1, url_a), (2, url_a), (3, url_b), (4, "uploads/new.jpg")]
    avatars = stage.sql("SELECT id, file FROM shop.avatars ORDER BY id", dbname="shop")
    assert avatars == [(1, url_a), (2, "elsewhere/a.jpg")]
    assert not (storage / "uploads/a.jpg").exists() and not (storage / "uploads/b.jpg").exists()
    assert cloud.state.assets[("image", "nextmavens/shop/uploads/a")].content == b"photo-a"
    # again: nothing due, nothing rewritten
    code, report = offload(stage, cloud, key_file)
    assert code == 0 and report == {"offloaded": [], "failed": [], "bytes_freed": 0, "references": 0}
    assert stage.sql("SELECT id, path FROM public.photos ORDER BY id", dbname="shop") == photos


def test_references_that_cannot_be_rewritten_keep_the_file_and_change_no_column(
    staged: tuple[Stage, CloudinaryStandin, Path],
) -> None:
    stage, cloud, key_file = staged
    storage = stage.projects.parent / "storage" / "shop"
    old_file(storage, "uploads/c.jpg", b"photo-c")
    stage.sql("INSERT INTO public.photos VALUES (5, 'uploads/c.jpg')", dbname="shop")
    with locked_reference(stage):
        code, report = offload(stage, cloud, key_file)
    assert code == 1 and report["offloaded"] == [] and report["references"] == 0
    [why] = report["failed"]
    assert why.startswith("uploads/c.jpg: references not rewritten (public.locked.file): permission denied"), why
    assert (storage / "uploads/c.jpg").read_bytes() == b"photo-c"  # kept
    # the transaction rolled back: the first column's row still holds the path
    assert stage.sql("SELECT path FROM public.photos WHERE id = 5", dbname="shop") == [("uploads/c.jpg",)]
    # with the manifest back, the next pass takes it
    code, report = offload(stage, cloud, key_file)
    assert code == 0 and report["offloaded"] == ["uploads/c.jpg"] and report["references"] == 1
    url_c = json.loads((storage / ".offloaded.json").read_text())["uploads/c.jpg"]
    assert stage.sql("SELECT path FROM public.photos WHERE id = 5", dbname="shop") == [(url_c,)]


def test_a_superuser_session_is_refused_before_any_update(staged: tuple[Stage, CloudinaryStandin, Path]) -> None:
    stage, _, _ = staged
    stage.sql("INSERT INTO public.photos VALUES (6, 'uploads/d.jpg')", dbname="shop")
    reference = OffloadReference.model_validate({"schema": "public", "table": "photos", "column": "path"})
    with pytest.raises(ReferencesError, match="superuser"):
        replace_references(stage.server.dsn_for("shop"), [reference], "uploads/d.jpg", "https://x.example/d")
    assert stage.sql("SELECT path FROM public.photos WHERE id = 6", dbname="shop") == [("uploads/d.jpg",)]


def hanging(relative: str) -> list[OffloadReference]:
    """photos, then the table whose trigger turns the timeouts off, then the one whose trigger sleeps 120 s."""
    return [
        OffloadReference.model_validate({"schema": "public", "table": table, "column": column})
        for table, column in (("photos", "path"), ("resets", "file"), ("slow", "file"))
    ]


def owner_conninfo(stage: Stage) -> str:
    return stage.server.dsn_for("shop", user="owner_shop", password=stage.password("shop", "owner_shop"))


def test_a_trigger_that_turns_the_timeout_off_is_stopped_by_the_timeout_sent_before_each_update(
    staged: tuple[Stage, CloudinaryStandin, Path],
) -> None:
    stage, _, _ = staged
    for table in ("photos (id, path) VALUES (7,", "resets VALUES (", "slow VALUES ("):
        stage.sql(f"INSERT INTO public.{table} 'uploads/h.jpg')", dbname="shop")
    with pytest.raises(ReferencesError, match=r"\(public\.slow\.file\): canceling statement due to statement timeout"):
        replace_references(owner_conninfo(stage), hanging("uploads/h.jpg"), "uploads/h.jpg", "https://x.example/h",
                           statement_timeout_ms=500, watchdog_s=60)  # fmt: skip
    # rolled back: every column still holds the path
    assert stage.sql("SELECT path FROM public.photos WHERE id = 7", dbname="shop") == [("uploads/h.jpg",)]
    for table in ("resets", "slow"):
        held = stage.sql(f"SELECT count(*) FROM public.{table} WHERE file = 'uploads/h.jpg'", dbname="shop")  # noqa: S608
        assert held == [(1,)], table


def test_the_watchdog_cancels_a_rewrite_past_its_time_whatever_the_session_allows(
    staged: tuple[Stage, CloudinaryStandin, Path],
) -> None:
    stage, _, _ = staged
    stage.sql("INSERT INTO public.slow VALUES ('uploads/w.jpg')", dbname="shop")
    with pytest.raises(ReferencesError, match=r"\(public\.slow\.file\): took longer than 1\.0 s"):
        replace_references(owner_conninfo(stage), hanging("uploads/w.jpg"), "uploads/w.jpg", "https://x.example/w",
                           statement_timeout_ms=600_000, watchdog_s=1)  # fmt: skip
    assert stage.sql("SELECT count(*) FROM public.slow WHERE file = 'uploads/w.jpg'", dbname="shop") == [(1,)]


def test_an_offload_pass_with_a_hanging_trigger_ends_by_its_deadline_and_keeps_the_file(
    staged: tuple[Stage, CloudinaryStandin, Path],
) -> None:
    """The pass's own deadline bounds the rewrite even when no statement timeout would (600 s here): the file is
    kept, its references rolled back, and the files after it are left for the next pass."""
    stage, cloud, _ = staged
    root = stage.projects.parent / "storage-hang"
    old_file(root, "uploads/p.jpg", b"photo-p")
    old_file(root, "uploads/q.jpg", b"photo-q")
    stage.sql("INSERT INTO public.photos VALUES (8, 'uploads/p.jpg'), (9, 'uploads/q.jpg')", dbname="shop")
    stage.sql("INSERT INTO public.slow VALUES ('uploads/p.jpg'), ('uploads/q.jpg')", dbname="shop")
    columns = (("photos", "path"), ("slow", "file"))
    policy = MediaOffload.model_validate(
        {"paths": ["uploads/*.jpg"], "older_than_days": 7,
         "references": [{"schema": "public", "table": t, "column": c} for t, c in columns]}
    )  # fmt: skip
    client = CloudinaryClient("demo", "4242", SECRET, cloud.base_url)
    started = time.monotonic()
    report = offload_pass(root, "shop", policy, client, time.time(), owner_login=lambda: owner_conninfo(stage),
                          deadline_s=2, statement_timeout_ms=600_000)  # fmt: skip
    assert time.monotonic() - started < 60  # the trigger sleeps 120 s: only the deadline ended the pass
    # whichever file came first hung until the deadline; the other was not tried
    [(_, hung), (_, untried)] = sorted(report.failed, key=lambda f: "deadline" in f[1])
    assert hung.startswith("references not rewritten (public.slow.file): took longer than"), report.failed
    assert untried == "not tried: the pass reached its 2 s deadline" and report.offloaded == []
    assert (root / "uploads/p.jpg").read_bytes() == b"photo-p" and (root / "uploads/q.jpg").exists()
    photos = stage.sql("SELECT id, path FROM public.photos WHERE id IN (8, 9) ORDER BY id", dbname="shop")
    assert photos == [(8, "uploads/p.jpg"), (9, "uploads/q.jpg")]


def test_one_projects_kept_files_do_not_hold_back_the_storage_monitors_prune(
    staged: tuple[Stage, CloudinaryStandin, Path],
) -> None:
    """The monitor's pass ran (its report names the kept file): the prune, which frees Docker's and the journal's
    space and never a project's files, goes ahead; only a pass that could not run at all holds it back."""
    stage, cloud, key_file = staged
    storage = stage.projects.parent / "storage" / "shop"
    old_file(storage, "uploads/m.jpg", b"photo-m")
    stage.sql("INSERT INTO public.locked VALUES ('uploads/m.jpg')", dbname="shop")
    with locked_reference(stage):
        env = offload_env(stage, cloud, key_file)
        run = monitor_pass(stage.projects, env)
        assert run is not None and run() is True
        assert (storage / "uploads/m.jpg").read_bytes() == b"photo-m"  # kept: its references could not be rewritten
        no_cloud = monitor_pass(stage.projects, {k: v for k, v in env.items() if "CLOUDINARY" not in k})
        assert no_cloud is not None and no_cloud() is False  # no pass at all: no prune
