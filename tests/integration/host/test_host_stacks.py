"""Rendered stacks. This machine has no compose v2 (Debian 12 ships docker-compose 1.29 and no
docker-compose-plugin), so the rendered YAML is validated against a strict model of the compose keys
we use; the real `docker compose config` runs in the sandbox e2e (and before every `up -d`)."""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Annotated, Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from nextmavens.host.evolutionhooks import host_hooks_route
from nextmavens.host.hostdata import HostData
from nextmavens.host.render import load_stack, render_stack, template_context
from nextmavens.upstream.facts import pinned
from tasks.stacks import STACKS, wanted_secrets
from tests.support.groupdata import group_configs
from tests.support.repo import REPO

pytestmark = pytest.mark.integration  # real nginx/sshd/PostgreSQL/pyinfra where available

LOOPBACK_PORT = r"^127\.0\.0\.1:[0-9]{1,5}:[0-9]{1,5}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Healthcheck(Strict):
    test: list[str]
    interval: str
    timeout: str
    retries: int


class ServiceNetwork(Strict):
    ipv4_address: str | None = None


class Service(Strict):
    image: str
    pull_policy: Literal["missing", "never", "always"]
    container_name: Annotated[str, Field(pattern=r"^nextmavens-[a-z]+$")]
    restart: Literal["unless-stopped"]
    command: list[str] | None = None
    environment: dict[str, str] | None = None
    env_file: list[str] | None = None
    ports: list[Annotated[str, Field(pattern=LOOPBACK_PORT)]] | None = None
    volumes: list[str] | None = None
    healthcheck: Healthcheck | None = None
    mem_limit: Annotated[str, Field(pattern=r"^[0-9]+m$")] | None = None
    shm_size: str | None = None
    labels: dict[str, str] | None = None
    # only the host itself, at its address on the hooks network (Evolution posts webhooks to the host's nginx)
    extra_hosts: list[Annotated[str, Field(pattern=r"^host\.docker\.internal:[0-9.]+$")]] | None = None
    networks: dict[Literal["default", "hooks"], ServiceNetwork] | None = None


class Network(Strict):
    name: str
    external: Literal[True]


class ComposeFile(Strict):
    name: str
    services: dict[str, Service]
    volumes: dict[str, dict] | None = None
    networks: dict[Literal["default", "hooks"], Network]


def _compose(config: HostData, stack: str) -> tuple[ComposeFile, dict[str, str]]:
    files = render_stack(stack, template_context(config))
    raw = yaml.safe_load(files["compose.yaml"])
    raw = {k: v for k, v in raw.items() if not k.startswith("x-")}  # YAML anchors, merged already
    return ComposeFile.model_validate(raw), files


@pytest.fixture(params=["sandbox", "production"])
def config(request, tmp_path, monkeypatch) -> HostData:
    return group_configs(tmp_path, monkeypatch)[request.param]


@pytest.mark.parametrize("stack", STACKS)
def test_compose_strict_model_without_compose_v2(config: HostData, stack: str) -> None:
    compose, _ = _compose(config, stack)
    assert compose.name == load_stack(stack)["project"]
    assert compose.networks["default"].name == config.docker_network
    assert set(compose.networks) == ({"default", "hooks"} if stack == "evolution" else {"default"})
    for service in compose.services.values():
        assert service.pull_policy == config.image_pull_policy
        assert service.image in config.images.model_dump().values()


@pytest.mark.parametrize("stack", STACKS)
def test_every_interpolated_variable_is_a_generated_secret(config: HostData, stack: str) -> None:
    _, files = _compose(config, stack)
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)(?::\?[^}]*)?\}", files["compose.yaml"]))
    assert used and used <= set(wanted_secrets())
    # No literal secret value: every password-like key is interpolated.
    for line in files["compose.yaml"].splitlines():
        if re.search(r"(PASSWORD|SECRET|API_KEY|ENC_KEY|CRYPTO_KEY|TOKEN)\w*:", line) and "${" not in line:
            pytest.fail(f"literal secret-like setting: {line.strip()}")


def test_published_ports_are_loopback_only(config: HostData) -> None:
    published = []
    for stack in STACKS:
        compose, _ = _compose(config, stack)
        for service in compose.services.values():
            published += service.ports or []
    assert published and all(port.startswith("127.0.0.1:") for port in published)
    hosts = [int(port.split(":")[1]) for port in published]
    assert len(hosts) == len(set(hosts)), "two services publish the same host port"


def test_supabase_shared_services(config: HostData) -> None:
    compose, _ = _compose(config, "supabase")
    assert set(compose.services) == {"db", "kong", "realtime", "supavisor", "meta", "studio"}
    kong = compose.services["kong"].environment or {}
    assert kong["KONG_NGINX_WORKER_PROCESSES"] == "2" and kong["KONG_DATABASE"] == "off"
    assert compose.services["db"].image == config.images.postgres


def test_analytics_only_when_enabled(config: HostData) -> None:
    enabled = config.model_copy(update={"supabase_analytics_enabled": True})
    compose, _ = _compose(enabled, "supabase")
    assert {"analytics", "vector"} <= set(compose.services)


def test_redis_password_and_append_only(config: HostData) -> None:
    compose, _ = _compose(config, "redis")
    redis = compose.services["redis"]
    script = " ".join(redis.command or [])
    assert "requirepass" in script and "--appendonly yes" in script
    assert "$$REDIS_PASSWORD" in script  # read inside the container, never rendered
    assert redis.ports is None  # only the platform network reaches Redis


def test_evolution_sets_every_setting_explicitly(config: HostData) -> None:
    compose, _ = _compose(config, "evolution")
    env = compose.services["evolution"].environment or {}
    assert compose.services["evolution"].env_file is None  # inlined: see render_stack
    assert env["TELEMETRY_ENABLED"] == "false"
    assert env["AUTHENTICATION_EXPOSE_IN_FETCH_INSTANCES"] == "false"
    assert env["DATABASE_SAVE_DATA_INSTANCE"] == "true"
    assert env["DATABASE_PROVIDER"] == "postgresql"
    assert env["CACHE_REDIS_ENABLED"] == "true" and env["CACHE_REDIS_SAVE_INSTANCES"] == "false"
    assert env["DEL_INSTANCE"] == "false" and env["WEBHOOK_GLOBAL_ENABLED"] == "false"
    assert env["TZ"] == "UTC" and env["LOG_BAILEYS"] == "error"
    events = [k for k in env if k.startswith("WEBHOOK_EVENTS_") and not k.endswith("_WEBHOOK")]
    # every webhook event variable the pinned Evolution reads (nextmavens/upstream/facts.py) is set, and off
    read = {k for k in pinned("evolution").env if k.startswith("WEBHOOK_EVENTS_") and not k.endswith("_WEBHOOK")}
    assert set(events) == read and all(env[k] == "false" for k in events)
    secret_env = env
    assert secret_env["AUTHENTICATION_API_KEY"].startswith("${EVOLUTION_API_KEY:?")
    assert "@nextmavens-postgres:5432/evolution?schema=evolution_api" in secret_env["DATABASE_CONNECTION_URI"]
    assert secret_env["CACHE_REDIS_URI"].startswith("redis://:${REDIS_PASSWORD:?}@nextmavens-redis:6379/")
    assert config.images.evolution in {"evoapicloud/evolution-api:v2.3.7", "nextmavens-local/standin:1"}


# Evolution 2.3.7's webhook retries (retryWebhookRequest, in its webhook controller):
# after failed attempt k it waits max(initial, min(initial * 2^(k-1), max) * (1 + jitter * u)), u in [-1, 1];
# each attempt lasts up to the request timeout; the JWT it minted once before the loop lives 600 s.
EVOLUTION_WEBHOOK_TOKEN_LIFETIME_S = 600


def worst_case_retry_end_s(env: dict[str, str]) -> float:
    """When the last attempt ends at the latest, counted from the token's minting."""
    attempts = int(env["WEBHOOK_RETRY_MAX_ATTEMPTS"])
    initial = float(env["WEBHOOK_RETRY_INITIAL_DELAY_SECONDS"])
    longest = float(env["WEBHOOK_RETRY_MAX_DELAY_SECONDS"])
    jitter = float(env["WEBHOOK_RETRY_JITTER_FACTOR"])
    assert env["WEBHOOK_RETRY_USE_EXPONENTIAL_BACKOFF"] == "true"
    waits = sum(max(initial, min(initial * 2 ** (k - 1), longest) * (1 + jitter)) for k in range(1, attempts))
    return waits + attempts * int(env["WEBHOOK_REQUEST_TIMEOUT_MS"]) / 1000


def test_every_webhook_retry_ends_while_its_token_is_valid(config: HostData) -> None:
    compose, _ = _compose(config, "evolution")
    env = compose.services["evolution"].environment or {}
    assert worst_case_retry_end_s(env) <= EVOLUTION_WEBHOOK_TOKEN_LIFETIME_S
    assert worst_case_retry_end_s(env) == pytest.approx(554)  # the figure the README gives
    assert int(env["WEBHOOK_RETRY_MAX_ATTEMPTS"]) >= 5  # still rides out a short receiver outage
    # Evolution's own defaults would not: about 20 minutes
    defaults = {**env, "WEBHOOK_RETRY_MAX_ATTEMPTS": "10", "WEBHOOK_RETRY_MAX_DELAY_SECONDS": "300"}
    assert worst_case_retry_end_s({**defaults, "WEBHOOK_REQUEST_TIMEOUT_MS": "30000"}) > 1200


def test_env_template_settings_are_inlined_into_compose(config: HostData) -> None:
    _, before = _compose(config, "evolution")
    _, after = _compose(config.model_copy(update={"evolution_qrcode_limit": 5}), "evolution")
    assert 'QRCODE_LIMIT: "30"' in before["compose.yaml"] and 'QRCODE_LIMIT: "5"' in after["compose.yaml"]
    assert 'QRCODE_COLOR: "#175197"' in before["compose.yaml"]


def test_sandbox_says_its_images_are_substitutes(tmp_path, monkeypatch) -> None:
    configs = group_configs(tmp_path, monkeypatch)
    sandbox, production = configs["sandbox"], configs["production"]
    assert sandbox.images_are_substitutes and sandbox.image_pull_policy == "never"
    assert all(ref.startswith("nextmavens-local/") for ref in sandbox.images.model_dump().values())
    assert not any(ref.startswith("nextmavens-local/") for ref in production.images.model_dump().values())
    text = (REPO / "group_data/sandbox.py").read_text()
    assert "SUBSTITUTE" in text


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="no compose v2 here; the sandbox e2e runs the real `docker compose config`",
)
@pytest.mark.parametrize("stack", STACKS)
def test_docker_compose_config(config: HostData, stack: str, tmp_path: Path) -> None:
    for filename, content in render_stack(stack, template_context(config)).items():
        (tmp_path / filename).write_text(content)
    secrets = tmp_path / "secrets.env"
    secrets.write_text("".join(f"{key}={'0' * 32}\n" for key in wanted_secrets()))
    result = subprocess.run(
        [
            "docker",
            "compose",
            "--project-directory",
            str(tmp_path),
            "--env-file",
            str(secrets),
            "-f",
            str(tmp_path / "compose.yaml"),
            "config",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_evolution_alone_joins_the_hooks_network_at_its_fixed_address(config: HostData) -> None:
    """host.docker.internal is the host's address on the hooks network: webhooks leave from the address nginx allows."""
    compose, _ = _compose(config, "evolution")
    route = host_hooks_route(config)
    assert compose.networks["hooks"].name == route.network == config.evolution_hooks_network
    evolution = compose.services["evolution"]
    assert evolution.extra_hosts == [f"host.docker.internal:{route.gateway}"]
    assert evolution.networks is not None and evolution.networks["hooks"].ipv4_address == route.evolution_address
    assert config.evolution_hooks_url == f"http://host.docker.internal:{config.evolution_hooks_port}"
