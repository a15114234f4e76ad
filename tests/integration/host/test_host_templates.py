"""Every host template renders with the repository's group data; nginx configs pass a real `nginx -t`
and serve (444 for unknown hosts, ACME files for any name); sshd accepts the hardening drop-in."""

import json
import os
import pwd
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from nextmavens.host.hostdata import HostData
from nextmavens.host.render import template_context
from nextmavens.templates import REPO_ROOT, render
from tests.support.groupdata import group_configs
from tests.support.ports import free_ports

pytestmark = pytest.mark.integration  # real nginx/sshd/PostgreSQL/pyinfra where available

# The edge's templates take the edge's own context and are rendered by tests/unit/edge.
HOST_TEMPLATES = sorted(
    str(p.relative_to(REPO_ROOT))
    for p in (REPO_ROOT / "templates").rglob("*.j2")
    if "systemd" not in p.parts and "edge" not in p.parts
)


@pytest.fixture(params=["sandbox", "production"])
def config(request, tmp_path, monkeypatch) -> HostData:
    return group_configs(tmp_path, monkeypatch)[request.param]


@pytest.mark.parametrize("template", HOST_TEMPLATES)
def test_every_host_template_renders(config: HostData, template: str) -> None:
    text = render(template, **template_context(config))
    assert text.strip() and "{{" not in text and "{%" not in text


def test_systemd_units_render_one_pair_per_timer(config: HostData) -> None:
    context = template_context(config)
    for timer in config.timers:
        service = render("templates/systemd/job.service.j2", **context, timer=timer.model_dump())
        unit = render("templates/systemd/job.timer.j2", **context, timer=timer.model_dump())
        assert f"ExecStart=/opt/nextmavens/bin/nextmavens-env {' '.join(timer.command)}" in service
        assert f"Environment=NEXTMAVENS_ACTOR=timer:{timer.name}\n" in service
        assert f"OnCalendar={timer.on_calendar}" in unit
        assert f"Unit=nextmavens-{timer.name}.service" in unit


def test_daemon_json(config: HostData) -> None:
    daemon = json.loads(render("templates/docker/daemon.json.j2", **template_context(config)))
    assert daemon == {
        "log-driver": "json-file",
        "log-opts": {"max-size": "10m", "max-file": "3"},
        "live-restore": True,
    }


def test_env_wrapper_loads_secrets_without_holding_any(config: HostData) -> None:
    text = render("templates/nextmavens/nextmavens-env.j2", **template_context(config))
    assert ". /etc/nextmavens/secrets.env" in text
    assert 'NEXTMAVENS_DSN="postgresql://postgres:${POSTGRES_PASSWORD}@127.0.0.1:5432/nextmavens"' in text
    # keys rotate and destroy converge the edge from the same manifests apply uses
    assert f"NEXTMAVENS_PROJECTS={config.projects_dir}" in text
    assert "export NEXTMAVENS_DSN NEXTMAVENS_MASTER_KEY NEXTMAVENS_PROJECTS" in text


def _nginx_tree(tmp_path: Path, config: HostData, http_port: int, https_port: int) -> Path:
    """The rendered nginx configuration in a private prefix (the system nginx is never touched)."""
    conf = tmp_path / "nginx"
    for sub in ("conf.d", "sites-enabled", "modules-enabled", "logs"):
        (conf / sub).mkdir(parents=True)
    shutil.copy("/etc/nginx/mime.types", conf / "mime.types")
    webroot = tmp_path / "acme"
    (webroot / ".well-known/acme-challenge").mkdir(parents=True)
    (webroot / ".well-known/acme-challenge/token123").write_text("token123.thumbprint")
    context = template_context(config)
    context.update(
        nginx_conf_dir=str(conf),
        nginx_log_dir=str(conf / "logs"),
        nginx_pid=str(conf / "nginx.pid"),
        nginx_user="root",
        nginx_http_port=http_port,
        nginx_https_port=https_port,
        nginx_acme_webroot=str(webroot),
    )
    (conf / "nginx.conf").write_text(render("templates/nginx/nginx.conf.j2", **context))
    (conf / "conf.d/00-nextmavens-default.conf").write_text(render("templates/nginx/default-server.conf.j2", **context))
    return conf


needs_nginx = pytest.mark.skipif(shutil.which("nginx") is None, reason="apt-get install nginx")


@needs_nginx
def test_rendered_nginx_config_passes_nginx_t(config: HostData, tmp_path: Path) -> None:
    conf = _nginx_tree(tmp_path, config, 80, 443)
    result = subprocess.run(
        ["nginx", "-t", "-p", str(conf), "-c", str(conf / "nginx.conf"), "-e", str(conf / "logs/error.log")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@needs_nginx
def test_default_server_refuses_unknown_hosts_and_answers_acme(config: HostData, tmp_path: Path) -> None:
    http_port, https_port = free_ports(2)
    conf = _nginx_tree(tmp_path, config, http_port, https_port)
    args = ["nginx", "-p", str(conf), "-c", str(conf / "nginx.conf"), "-e", str(conf / "logs/error.log")]
    proc = subprocess.Popen([*args, "-g", "daemon off;"], stderr=subprocess.PIPE)
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", http_port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        acme = f"http://127.0.0.1:{http_port}/.well-known/acme-challenge/token123"
        with urllib.request.urlopen(urllib.request.Request(acme, headers={"Host": "any.example"})) as resp:
            assert resp.read() == b"token123.thumbprint"
        # 444: nginx closes the connection without any response.
        with socket.create_connection(("127.0.0.1", http_port), timeout=2) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: unknown.example\r\n\r\n")
            assert sock.recv(100) == b""
        # TLS for an unknown name: the handshake is rejected, no certificate given away.
        import ssl

        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", https_port), timeout=2) as raw:
            with pytest.raises(ssl.SSLError):
                context.wrap_socket(raw, server_hostname="unknown.example")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _sshd() -> str | None:
    try:
        pwd.getpwnam("sshd")  # sshd -t needs its privilege separation user
    except KeyError:
        return None
    for candidate in (os.environ.get("NEXTMAVENS_TEST_SSHD"), shutil.which("sshd"), "/usr/sbin/sshd"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.mark.skipif(_sshd() is None, reason="needs openssh-server (sshd and its user)")
def test_sshd_accepts_the_hardening_dropin(config: HostData, tmp_path: Path) -> None:
    dropin = tmp_path / "sshd_config.d"
    dropin.mkdir()
    (dropin / "00-nextmavens.conf").write_text(
        render("templates/ssh/00-nextmavens.conf.j2", **template_context(config))
    )
    main = tmp_path / "sshd_config"
    main.write_text(f"Include {dropin}/*.conf\nPasswordAuthentication yes\nPermitRootLogin yes\n")
    key = tmp_path / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    Path("/run/sshd").mkdir(exist_ok=True)
    sshd = _sshd()
    assert sshd
    check = subprocess.run([sshd, "-t", "-f", str(main), "-h", str(key)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    effective = subprocess.run(
        [sshd, "-T", "-f", str(main), "-h", str(key), "-C", "user=root,host=x,addr=127.0.0.1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # The drop-in comes first, so its values win over the main file's.
    assert "passwordauthentication no" in effective
    # sshd -T spells prohibit-password by its older name
    expected = {"no": "no", "prohibit-password": "without-password"}[config.ssh_permit_root_login]
    assert f"permitrootlogin {expected}" in effective
    assert f"port {config.ssh_port}" in effective


def test_prune_only_touches_units_we_rendered(config: HostData, tmp_path: Path) -> None:
    """ManagedUnits lists our job units and never a foreign nextmavens-* unit (e.g. the sandbox's
    nextmavens-sandbox-cgroups.service), found by the marker line our templates write."""
    from nextmavens.host.facts import ManagedUnits
    from tasks.app import JOB_UNIT_MARKER

    timer = config.timers[0].model_dump()
    context = template_context(config)
    units = tmp_path / "system"
    units.mkdir()
    for kind in ("service", "timer"):
        text = render(f"templates/systemd/job.{kind}.j2", **context, timer=timer)
        assert text.splitlines()[0] == JOB_UNIT_MARKER
        (units / f"nextmavens-{timer['name']}.{kind}").write_text(text)
    (units / "nextmavens-sandbox-cgroups.service").write_text("[Service]\nType=oneshot\n")
    command = ManagedUnits().command(prefix="nextmavens-", marker=JOB_UNIT_MARKER)
    command = command.replace("cd /etc/systemd/system", f"cd {units}")
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    assert ManagedUnits().process(output.splitlines()) == [
        f"nextmavens-{timer['name']}.service",
        f"nextmavens-{timer['name']}.timer",
    ]
