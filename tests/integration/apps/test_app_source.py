"""An app's source: an uploaded archive is unpacked only when every entry stays inside (no absolute path, no
`..`, no link out, no device), bounded in size and count; a host path's commit is archived without its
uncommitted changes; the commit a `git archive` records is read back."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from nextmavens.apps import source as sources
from nextmavens.apps.source import SourceError, archive_commit, archive_path, extract_archive, read_source


def tar_of(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buf.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    return info


@pytest.mark.parametrize(
    ("member", "fragment"),
    [
        (entry("/etc/cron.d/x"), "absolute path"),
        (entry("../outside"), "'..'"),
        (entry("a/../../outside"), "'..'"),
        (entry("link", tarfile.SYMTYPE, "/etc/passwd"), "link out of the source"),
        (entry("a/link", tarfile.SYMTYPE, "../../etc"), "link out of the source"),
        (entry("hard", tarfile.LNKTYPE, "../x"), "link out of the source"),
        (entry("dev", tarfile.CHRTYPE), "device, FIFO"),
        (entry("fifo", tarfile.FIFOTYPE), "device, FIFO"),
    ],
)
def test_unsafe_entries_are_refused_and_nothing_is_written(tmp_path: Path, member, fragment: str) -> None:
    data = tar_of((entry("ok.txt"), b"fine"), (member, b"bad"))
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(SourceError, match=fragment):
        extract_archive(data, target)
    assert list(target.iterdir()) == []
    assert not (tmp_path / "outside").exists()


def test_a_link_inside_the_source_is_kept(tmp_path: Path) -> None:
    data = tar_of(
        (entry("dir/", tarfile.DIRTYPE), b""),
        (entry("dir/a.txt"), b"A"),
        (entry("b", tarfile.SYMTYPE, "dir/a.txt"), b""),
    )
    extract_archive(data, tmp_path)
    assert (tmp_path / "b").read_text() == "A"


def test_bounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "MAX_MEMBERS", 3)
    with pytest.raises(SourceError, match="more than 3 entries"):
        extract_archive(tar_of(*[(entry(f"f{i}"), b"x") for i in range(4)]), tmp_path)
    monkeypatch.setattr(sources, "MAX_UNPACKED_BYTES", 10)
    with pytest.raises(SourceError, match="unpacks to more than"):
        extract_archive(tar_of((entry("big"), b"x" * 11)), tmp_path)
    monkeypatch.setattr(sources, "MAX_ARCHIVE_BYTES", 10)
    with pytest.raises(SourceError, match="larger than"):
        extract_archive(b"y" * 11, tmp_path)
    with pytest.raises(SourceError, match="not a tar archive"):
        extract_archive(b"not a tar", tmp_path)


def _git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    return subprocess.run(["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def test_a_host_paths_commit_without_uncommitted_changes(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "index.html").write_text("committed")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "one")
    (repo / "index.html").write_text("uncommitted")
    (repo / "new.txt").write_text("untracked")
    out = tmp_path / "out"
    out.mkdir()
    commit = archive_path(repo, None, out)
    assert commit == _git(repo, "rev-parse", "HEAD").strip()
    assert (out / "index.html").read_text() == "committed" and not (out / "new.txt").exists()
    assert read_source(out).names == frozenset({"index.html"})
    with pytest.raises(SourceError, match="git rev-parse failed"):
        archive_path(repo, "no-such-branch", tmp_path / "x")


def test_the_commit_of_an_uploaded_git_archive(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a").write_text("a")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "one")
    data = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=repo, capture_output=True, check=True).stdout
    assert archive_commit(data) == _git(repo, "rev-parse", "HEAD").strip()
    assert archive_commit(tar_of((entry("a"), b"a"))).startswith("upload-")
