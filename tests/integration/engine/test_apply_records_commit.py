"""`nextmavens apply` on a projects folder that is a git repository records the commit it applied: in its run, and
on every project it applied (what the service's project view shows as last_apply_commit)."""

from __future__ import annotations

from nextmavens.gitrepo import git_ok
from tests.support.engine import Stage
from tests.support.projects import write_project

IDENT = ["-c", "user.name=Op", "-c", "user.email=op@example.com"]


def test_apply_records_head_and_whether_the_tree_was_dirty(stage: Stage) -> None:
    write_project(stage.projects, "acme", "shop")
    git_ok(stage.projects, "init", "--quiet")
    git_ok(stage.projects, "add", "--all")
    git_ok(stage.projects, *IDENT, "commit", "--quiet", "-m", "shop")
    head = git_ok(stage.projects, "rev-parse", "HEAD").strip()
    done = stage.cli("apply", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    (stage.projects / "notes.txt").write_text("not committed\n")
    again = stage.cli("apply", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    runs = stage.sql("SELECT manifest_commit, manifest_dirty FROM apply_runs ORDER BY id", dbname="nextmavens")
    assert runs == [(head, False), (head, True)]
    projects = stage.sql("SELECT ref, last_apply_commit, last_apply_dirty FROM projects", dbname="nextmavens")
    assert projects == [("shop", head, True)]


def test_a_folder_without_git_records_no_commit(stage: Stage) -> None:
    write_project(stage.projects, "acme", "shop")
    stage.apply()
    assert stage.sql("SELECT manifest_commit, manifest_dirty FROM apply_runs", dbname="nextmavens") == [(None, None)]
    assert stage.sql("SELECT last_apply_commit FROM projects", dbname="nextmavens") == [(None,)]
