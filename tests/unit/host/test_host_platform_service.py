"""The platform service's host files rendered from the repository's group data: the unprivileged unit, the
root-owned apply unit, the one root command and the sudoers rule allowing exactly it (checked by the real
`visudo` where installed), and that command's behaviour with a stand-in `systemctl`."""

from __future__ import annotations

import inspect
import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from nextmavens.host.hostdata import HostData
from nextmavens.host.operations import postgres_database, postgres_login_role
from nextmavens.host.platformservice import (
    APPLY_RESULT,
    INBOUND_EMAIL_SECRET,
    PGPASS_SECRET,
    email_environment,
    email_secret_files,
    evolution_key_file,
    master_key_copy,
    pgpass_file,
    pgpass_prefix,
    privileged_prefix,
    root_cloudinary_key,
)
from nextmavens.host.render import template_context
from nextmavens.naming import PLATFORM_ROLE
from nextmavens.templates import render
from tasks.stacks import shared_postgres_admin, wanted_secrets
from tests.support.groupdata import group_configs
from tests.support.localnginx import need

# systemd implies NoNewPrivileges=yes for a unit with User= and any of these: sudo (setuid) would then fail.
IMPLIES_NO_NEW_PRIVILEGES = (
    "NoNewPrivileges=yes",
    "SystemCallFilter",
    "SystemCallArchitectures",
    "RestrictAddressFamilies",
    "RestrictNamespaces",
    "PrivateDevices",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectClock",
    "MemoryDenyWriteExecute",
    "RestrictRealtime",
    "RestrictSUIDSGID",
    "DynamicUser",
    "LockPersonality",
)


@pytest.fixture(params=["sandbox", "production"])
def config(request, tmp_path, monkeypatch) -> HostData:
    return group_configs(tmp_path, monkeypatch)[request.param]


def directives(text: str) -> list[tuple[str, str]]:
    pairs = []
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            pairs.append((key, value))
    return pairs


def test_the_service_runs_unprivileged_with_only_what_it_needs(config: HostData) -> None:
    text = render("templates/systemd/platform.service.j2", **template_context(config))
    settings = directives(text)
    values = dict(settings)
    assert values["User"] == values["Group"] == config.platform_user
    assert values["ExecStart"] == f"{config.platform_dir}/venv/bin/nextmavens platform serve"
    assert values["Restart"] == "on-failure"
    assert values["ProtectSystem"] == "strict" and values["PrivateTmp"] == "yes" and values["ProtectHome"] == "yes"
    assert [v for k, v in settings if k == "ReadWritePaths"] == [config.projects_dir]  # the manifest repository only
    assert not [k for k, _ in settings if k.startswith(IMPLIES_NO_NEW_PRIVILEGES)]
    assert not [k for k, _ in settings if k == "LoadCredential"]  # systemd's ACL on them reads as group access
    environment = dict(v.strip('"').split("=", 1) for k, v in settings if k == "Environment")
    port = config.loopback_ports
    studio = {name for name in environment if name.startswith("NEXTMAVENS_PLATFORM_STUDIO_")}  # the test below
    assert {name: value for name, value in environment.items() if name not in studio} == {
        "NEXTMAVENS_DSN": f"postgresql://{PLATFORM_ROLE}@127.0.0.1:{port.postgres}/nextmavens"
        f"?passfile=/etc/{config.platform_user}/pgpass",
        "NEXTMAVENS_MASTER_KEY": f"/etc/{config.platform_user}/master.key",
        "NEXTMAVENS_PROJECTS": config.projects_dir,
        "NEXTMAVENS_API_DOMAIN": config.api_domain,
        "NEXTMAVENS_PLATFORM_LISTEN": f"127.0.0.1:{port.platform}",
        "NEXTMAVENS_PLATFORM_PRIVILEGED": shlex.join(privileged_prefix(config)),
        "NEXTMAVENS_EVOLUTION_URL": f"http://127.0.0.1:{port.evolution}",
        "NEXTMAVENS_EVOLUTION_KEY_FILE": f"/etc/{config.platform_user}/evolution.key",
        # postgres-meta, for TypeScript types (and Studio's meta gate): its loopback port, never a public name
        "NEXTMAVENS_PLATFORM_POSTGRES_META_URL": f"http://127.0.0.1:{port.postgres_meta}",
    }
    # the connection sent to postgres-meta per request is sealed with its key, the service's 0600 copy
    assert environment["NEXTMAVENS_PLATFORM_STUDIO_META_KEY_FILE"] == f"/etc/{config.platform_user}/pg-meta.key"
    assert environment["NEXTMAVENS_PLATFORM_STUDIO_DB_ADDRESS"] == "nextmavens-postgres:5432"
    # what the service splits it into (`platform serve --privileged` takes shell words)
    assert shlex.split(environment["NEXTMAVENS_PLATFORM_PRIVILEGED"]) == privileged_prefix(config)
    assert "POSTGRES_PASSWORD" not in text and "EVOLUTION_API_KEY" not in text and config.secrets_file not in text
    assert "PLATFORM_DB_PASSWORD" not in text
    assert not environment["NEXTMAVENS_DSN"].startswith(f"postgresql://{config.postgres_admin_user}@")


def test_the_pgpass_line_names_the_loopback_server_and_the_services_own_role(config: HostData) -> None:
    port = config.loopback_ports.postgres
    assert pgpass_prefix(config) == f"127.0.0.1:{port}:*:nextmavens_platform:"
    assert PGPASS_SECRET == "PLATFORM_DB_PASSWORD" and PGPASS_SECRET in wanted_secrets()  # generated on the host
    # the service's own folder: the secrets file's folder is root's alone (0700)
    assert pgpass_file(config) == f"/etc/{config.platform_user}/pgpass"
    assert master_key_copy(config) == f"/etc/{config.platform_user}/master.key"
    assert evolution_key_file(config) == f"/etc/{config.platform_user}/evolution.key"


def test_the_login_roles_and_databases_are_made_as_the_shared_postgres_admin(config: HostData) -> None:
    """tasks/platform.py (the service's and the collector's login roles) and tasks/stacks.py (the stacks' databases)
    reach the shared Postgres one way: its admin inside its container, the password named, never written."""
    admin = shared_postgres_admin(config)
    assert admin == {
        "container": "nextmavens-postgres",
        "admin_user": config.postgres_admin_user,
        "secrets_path": config.secrets_file,
        "admin_password_env": "POSTGRES_PASSWORD",
    }
    for operation in (postgres_login_role, postgres_database):
        assert set(admin) <= set(inspect.signature(operation).parameters), operation


def test_the_apply_unit_is_roots_and_answers_in_json(config: HostData) -> None:
    values = dict(directives(render("templates/systemd/platform-apply.service.j2", **template_context(config))))
    assert "User" not in values and values["Type"] == "oneshot"
    assert values["ExecStart"] == f"{config.platform_dir}/bin/nextmavens-env nextmavens apply --yes --json"
    assert values["StandardOutput"] == f"truncate:{APPLY_RESULT}" and values["UMask"] == "0077"


def test_the_sudoers_rule_allows_its_six_commands_alone(config: HostData, tmp_path: Path) -> None:
    text = render("templates/sudoers/platform.j2", **template_context(config))
    command = privileged_prefix(config)[-1]
    rules = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert rules == [
        f"{config.platform_user} ALL=(root) NOPASSWD: {command} apply --yes --json, {command} container-logs *, "
        f"{command} deploy *, {command} domains *, {command} studio *, {command} releases *"
    ]
    visudo = need("visudo")  # scripts/bootstrap installs sudo; the deploy checks the file with it on the host
    staged = tmp_path / "platform"
    staged.write_text(text)
    checked = subprocess.run([visudo, "-cf", str(staged)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def privileged_script(config: HostData, tmp_path: Path, unit_exit: int, answer: str) -> tuple[Path, dict[str, str]]:
    """The root command rendered with its answer file in tmp_path, and a PATH whose `systemctl` is a stand-in that
    writes `answer` there (as the apply unit's StandardOutput does) and exits `unit_exit`."""
    result = tmp_path / "apply.json"
    context = {**template_context(config), "platform_apply_result": str(result)}
    script = tmp_path / "nextmavens-privileged"
    script.write_text(render("templates/nextmavens/nextmavens-privileged.j2", **context))
    script.chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "systemctl.log"
    stand_in = bin_dir / "systemctl"
    stand_in.write_text(
        f'#!/bin/sh\necho "$@" >> {shlex.quote(str(log))}\n'
        f"printf '%s' {shlex.quote(answer)} > {shlex.quote(str(result))}\nexit {unit_exit}\n"
    )
    stand_in.chmod(0o755)
    return script, {"PATH": f"{bin_dir}:/usr/bin:/bin"}


def test_the_root_command_starts_the_apply_unit_and_prints_its_answer(config: HostData, tmp_path: Path) -> None:
    answer = json.dumps({"run": 3, "result": "ok", "changes": [], "notices": [], "errors": []})
    script, env = privileged_script(config, tmp_path, 0, answer)
    done = subprocess.run([str(script), "apply", "--yes", "--json"], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and json.loads(done.stdout)["run"] == 3
    assert (tmp_path / "systemctl.log").read_text() == "start nextmavens-platform-apply.service\n"
    failed = json.dumps({"result": "failed", "error": {"kind": "busy", "problems": ["held"]}})
    (tmp_path / "again").mkdir()
    script, env = privileged_script(config, tmp_path / "again", 3, failed)
    done = subprocess.run([str(script), "apply", "--yes", "--json"], capture_output=True, text=True, env=env)
    assert done.returncode == 3 and json.loads(done.stdout)["error"]["kind"] == "busy"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["apply"],
        ["apply", "--yes"],
        ["apply", "--json", "--yes"],
        ["apply", "--yes", "--json", "x"],
        ["sh"],
        ["deploy", "acme/shop", "web"],
        ["deploy", "acme/shop", "web", "--archive"],
        ["deploy", "acme/shop", "web", "--ref", "x"],
        ["deploy", "acme/shop", "web", "--archive", "f", "x"],
        ["deploy", "acme/shop", "web", "--archive", "f", "--preview"],
        ["deploy", "acme/shop", "web", "--archive", "f", "--ref", "x"],
        ["deploy", "acme/shop", "web", "--remove-preview"],
        ["deploy", "acme/shop", "web", "--remove-preview", "pr-1", "x"],
        ["deploy", "acme/shop", "web", "--preview", "pr-1"],
        # an option where ORG/REF or APP stands would take the next word as its value: root's edge settings or
        # manifests read from a file the caller names (`--remove-preview` in its folder)
        ["deploy", "acme/shop", "--edge-config", "--remove-preview", "web"],
        ["deploy", "acme/shop", "--projects", "--remove-preview", "web"],
        ["deploy", "--projects=/tmp/x", "web", "--remove-preview", "pr-1"],
        ["deploy", "acme/shop", "--edge-config", "--archive", "f", "--preview", "web"],
        ["releases", "acme/shop", "--edge-config=/tmp/x", "--json"],
        ["releases", "--projects=/tmp/x", "web", "--json"],
        ["releases", "acme/shop", "web"],
        ["releases", "acme/shop", "web", "--json", "x"],
        ["releases", "acme/shop", "web", "--projects"],
        ["domains", "acme/shop"],
        ["domains", "acme/shop", "--text"],
        ["domains", "acme/shop", "--json", "--edge-config", "/etc/passwd"],
        ["domains", "--edge-config=/tmp/x", "--json"],
        ["studio"],
        ["studio", "start"],
        ["studio", "stop"],
        ["studio", "list", "shop"],
        ["studio", "start", "shop", "x"],
        ["studio", "exec", "shop"],
    ],
)
def test_the_root_command_refuses_any_other_shape(config: HostData, tmp_path: Path, argv: list[str]) -> None:
    script, env = privileged_script(config, tmp_path, 0, "{}")
    done = subprocess.run([str(script), *argv], capture_output=True, text=True, env=env)
    assert done.returncode == 64 and done.stdout == ""
    assert not (tmp_path / "systemctl.log").exists()


def test_the_root_command_builds_no_archive_the_service_could_not_read(config: HostData, tmp_path: Path) -> None:
    """A deploy's archive must belong to the service's user: root never builds a file of someone else's."""
    script, env = privileged_script(config, tmp_path, 0, "{}")
    archive = tmp_path / "source.tar"
    archive.write_bytes(b"x")  # owned by the test's user, not the platform's
    done = subprocess.run(
        [str(script), "deploy", "acme/shop", "web", "--archive", str(archive)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 77 and "must be a file of" in done.stderr


def host_command_stand_in(config: HostData, tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    """The root command rendered for the test's own user, its `nextmavens-env` a stand-in that logs its argv and the
    archive's first bytes (what root would build)."""
    import getpass

    context = {**template_context(config), "platform_dir": str(tmp_path), "platform_user": getpass.getuser()}
    script = tmp_path / "nextmavens-privileged"
    script.write_text(render("templates/nextmavens/nextmavens-privileged.j2", **context))
    script.chmod(0o755)
    (tmp_path / "bin").mkdir()
    log = tmp_path / "env.log"
    env_stand_in = tmp_path / "bin" / "nextmavens-env"
    env_stand_in.write_text(
        f'#!/bin/sh\necho "$@" >> {shlex.quote(str(log))}\n'
        f'[ -e /dev/fd/3 ] && head -c 5 /dev/fd/3 >> {shlex.quote(str(log))}\nexit 0\n'
    )
    env_stand_in.chmod(0o755)
    return script, {"PATH": "/usr/bin:/bin"}, log


def test_the_root_command_passes_a_preview_and_its_removal_through(config: HostData, tmp_path: Path) -> None:
    script, env, log = host_command_stand_in(config, tmp_path)
    archive = tmp_path / "source.tar"
    archive.write_bytes(b"tar..")
    argv = [str(script), "deploy", "acme/shop", "web", "--archive", str(archive), "--preview", "pr-7"]
    assert subprocess.run(argv, capture_output=True, text=True, env=env).returncode == 0
    argv = [str(script), "deploy", "acme/shop", "web", "--remove-preview", "pr-7"]
    assert subprocess.run(argv, capture_output=True, text=True, env=env).returncode == 0
    argv = [str(script), "releases", "acme/shop", "web", "--json"]
    assert subprocess.run(argv, capture_output=True, text=True, env=env).returncode == 0
    assert log.read_text().splitlines() == [
        "nextmavens deploy acme/shop web --archive /dev/fd/3 --preview pr-7",
        "tar..nextmavens deploy acme/shop web --remove-preview pr-7",
        "nextmavens releases acme/shop web --json",
    ]


@pytest.mark.parametrize("kind", ["fifo", "symlink", "folder"])
def test_the_root_command_never_opens_an_archive_that_is_not_a_regular_file(
    config: HostData, tmp_path: Path, kind: str
) -> None:
    """Opening a FIFO as root would block, a device could act: the path is checked before it is opened."""
    script, env, log = host_command_stand_in(config, tmp_path)
    archive = tmp_path / "source.tar"
    if kind == "fifo":
        os.mkfifo(archive)
    elif kind == "symlink":
        (tmp_path / "real.tar").write_bytes(b"tar..")
        archive.symlink_to(tmp_path / "real.tar")
    else:
        archive.mkdir()
    argv = [str(script), "deploy", "acme/shop", "web", "--archive", str(archive)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 77 and "must be a regular file" in done.stderr
    assert not log.exists()


def test_an_earlier_answer_never_stands_for_a_unit_that_did_not_run(config: HostData, tmp_path: Path) -> None:
    """A unit that fails to start writes no answer: the one left by the run before must not be printed as this one's."""
    script, env = privileged_script(config, tmp_path, 1, "")
    (tmp_path / "bin" / "systemctl").write_text("#!/bin/sh\nexit 1\n")  # the unit never starts: no answer written
    (tmp_path / "apply.json").write_text(json.dumps({"run": 1, "result": "ok", "changes": []}))
    done = subprocess.run([str(script), "apply", "--yes", "--json"], capture_output=True, text=True, env=env)
    assert done.returncode == 1 and done.stdout == ""


def test_the_service_runs_studio_for_a_project_where_group_data_names_its_domain(tmp_path, monkeypatch) -> None:
    """Production names project_studio_domain: the unit gives the service the Studio name, postgres-meta's key file
    (the 0600 copy the deploy writes), the database as postgres-meta reaches it and the cap and idle time; the
    sandbox names none and its unit says nothing of Studio."""
    from nextmavens.host.platformservice import META_KEY_SECRET, meta_key_file

    configs = group_configs(tmp_path, monkeypatch)
    config = configs["production"]
    unit = directives(render("templates/systemd/platform.service.j2", **template_context(config)))
    production = dict(unit)
    environment = [value for key, value in unit if key == "Environment"]
    assert f"NEXTMAVENS_PLATFORM_STUDIO_URL=https://{config.studio_domain}" in environment
    assert f"NEXTMAVENS_PLATFORM_STUDIO_META_KEY_FILE={meta_key_file(config)}" in environment
    assert meta_key_file(config) == f"/etc/{config.platform_user}/pg-meta.key"
    assert META_KEY_SECRET == "PG_META_CRYPTO_KEY"
    assert "NEXTMAVENS_PLATFORM_STUDIO_DB_ADDRESS=nextmavens-postgres:5432" in environment
    assert f"NEXTMAVENS_PLATFORM_STUDIO_MAX_RUNNING={config.project_studio_max_running}" in environment
    assert f"NEXTMAVENS_PLATFORM_STUDIO_IDLE_MINUTES={config.project_studio_idle_minutes}" in environment
    assert "NEXTMAVENS_PLATFORM_STUDIO_UPSTREAMS" not in "".join(environment)  # started on demand, never fixed
    assert production["ExecStart"].endswith("nextmavens platform serve")
    sandbox = render("templates/systemd/platform.service.j2", **template_context(configs["sandbox"]))
    studio_only = ("STUDIO_URL", "STUDIO_MAX_RUNNING", "STUDIO_IDLE_MINUTES")
    assert not [name for name in studio_only if name in sandbox]  # the sandbox names no Studio for projects


BASE_ENVIRONMENT = {
    "NEXTMAVENS_DSN", "NEXTMAVENS_MASTER_KEY", "NEXTMAVENS_PROJECTS", "NEXTMAVENS_API_DOMAIN",
    "NEXTMAVENS_PLATFORM_LISTEN", "NEXTMAVENS_PLATFORM_PRIVILEGED", "NEXTMAVENS_EVOLUTION_URL",
    "NEXTMAVENS_EVOLUTION_KEY_FILE", "NEXTMAVENS_PLATFORM_POSTGRES_META_URL",
}  # fmt: skip


def unit_context(config: HostData, present: list[str]) -> dict:
    """The unit's context as tasks/platform.py builds it when the secrets file holds the keys `present`."""
    return {**template_context(config), "platform_email_environment": email_environment(config, present)}


def unit_environment(text: str) -> dict[str, str]:
    """The unit's variables but Studio for a project's (production names them; tested above)."""
    found = dict(v.strip('"').split("=", 1) for k, v in directives(text) if k == "Environment")
    return {name: value for name, value in found.items() if not name.startswith("NEXTMAVENS_PLATFORM_STUDIO_")}


def test_email_secrets_are_copied_and_named_only_once_the_secrets_file_holds_them(config: HostData) -> None:
    """Issue 17: each email/media secret the secrets file holds becomes the service's own 0600 copy, named in its
    unit by the variable the service reads; the generated inbound secret is always there; values never in the unit."""
    own = f"/etc/{config.platform_user}"
    assert INBOUND_EMAIL_SECRET in wanted_secrets()  # generated on the host like the service's database password
    text = render("templates/systemd/platform.service.j2", **template_context(config))
    assert "CLOUDINARY" not in text and "RESEND" not in text and "INBOUND" not in text  # nothing named by default
    generated = unit_context(config, [INBOUND_EMAIL_SECRET])
    env = unit_environment(render("templates/systemd/platform.service.j2", **generated))
    email = {k: v for k, v in env.items() if k not in BASE_ENVIRONMENT}
    assert email == {"NEXTMAVENS_INBOUND_EMAIL_SECRET_FILE": f"{own}/inbound-email.secret"}
    every = ["RESEND_API_KEY", "RESEND_WEBHOOK_SECRET", INBOUND_EMAIL_SECRET, "CLOUDINARY_KEY", "POSTGRES_PASSWORD"]
    text = render("templates/systemd/platform.service.j2", **unit_context(config, every))
    email = {k: v for k, v in unit_environment(text).items() if k not in BASE_ENVIRONMENT}
    expected = {
        "NEXTMAVENS_RESEND_KEY_FILE": f"{own}/resend.key",
        "NEXTMAVENS_RESEND_WEBHOOK_SECRET_FILE": f"{own}/resend-webhook.secret",
        "NEXTMAVENS_INBOUND_EMAIL_SECRET_FILE": f"{own}/inbound-email.secret",
    }
    if config.cloudinary_cloud is not None:  # the sandbox names a cloud; production only from its environment
        expected["NEXTMAVENS_CLOUDINARY_KEY_FILE"] = f"{own}/cloudinary.key"
        expected["NEXTMAVENS_CLOUDINARY_CLOUD"] = config.cloudinary_cloud
    assert email == expected
    # the deploy copies exactly these keys into exactly these files (POSTGRES_PASSWORD is not the service's)
    files = email_secret_files(config, every)
    assert files == {
        f"{own}/resend.key": "RESEND_API_KEY",
        f"{own}/resend-webhook.secret": "RESEND_WEBHOOK_SECRET",
        f"{own}/inbound-email.secret": INBOUND_EMAIL_SECRET,
        **({f"{own}/cloudinary.key": "CLOUDINARY_KEY"} if config.cloudinary_cloud is not None else {}),
    }
    for key in every:
        assert f"{key}=" not in text  # names of files, never a secrets-file line


def test_cloudinary_needs_both_the_cloud_name_and_the_key(config: HostData) -> None:
    without_cloud = config.model_copy(update={"cloudinary_cloud": None})
    assert "NEXTMAVENS_CLOUDINARY_KEY_FILE" not in email_environment(without_cloud, ["CLOUDINARY_KEY"])
    assert email_secret_files(without_cloud, ["CLOUDINARY_KEY"]) == {}
    with_cloud = config.model_copy(update={"cloudinary_cloud": "acme"})
    assert email_environment(with_cloud, []) == {}
    assert email_environment(with_cloud, ["CLOUDINARY_KEY"]) == {
        "NEXTMAVENS_CLOUDINARY_CLOUD": "acme",
        "NEXTMAVENS_CLOUDINARY_KEY_FILE": f"/etc/{config.platform_user}/cloudinary.key",
    }


@pytest.mark.parametrize("copied", [True, False])
def test_the_wrapper_names_roots_cloudinary_copy_for_the_jobs(config: HostData, tmp_path: Path, copied: bool) -> None:
    """The nextmavens-env wrapper (every timer, media-offload and storage-monitor included) exports the Cloudinary
    variables once root's 0600 copy exists, and nothing of Cloudinary before it; run for real with sh."""
    secrets = tmp_path / "secrets.env"
    secrets.write_text("POSTGRES_PASSWORD=pw\n")
    key = tmp_path / "cloudinary.key"
    if copied:
        key.write_text("k:s\n")
        key.chmod(0o600)
    context = {
        **template_context(config.model_copy(update={"cloudinary_cloud": "acme"})),
        "secrets_file": str(secrets),
        "root_cloudinary_key": str(key),
    }
    wrapper = tmp_path / "nextmavens-env"
    wrapper.write_text(render("templates/nextmavens/nextmavens-env.j2", **context))
    wrapper.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run([str(wrapper), "env"], capture_output=True, text=True, check=True, env=env).stdout
    seen = dict(line.split("=", 1) for line in out.splitlines() if line.startswith("NEXTMAVENS_CLOUDINARY"))
    named = {"NEXTMAVENS_CLOUDINARY_CLOUD": "acme", "NEXTMAVENS_CLOUDINARY_KEY_FILE": str(key)}
    assert seen == (named if copied else {})
    assert root_cloudinary_key(config) == f"{config.secrets_file.rsplit('/', 1)[0]}/cloudinary.key"
