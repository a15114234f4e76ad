"""Publishing the operator's manifest repository to the host's, against real git repositories in tmp folders: the
host side runs the very fact command and publish commands the deploy sends (sh -c), the local side the very
decision the deploy makes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from nextmavens import gitrepo
from nextmavens.host import publish
from nextmavens.host.manifestsource import ManifestSourceError, manifest_source, publish_action

pytestmark = pytest.mark.integration

PULL = "git pull ssh://nextmavens@host/srv/projects"


def _git(folder: Path, *args: str) -> str:
    return gitrepo.git_ok(folder, "-c", "user.name=Op", "-c", "user.email=op@example.com", *args)


def _commit(folder: Path, relative: str, text: str, message: str) -> str:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    _git(folder, "add", "--", relative)
    _git(folder, "commit", "--quiet", "-m", message)
    return _git(folder, "rev-parse", "HEAD").strip()


@pytest.fixture
def operator(tmp_path: Path) -> Path:
    repo = tmp_path / "operator"
    repo.mkdir()
    _git(repo, "init", "--quiet", "--initial-branch=main")
    _commit(repo, "acme/org.yaml", "org: acme\n", "acme")
    return repo


def _sh(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60, check=False)


def _state(host: Path) -> publish.HostRepo:
    done = _sh(publish.state_command(str(host)))
    assert done.returncode == 0, done.stderr
    return publish.parse_state(done.stdout.splitlines())


def _publish(operator: Path, host: Path, tmp_path: Path) -> publish.Action:
    """What the deploy does: decide, then (unless refused or nothing to do) upload the bundle and run the commands."""
    source = manifest_source(str(operator))
    action = publish_action(_state(host), str(operator), source.commit, str(host), PULL)
    if action.kind in ("create", "convert", "fast_forward"):
        bundle = tmp_path / "upload.bundle"
        bundle.write_bytes(source.bundle())
        for command in publish.publish_commands(action, str(host), str(bundle), source.commit, source.branch, "root"):
            done = _sh(command)
            if done.returncode != 0:
                raise RuntimeError(done.stderr)
        assert not bundle.exists()
    return action


def _head(folder: Path) -> str:
    return gitrepo.git_ok(folder, "rev-parse", "HEAD").strip()


def test_first_publish_creates_the_repository_then_publishing_again_changes_nothing(
    operator: Path, tmp_path: Path
) -> None:
    host = tmp_path / "host" / "projects"
    host.parent.mkdir()
    assert _publish(operator, host, tmp_path).kind == "create"
    assert _head(host) == _head(operator)
    assert (host / "acme" / "org.yaml").read_text() == "org: acme\n"
    assert gitrepo.current_branch(host) == "main"
    assert gitrepo.revision(host) == gitrepo.Revision(_head(operator), dirty=False)
    assert gitrepo.git_ok(host, "for-each-ref", "refs/nextmavens").strip() == ""  # the temporary ref is gone
    assert _publish(operator, host, tmp_path).kind == "none"


def test_a_new_commit_fast_forwards_the_work_tree(operator: Path, tmp_path: Path) -> None:
    host = tmp_path / "projects"
    _publish(operator, host, tmp_path)
    new = _commit(operator, "acme/shop.yaml", "ref: shop\n", "shop")
    action = _publish(operator, host, tmp_path)
    assert action.kind == "fast_forward"
    assert _head(host) == new
    assert (host / "acme" / "shop.yaml").read_text() == "ref: shop\n"


def test_commits_made_on_the_host_refuse_the_publish_and_name_them(operator: Path, tmp_path: Path) -> None:
    host = tmp_path / "projects"
    _publish(operator, host, tmp_path)
    service = _commit(host, "acme/crm.yaml", "ref: crm\n", "Add crm through the service")
    action = _publish(operator, host, tmp_path)
    assert action.kind == "refuse"
    assert f"{service[:7]} Op: Add crm through the service" in action.message
    assert PULL in action.message
    assert _head(host) == service
    # the operator pulls them (a plain fetch from the folder here) and the next publish fast-forwards
    _git(operator, "pull", "--quiet", "--ff-only", str(host), "main")
    mine = _commit(operator, "acme/shop.yaml", "ref: shop\n", "shop")
    assert _publish(operator, host, tmp_path).kind == "fast_forward"
    assert _head(host) == mine and (host / "acme" / "crm.yaml").exists()


def test_diverged_histories_refuse_and_keep_the_host_as_it_was(operator: Path, tmp_path: Path) -> None:
    host = tmp_path / "projects"
    _publish(operator, host, tmp_path)
    service = _commit(host, "acme/crm.yaml", "ref: crm\n", "crm on the host")
    _commit(operator, "acme/shop.yaml", "ref: shop\n", "shop locally")
    action = _publish(operator, host, tmp_path)
    assert action.kind == "refuse" and "crm on the host" in action.message and "shop locally" not in action.message
    assert _head(host) == service and not (host / "acme" / "shop.yaml").exists()


def test_uncommitted_files_on_the_host_refuse(operator: Path, tmp_path: Path) -> None:
    host = tmp_path / "projects"
    _publish(operator, host, tmp_path)
    (host / "acme" / "draft.yaml").write_text("ref: draft\n")
    _commit(operator, "acme/shop.yaml", "ref: shop\n", "shop")
    action = _publish(operator, host, tmp_path)
    assert action.kind == "refuse" and "uncommitted" in action.message and "acme/draft.yaml" in action.message
    assert not (host / "acme" / "shop.yaml").exists()


def test_a_commit_made_between_the_decision_and_the_publish_is_not_overwritten(operator: Path, tmp_path: Path) -> None:
    host = tmp_path / "projects"
    _publish(operator, host, tmp_path)
    _commit(operator, "acme/shop.yaml", "ref: shop\n", "shop")
    source = manifest_source(str(operator))
    action = publish_action(_state(host), str(operator), source.commit, str(host), PULL)
    assert action.kind == "fast_forward"
    service = _commit(host, "acme/crm.yaml", "ref: crm\n", "the service, meanwhile")
    bundle = tmp_path / "b.bundle"
    bundle.write_bytes(source.bundle())
    results = [
        _sh(c) for c in publish.publish_commands(action, str(host), str(bundle), source.commit, "main", "root")
    ]
    failed = next(r for r in results if r.returncode != 0)
    assert "received a commit during the deploy" in failed.stderr
    assert _head(host) == service


def test_an_earlier_release_plain_folder_becomes_the_repository_without_losing_files(
    operator: Path, tmp_path: Path
) -> None:
    host = tmp_path / "projects"
    (host / "acme").mkdir(parents=True)
    (host / "acme" / "org.yaml").write_text("org: acme\n")  # what the earlier release's sync left there
    assert _state(host).kind == "plain"
    assert _publish(operator, host, tmp_path).kind == "convert"
    assert _head(host) == _head(operator) and gitrepo.revision(host) == gitrepo.Revision(_head(operator), False)


def test_a_plain_folder_with_other_files_is_converted_and_the_files_kept(operator: Path, tmp_path: Path) -> None:
    host = tmp_path / "projects"
    (host / "globex").mkdir(parents=True)
    (host / "globex" / "org.yaml").write_text("org: globex\n")
    with pytest.raises(RuntimeError, match="they were kept"):
        _publish(operator, host, tmp_path)
    assert (host / "globex" / "org.yaml").read_text() == "org: globex\n"
    assert (host / "acme" / "org.yaml").read_text() == "org: acme\n"  # only what was missing is written
    assert _state(host).dirty  # the next deploy refuses until someone decides about them
    assert _publish(operator, host, tmp_path).kind == "refuse"


def test_a_source_that_is_not_a_repository_root_says_what_to_do(tmp_path: Path) -> None:
    plain = tmp_path / "manifests"
    plain.mkdir()
    with pytest.raises(ManifestSourceError, match="git init"):
        manifest_source(str(plain))
    repo = tmp_path / "outer"
    repo.mkdir()
    _git(repo, "init", "--quiet")
    _commit(repo, "projects/acme/org.yaml", "org: acme\n", "outer")
    with pytest.raises(ManifestSourceError, match="not the root"):  # like the checkout's projects/
        manifest_source(str(repo / "projects"))
