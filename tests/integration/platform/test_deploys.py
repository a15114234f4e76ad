"""POST /v1/projects/{org}/{ref}/apps/{app}/deploys against a real service, with a stand-in for the host's privileged
command (it records its argv and the archive it was given, prints a log, exits as told): the archive reaches exactly
`deploy ORG/REF APP --archive FILE`, the log streams back as events with the exit code, the file is gone after, and
every refusal comes before anything runs. Then the developer CLI's `nextmavens deploy` from a linked git folder."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from nextmavens.cli import main
from nextmavens.projectlink import LINK_FILE
from tests.integration.platform.harness import PlatformStage, bearer, fake_docker, running_service
from tests.support.projects import write_project

PATH = "/v1/projects/acme/shop/apps/web/deploys"
TAR = {"Content-Type": "application/x-tar"}
STANDIN = """#!{python}
import json, shutil, sys
folder = {folder!r}
argv = sys.argv[1:]
json.dump(argv, open(folder + "/argv.json", "w"))
if "--remove-preview" in argv:
    name = argv[argv.index("--remove-preview") + 1]
    if name == "gone":
        print("Error: acme/shop web: no preview 'gone'", file=sys.stderr)
        sys.exit(1)
    print("removed preview " + name, flush=True)
    sys.exit(0)
shutil.copyfile(argv[argv.index("--archive") + 1], folder + "/received.tar")
print("building release 1", flush=True)
print("  build: static (index.html at the root)", flush=True)
code = int(open(folder + "/exit").read())
print("released" if code == 0 else "release 1 never answered / with 2xx", flush=True)
sys.exit(code)
"""


def events(text: str) -> list[tuple[str, str]]:
    found = []
    for block in text.split("\n\n"):
        fields = [line for line in block.split("\n") if line and not line.startswith(":")]
        if fields:
            name = next((f[7:] for f in fields if f.startswith("event: ")), "message")
            found.append((name, "\n".join(f[6:] for f in fields if f.startswith("data: "))))
    return found


def archive(**files: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return buf.getvalue()


@pytest.fixture(scope="module")
def deploying(platform_stage: PlatformStage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("deploys")
    (folder / "exit").write_text("0")
    program = folder / "fake-sudo"
    program.write_text(STANDIN.format(python=sys.executable, folder=str(folder)))
    program.chmod(0o755)
    write_project(
        platform_stage.stage.projects,
        "acme",
        "shop",
        apps=[{"name": "web", "domains": ["web.acme.test"]}, {"name": "site", "source": "/srv/code/site"}],
    )
    settings = platform_stage.settings(
        privileged_argv=(str(program), "-n", "WRAPPER", "nextmavens"), deploy_max_body_bytes=64 * 1024
    )
    try:
        with running_service(settings) as url:
            yield url, folder
    finally:
        write_project(platform_stage.stage.projects, "acme", "shop")


def test_the_archive_reaches_the_hosts_deploy_and_its_log_streams_back(
    platform_stage: PlatformStage, deploying: tuple[str, Path]
) -> None:
    url, folder = deploying
    body = archive(**{"index.html": "<h1>hi</h1>"})
    answer = httpx.post(f"{url}{PATH}", content=body, headers={**TAR, **bearer(platform_stage, "dev@acme.test")})
    assert answer.status_code == 200, answer.text
    received = events(answer.text)
    assert [data for name, data in received if name == "message"] == [
        "building release 1",
        "  build: static (index.html at the root)",
        "released",
    ]
    assert received[-1] == ("end", '{"reason": "eof", "exit_code": 0}')
    argv = json.loads((folder / "argv.json").read_text())
    assert argv[:7] == ["-n", "WRAPPER", "nextmavens", "deploy", "acme/shop", "web", "--archive"]
    assert (folder / "received.tar").read_bytes() == body
    deadline = time.monotonic() + 5  # removed once the stream ended: just after its last byte
    while Path(argv[7]).parent.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(argv[7]).parent.exists()


def test_a_failed_release_ends_with_its_exit_code(platform_stage: PlatformStage, deploying: tuple[str, Path]) -> None:
    url, folder = deploying
    (folder / "exit").write_text("1")
    try:
        answer = httpx.post(
            f"{url}{PATH}", content=archive(a="b"), headers={**TAR, **bearer(platform_stage, "dev@acme.test")}
        )
    finally:
        (folder / "exit").write_text("0")
    assert events(answer.text)[-1] == ("end", '{"reason": "eof", "exit_code": 1}')


@pytest.mark.parametrize(
    ("path", "member", "scope", "headers", "status", "code"),
    [
        (PATH, "dev@acme.test", {}, {"Content-Type": "application/json"}, 415, "unsupported"),
        ("/v1/projects/acme/shop/apps/api/deploys", "dev@acme.test", {}, TAR, 409, "no_such_app"),
        ("/v1/projects/acme/shop/apps/site/deploys", "dev@acme.test", {}, TAR, 409, "not_upload"),
        (PATH, "dev@acme.test", {"read_only": True}, TAR, 403, "forbidden"),
        ("/v1/projects/globex/web/apps/web/deploys", "dev@acme.test", {}, TAR, 404, "not_found"),
        ("/v1/projects/acme/shop/apps/Web/deploys", "dev@acme.test", {}, TAR, 422, "invalid_request"),
    ],
)
def test_refusals_come_before_anything_runs(
    platform_stage: PlatformStage,
    deploying: tuple[str, Path],
    path: str,
    member: str,
    scope: dict[str, object],
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    url, folder = deploying
    (folder / "argv.json").unlink(missing_ok=True)
    auth = bearer(platform_stage, member, **scope)
    answer = httpx.post(f"{url}{path}", content=archive(a="b"), headers={**headers, **auth})
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    assert not (folder / "argv.json").exists()


def test_an_archive_over_the_bound_is_refused(platform_stage: PlatformStage, deploying: tuple[str, Path]) -> None:
    url, folder = deploying
    (folder / "argv.json").unlink(missing_ok=True)
    big = archive(big="x" * (70 * 1024))
    answer = httpx.post(f"{url}{PATH}", content=big, headers={**TAR, **bearer(platform_stage, "dev@acme.test")})
    assert answer.status_code == 413 and not (folder / "argv.json").exists()


def test_a_preview_reaches_the_hosts_deploy_and_is_removed_through_delete(
    platform_stage: PlatformStage, deploying: tuple[str, Path]
) -> None:
    url, folder = deploying
    auth = bearer(platform_stage, "dev@acme.test")
    answer = httpx.post(f"{url}{PATH}", params={"preview": "pr-1"}, content=archive(a="b"), headers={**TAR, **auth})
    assert events(answer.text)[-1] == ("end", '{"reason": "eof", "exit_code": 0}')
    argv = json.loads((folder / "argv.json").read_text())
    assert argv[3:7] == ["deploy", "acme/shop", "web", "--archive"] and argv[8:] == ["--preview", "pr-1"]
    removed = httpx.delete(f"{url}/v1/projects/acme/shop/apps/web/previews/pr-1", headers=auth)
    assert removed.status_code == 200 and removed.json() == {"app": "web", "preview": "pr-1", "removed": True}
    removal = ["deploy", "acme/shop", "web", "--remove-preview", "pr-1"]
    assert json.loads((folder / "argv.json").read_text())[3:] == removal
    gone = httpx.delete(f"{url}/v1/projects/acme/shop/apps/web/previews/gone", headers=auth)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "no_such_preview"


@pytest.mark.parametrize("name", ["Pr-1", "a--b", "x" * 31, "a.b", "-a"])
def test_a_bad_preview_name_is_refused_before_anything_runs(
    platform_stage: PlatformStage, deploying: tuple[str, Path], name: str
) -> None:
    url, folder = deploying
    (folder / "argv.json").unlink(missing_ok=True)
    auth = bearer(platform_stage, "dev@acme.test")
    answer = httpx.post(f"{url}{PATH}", params={"preview": name}, content=archive(a="b"), headers={**TAR, **auth})
    removed = httpx.delete(f"{url}/v1/projects/acme/shop/apps/web/previews/{name}", headers=auth)
    assert answer.status_code == 422 and removed.status_code in (404, 422)
    assert not (folder / "argv.json").exists()


def test_removing_a_preview_of_another_orgs_project_or_read_only_is_refused(
    platform_stage: PlatformStage, deploying: tuple[str, Path]
) -> None:
    url, folder = deploying
    (folder / "argv.json").unlink(missing_ok=True)
    read_only = bearer(platform_stage, "dev@acme.test", read_only=True)
    assert httpx.delete(f"{url}/v1/projects/acme/shop/apps/web/previews/pr-1", headers=read_only).status_code == 403
    auth = bearer(platform_stage, "dev@acme.test")
    other = httpx.delete(f"{url}/v1/projects/globex/web/apps/web/previews/pr-1", headers=auth)
    assert other.status_code == 404 and not (folder / "argv.json").exists()


def _git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    return subprocess.run(["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def test_the_developer_cli_sends_the_linked_folders_commit(
    platform_stage: PlatformStage, deploying: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, folder = deploying
    monkeypatch.setenv("NEXTMAVENS_URL", url)
    monkeypatch.setenv("NEXTMAVENS_TOKEN", platform_stage.issue("dev@acme.test")[1])
    monkeypatch.chdir(tmp_path)
    _git(tmp_path, "init", "-q")
    (tmp_path / "index.html").write_text("committed")
    (tmp_path / LINK_FILE).parent.mkdir()
    (tmp_path / LINK_FILE).write_text("acme/shop\n")
    _git(tmp_path, "add", "index.html")
    _git(tmp_path, "commit", "-qm", "one")
    (tmp_path / "index.html").write_text("not committed")
    done = CliRunner().invoke(main, ["deploy", "web"])
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines() == ["building release 1", "  build: static (index.html at the root)", "released"]
    assert "uncommitted changes are not deployed" in done.stderr
    with tarfile.open(folder / "received.tar") as tar:
        assert tar.extractfile("index.html").read() == b"committed"  # type: ignore[union-attr]
        assert tar.pax_headers["comment"] == _git(tmp_path, "rev-parse", "HEAD").strip()
        assert ".nextmavens/project" not in tar.getnames()
    (folder / "exit").write_text("1")
    try:
        failed = CliRunner().invoke(main, ["deploy", "acme/shop", "web"])
    finally:
        (folder / "exit").write_text("0")
    assert failed.exit_code == 1 and "still serves" in failed.stderr
    preview = CliRunner().invoke(main, ["deploy", "web", "--preview", "pr-2"])
    assert preview.exit_code == 0, preview.output
    assert json.loads((folder / "argv.json").read_text())[-2:] == ["--preview", "pr-2"]
    removed = CliRunner().invoke(main, ["deploy", "web", "--remove-preview", "pr-2"])
    assert removed.exit_code == 0 and "removed preview 'pr-2'" in removed.stdout, removed.output
    assert json.loads((folder / "argv.json").read_text())[-2:] == ["--remove-preview", "pr-2"]
    refused = CliRunner().invoke(main, ["deploy", "web", "--preview", "Bad;x"])
    assert refused.exit_code != 0 and "preview name" in refused.output


def test_an_apps_log_is_read_through_the_hosts_command(
    platform_stage: PlatformStage, deploying: tuple[str, Path], tmp_path: Path
) -> None:
    headers = bearer(platform_stage, "dev@acme.test")
    logs = "/v1/projects/acme/shop/logs"
    with fake_docker(tmp_path / "prefix", name="fake-sudo") as folder:
        settings = platform_stage.settings(privileged_argv=(str(folder / "fake-sudo"), "-n", "WRAPPER", "nextmavens"))
        with running_service(settings) as url:
            answer = httpx.get(f"{url}{logs}", params={"service": "app:web"}, headers=headers)
            unknown = httpx.get(f"{url}{logs}", params={"service": "app:api"}, headers=headers)
            bad = httpx.get(f"{url}{logs}", params={"service": "app:../x"}, headers=headers)
    assert answer.status_code == 200 and "line 0" in answer.text
    argv = (folder / "argv").read_text().split("\n")[:-1]
    assert argv == ["-n", "WRAPPER", "nextmavens", "container-logs", "acme/shop", "app:web"]
    assert unknown.status_code == 409 and unknown.json()["error"]["code"] == "no_such_service"
    assert bad.status_code == 422
    in_process = httpx.get(f"{platform_stage.url}{logs}", params={"service": "app:web"}, headers=headers)
    assert in_process.status_code == 503 and in_process.json()["error"]["code"] == "logs_unavailable"
