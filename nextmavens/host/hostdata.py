"""Host data (group_data/*.py) validated with pydantic before pyinfra connects to anything.

`all.py` must define every knob (it is the documented list of defaults); `<group>.py` files may override
any of them and nothing else. An error names the group file and the key, so a typo never silently
falls back to a default.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from nextmavens.host.evolutionhooks import hooks_route
from nextmavens.host.projectstudios import studio_subnet, studios_memory_mb
from nextmavens.validation import check_domain, reject_repeats

# pyinfra reads these underscore names in group data as defaults for its global arguments.
PYINFRA_GLOBAL_DEFAULTS = {"_sudo", "_sudo_user", "_use_sudo_login", "_preserve_sudo_env", "_su_user"}

# Knobs an earlier release had and this one dropped because nothing read them, with what to do instead. A group
# file that still sets one (an operator's own edit that survived the upgrade) is accepted with its value ignored,
# and the deploy says which line to delete; any other unknown key stays an error (a typo must not pass).
RETIRED_KEYS: dict[str, str] = {
    "platform_domain": "platform_service_domain names the platform service's host",
    "project_memory_mb": "the edge admits projects by its own measured footprints",
    "disk_alert_percent": "the storage monitor alerts at 80, 90 and 95 percent",
    "memory_alert_percent": "nothing read it",
    "backup_retention_days": "each manifest's backup retention_days sets it",
    "nextmavens_apt_deps": "the host venv takes exactly the dependencies requirements/host.lock pins",
}

# Values an earlier release accepted for a knob that this one replaced: key -> {old: (new, why)}. A group file that
# still sets one is accepted as the new value, and the deploy says which line to change.
RETIRED_VALUES: dict[str, dict[Any, tuple[Any, str]]] = {
    "nextmavens_deps_from": {
        "apt": (
            "wheelhouse",
            "Debian's python3-* packages lack the platform service's; the deploying machine uploads the locked wheels",
        ),
    },
}

# An image reference pinned to a tag or a digest; ":latest" and bare names are refused.
_IMAGE_RE = re.compile(
    r"^(?P<name>[a-z0-9]+(?:[._/-][a-z0-9]+)*(?::[0-9]+/[a-z0-9._/-]+)?)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
_PORT_RULE_RE = re.compile(r"^(?P<port>[0-9]{1,5})/(?P<proto>tcp|udp)$")
_SIZE_RE = re.compile(r"^[1-9][0-9]*[KMG]$")
_UNIT_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,40}$")
_ON_CALENDAR_RE = re.compile(r"^[A-Za-z0-9*:/,. ~-]+$")


class HostDataError(ValueError):
    """Invalid host data; the message names the group file(s) and key(s)."""


def _pinned_image(ref: str) -> str:
    match = _IMAGE_RE.fullmatch(ref)
    if not match:
        raise ValueError(f"{ref!r} is not a valid image reference")
    if not match["tag"] and not match["digest"]:
        raise ValueError(f"{ref!r} is not pinned: add a tag or an @sha256 digest")
    if match["tag"] == "latest" and not match["digest"]:
        raise ValueError(f"{ref!r} uses :latest: pin a version tag or a digest")
    return ref


def _port_rule(rule: str) -> str:
    match = _PORT_RULE_RE.fullmatch(rule)
    if not match:
        raise ValueError(f"{rule!r} must look like '443/tcp'")
    if not 1 <= int(match["port"]) <= 65535:
        raise ValueError(f"{rule!r}: port out of range 1-65535")
    return rule


def _size(value: str) -> str:
    if not _SIZE_RE.fullmatch(value):
        raise ValueError(f"{value!r} must be a size like 500M or 2G")
    return value


def _studio_subnet(value: str) -> str:
    studio_subnet(value)  # ValueError when it cannot hold the host and a Studio
    return value


def _hooks_subnet(value: str) -> str:
    hooks_route("", value, 1)  # ValueError when it cannot hold the host's and Evolution's addresses
    return value


Image = Annotated[str, AfterValidator(_pinned_image)]
Port = Annotated[int, Field(ge=1, le=65535)]
PortRule = Annotated[str, AfterValidator(_port_rule)]
Size = Annotated[str, AfterValidator(_size)]
Domain = Annotated[str, AfterValidator(check_domain)]
AbsPath = Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/-]*$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Images(Strict):
    postgres: Image
    kong: Image
    realtime: Image
    supavisor: Image
    studio: Image
    postgres_meta: Image
    gotrue: Image
    postgrest: Image
    storage_api: Image
    imgproxy: Image
    logflare: Image
    vector: Image
    evolution: Image
    redis: Image


class LoopbackPorts(Strict):
    """Host ports the shared services publish on 127.0.0.1 (never on a public address)."""

    postgres: Port
    kong_http: Port
    kong_admin: Port
    studio: Port
    postgres_meta: Port
    realtime: Port
    supavisor_api: Port
    supavisor_pooler: Port
    evolution: Port
    platform: Port  # the platform service itself (a systemd unit), not a container

    @model_validator(mode="after")
    def _distinct(self) -> LoopbackPorts:
        seen: dict[int, str] = {}
        for key, port in self.model_dump().items():
            if port in seen:
                raise ValueError(f"{key} and {seen[port]} both use port {port}")
            seen[port] = key
        return self


class AppImages(Strict):
    node: Image
    python: Image
    static: Image


class AppDeploys(Strict):
    """App deployments (issue 16): see group_data/all.py `app_deploys`."""

    images: AppImages
    health_timeout_s: Annotated[float, Field(gt=0, le=900)]
    health_interval_s: Annotated[float, Field(gt=0, le=60)]
    health_request_timeout_s: Annotated[float, Field(gt=0, le=60)]
    drain_s: Annotated[float, Field(ge=0, le=600)]
    build_memory_mb: Annotated[int, Field(ge=256, le=65536)]
    lock_timeout_s: Annotated[float, Field(ge=0, le=3600)]
    pids_limit: Annotated[int, Field(ge=32, le=1_000_000)]


class TimerUnit(Strict):
    """One systemd service+timer pair rendered from templates/systemd/job.{service,timer}.j2."""

    name: Annotated[str, Field(pattern=_UNIT_NAME_RE.pattern)]
    description: str
    command: list[str] = Field(min_length=1)  # argv, run by <platform_dir>/bin/nextmavens-env
    on_calendar: Annotated[str, Field(pattern=_ON_CALENDAR_RE.pattern)]
    randomized_delay_s: Annotated[int, Field(ge=0, le=86400)]
    enabled: bool


class HostData(Strict):
    """Every knob of the host. Defaults and their documentation live in group_data/all.py."""

    # identity and edge
    api_domain: Domain
    studio_domain: Domain
    platform_service_domain: Domain
    admin_email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    timezone: Annotated[str, Field(pattern=r"^[A-Za-z0-9_+/-]+$")]
    # the edge (Kong routes, nginx vhosts, TLS, tenants) converged by `nextmavens apply`
    edge_enabled: bool
    edge_issue_certificates: bool
    edge_host_ipv4: str
    edge_config_file: AbsPath
    # base
    base_packages: list[str]
    unattended_upgrades: bool
    time_sync: bool
    swap_size_mb: Annotated[int, Field(ge=-1, le=65536)]
    journald_max_use: Size
    # admin and ssh
    admin_user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")]
    platform_user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")]
    admin_ssh_public_keys: list[Annotated[str, Field(pattern=r"^(ssh-|ecdsa-|sk-)\S+ \S+")]] = Field(min_length=1)
    ssh_port: Port
    ssh_permit_root_login: Literal["no", "prohibit-password"]
    # firewall
    firewall_allowed_ports: list[PortRule]
    firewall_prune_unknown_rules: bool
    # docker
    docker_source: Literal["docker-ce", "distro"]
    docker_apt_url: Annotated[str, Field(pattern=r"^https://")]
    docker_ce_packages: list[str] = Field(min_length=1)
    docker_distro_packages: list[str] = Field(min_length=1)
    docker_log_max_size: Annotated[str, Field(pattern=r"^[1-9][0-9]*[kmg]$")]
    docker_log_max_file: Annotated[int, Field(ge=1, le=100)]
    docker_network: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
    # nginx and certbot
    nginx_acme_webroot: AbsPath
    nginx_ipv6: bool
    nginx_worker_connections: Annotated[int, Field(ge=64, le=65535)]
    nginx_client_max_body_size: Annotated[str, Field(pattern=r"^[1-9][0-9]*[kmg]$")]
    # stacks
    platform_dir: AbsPath
    secrets_file: AbsPath
    images: Images
    images_are_substitutes: bool
    image_pull_policy: Literal["missing", "never", "always"]
    loopback_ports: LoopbackPorts
    kong_worker_processes: Annotated[int, Field(ge=1, le=16)]
    supabase_analytics_enabled: bool
    max_projects: Annotated[int, Field(ge=1, le=1000)]
    app_deploys: AppDeploys
    postgres_admin_user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]
    evolution_database: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]
    evolution_server_url: Annotated[str, Field(pattern=r"^https?://")]
    evolution_client_name: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,40}$")]
    evolution_qrcode_limit: Annotated[int, Field(ge=1, le=100)]
    evolution_hooks_url: Annotated[str, Field(pattern=r"^https?://[^/\s]+$")]
    evolution_hooks_network: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
    evolution_hooks_subnet: Annotated[str, AfterValidator(_hooks_subnet)]
    evolution_hooks_port: Port
    # Studio for a project (nextmavens/host/projectstudios.py)
    project_studio_domain: Domain | None
    project_studio_max_running: Annotated[int, Field(ge=1, le=20)]
    project_studio_idle_minutes: Annotated[int, Field(ge=1, le=1440)]
    project_studio_network: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
    project_studio_subnet: Annotated[str, AfterValidator(_studio_subnet)]
    studio_meta_gate_port: Port
    # memory budget (MiB)
    memory_budget_mb: Annotated[int, Field(ge=512)]
    memory_limits_mb: dict[str, Annotated[int, Field(ge=16)]]
    # the nextmavens package on the host
    nextmavens_wheel: str | None
    nextmavens_deps_from: Literal["pypi", "wheelhouse"]
    projects_dir: AbsPath
    manifest_source: Annotated[str, Field(min_length=1)]
    timers: list[TimerUnit]
    # metrics (issue 18): the resident collector's unit and nginx's structured log it reads
    metrics_collector: bool = True
    metrics_log: AbsPath = "/var/log/nginx/nextmavens-metrics.log"
    # media offload and received mail's attachments (issue 17): the Cloudinary account's cloud name (not a secret;
    # its credentials are the secrets file's CLOUDINARY_KEY). None: nothing goes to Cloudinary.
    cloudinary_cloud: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> HostData:
        unknown = set(self.memory_limits_mb) - set(Images.model_fields)
        if unknown:
            raise ValueError(f"memory_limits_mb names unknown services: {sorted(unknown)}")
        total = sum(self.memory_limits_mb.values())
        if total > self.memory_budget_mb:
            raise ValueError(f"memory_limits_mb adds up to {total} MiB, above memory_budget_mb={self.memory_budget_mb}")
        studios = studios_memory_mb(self)
        if total + studios > self.memory_budget_mb:
            raise ValueError(
                f"memory_limits_mb ({total} MiB) and project_studio_max_running Studios ({studios} MiB) add up to more"
                f" than memory_budget_mb={self.memory_budget_mb}"
            )
        reject_repeats((timer.name for timer in self.timers), "timer name")
        if self.images_are_substitutes != (self.image_pull_policy == "never"):
            raise ValueError("images_are_substitutes requires image_pull_policy='never' and vice versa")
        self._check_hooks_route()
        self._check_studio_route()
        return self

    def _check_studio_route(self) -> None:
        if self.project_studio_domain is None:
            return
        studio_subnet(self.project_studio_subnet, self.project_studio_max_running)
        if self.project_studio_network in (self.docker_network, self.evolution_hooks_network):
            raise ValueError("project_studio_network must be a network of its own (only the Studios join it)")
        if self.project_studio_domain in (self.api_domain, self.platform_service_domain):
            raise ValueError("project_studio_domain must differ from api_domain and platform_service_domain")
        taken = {80: "http", 443: "https", self.ssh_port: "ssh_port", self.evolution_hooks_port: "evolution_hooks_port"}
        taken.update({port: f"loopback_ports.{name}" for name, port in self.loopback_ports.model_dump().items()})
        if self.studio_meta_gate_port in taken:
            port = self.studio_meta_gate_port
            raise ValueError(f"studio_meta_gate_port {port} is taken by {taken[port]}")

    def _check_hooks_route(self) -> None:
        """Evolution's webhook path: its own network, a port no other listener takes, a URL that uses it."""
        if self.evolution_hooks_network == self.docker_network:
            raise ValueError("evolution_hooks_network must differ from docker_network (only Evolution joins it)")
        taken = {80: "http", 443: "https", self.ssh_port: "ssh_port"}
        taken.update({port: f"loopback_ports.{name}" for name, port in self.loopback_ports.model_dump().items()})
        port = self.evolution_hooks_port
        if port in taken:
            raise ValueError(f"evolution_hooks_port {port} is taken by {taken[port]}")
        url = urlsplit(self.evolution_hooks_url)
        if url.hostname == "host.docker.internal" and url.port != self.evolution_hooks_port:
            raise ValueError(
                f"evolution_hooks_url {self.evolution_hooks_url!r} must use evolution_hooks_port "
                f"{self.evolution_hooks_port}: nginx serves the webhooks there"
            )


def read_group_file(path: Path) -> dict[str, Any]:
    """The names a group data file defines, as pyinfra sees them (imports and dunders left out)."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    imported: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            imported.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    namespace: dict[str, Any] = {"__file__": str(path)}
    exec(compile(source, str(path), "exec"), namespace)  # noqa: S102 - our own group data file
    return {k: v for k, v in namespace.items() if not k.startswith("__") and k not in imported}


def _split(raw: dict[str, Any], path: Path, notices: list[str] | None = None) -> dict[str, Any]:
    """Drop pyinfra's global-argument defaults and retired knobs and map retired values (noting each in `notices`);
    refuse any other underscore name."""
    data: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith("_"):
            if key not in PYINFRA_GLOBAL_DEFAULTS:
                raise HostDataError(f"{path.name}: unknown pyinfra default {key!r}")
            continue
        if key in RETIRED_KEYS:
            if notices is not None:
                notices.append(
                    f"group_data/{path.name}: {key!r} is no longer used and is ignored ({RETIRED_KEYS[key]}); delete it"
                )
            continue
        replaced = _retired_value(key, value)
        if replaced is not None:
            new, why = replaced
            if notices is not None:
                notices.append(f"group_data/{path.name}: {key} = {value!r} is now {key} = {new!r} ({why}); write that")
            value = new
        data[key] = value
    return data


def _retired_value(key: str, value: Any) -> tuple[Any, str] | None:
    """(the value that replaced it, why) when `value` is one an earlier release accepted for `key`."""
    try:
        return RETIRED_VALUES.get(key, {}).get(value)
    except TypeError:  # an unhashable value (a list) is never a retired one
        return None


def _describe(err: ValidationError, origin: dict[str, str]) -> str:
    lines = []
    for item in err.errors():
        loc = [str(part) for part in item["loc"]]
        key = loc[0] if loc else "(host data)"
        where = origin.get(key, "group_data/all.py")
        dotted = ".".join(loc) or "(host data)"
        if item["type"] == "missing":
            lines.append(f"{where}: required key {dotted!r} is missing")
        elif item.get("input", "") is None and len(loc) == 1:
            lines.append(f"{where}: required key {dotted!r} is not set (None)")
        elif item["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown key {dotted!r} (a typo?)")
        else:
            lines.append(f"{where}: key {dotted!r}: {item['msg']}")
    return "\n".join(lines)


def validate_groups(group_data_dir: Path, groups: list[str], notices: list[str] | None = None) -> dict[str, HostData]:
    """Validate all.py merged with each group's file; return the models, or raise HostDataError. Retired knobs
    are ignored, with one line each appended to `notices` for the operator."""
    all_path = group_data_dir / "all.py"
    base = _split(read_group_file(all_path), all_path, notices)
    problems: list[str] = []
    results: dict[str, HostData] = {}
    known = set(HostData.model_fields)
    for group in groups:
        path = group_data_dir / f"{group}.py"
        override = _split(read_group_file(path), path, notices) if path.exists() else {}
        origin = {key: f"group_data/{path.name}" for key in override}
        typos = sorted(set(override) - known)
        if typos:
            problems.extend(f"group_data/{path.name}: unknown key {key!r} (a typo?)" for key in typos)
            continue
        try:
            results[group] = HostData.model_validate({**base, **override})
        except ValidationError as err:
            problems.append(_describe(err, origin))
    if problems:
        raise HostDataError("\n".join(dict.fromkeys("\n".join(problems).splitlines())))
    return results


def validate_host_data(data: dict[str, Any], source: str) -> HostData:
    """Validate one host's merged data (as pyinfra's host.data holds it)."""
    fields = {k: v for k, v in data.items() if k in HostData.model_fields}
    for key, value in fields.items():  # the inventory's validate_groups already told the operator
        replaced = _retired_value(key, value)
        if replaced is not None:
            fields[key] = replaced[0]
    try:
        return HostData.model_validate(fields)
    except ValidationError as err:
        raise HostDataError(_describe(err, dict.fromkeys(fields, source))) from None
