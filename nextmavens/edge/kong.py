"""Kong's DB-less declarative config for every project, and a model of that format to validate it.

Shape (per served project `<ref>`, hosts `<ref>.<api domain>` plus its custom domains):
- consumers `anon_<ref>` and `service_role_<ref>`, key-auth credential = the project's key, ACL group
  `anon_<ref>` / `admin_<ref>`, and a rate-limiting plugin per consumer (limits from the manifest, local
  policy, limited by consumer);
- services `rest-<ref>` (/rest/v1/), `auth-<ref>` (/auth/v1/), realtime (`/realtime/v1/` websocket,
  `/realtime/v1/api`, with `/realtime/v1/api/tenants` refused 403) and `storage-<ref>` when enabled: each with
  cors, key-auth and an acl that allows only that project's two groups;
- open GoTrue paths without key-auth (verify, callback, authorize, jwks as Supabase's kong.yml opens them,
  plus health and settings), cors only: GoTrue checks its own tokens there.

Realtime finds its tenant in the first label of the Host header. On `<ref>.<api domain>` the route keeps the
client's host (`preserve_host`). A custom domain's first label is not the ref, so its realtime routes do not
preserve the host: Kong then sends the upstream's name, `<ref>.realtime`, an `upstreams` entry whose target
is the shared Realtime.

Suspended projects (documented choice): their consumers are left out, so their keys authenticate nowhere,
and one service per suspended project answers every path on its hosts with 503 through request-termination.
Absent projects have nothing.

Storage through Kong requires an apikey here (key-auth + acl, unlike Supabase's single-project kong.yml,
which leaves Storage open for S3 signatures): one project's key must never pass another's route, so S3
protocol access is not offered.

Format: `_format_version: "2.1"`, what the pinned Kong 2.8.1 accepts ("1.1" or "2.1"; "3.0" is Kong 3.x's and
2.8.1 refuses the whole config). Our paths are plain (letters, digits, `._~/-`), which 2.8.1's router treats as
prefixes, as 3.x does: the routes mean the same (nextmavens/upstream/facts.py, KONG_2_8_1). Every plugin used here
is in KONG_PLUGINS, the one list the shared compose gives Kong (stacks/supabase/compose.yaml.j2 renders it), and
`KongConfig` refuses anything the pinned Kong's facts refuse (nextmavens.upstream.checks).

Pure: no I/O. `render_kong` returns a validated `KongConfig`; `kong_document` its JSON-ready dict.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nextmavens.edge.inputs import EdgeProject, check_edge_inputs, project_hostnames, served
from nextmavens.edge.settings import EdgeSettings
from nextmavens.manifest.models import RateLimit
from nextmavens.upstream.checks import kong_config_problems
from nextmavens.upstream.facts import pinned_kong

FORMAT_VERSION: Literal["2.1"] = "2.1"
REST_PORT = 3000
AUTH_PORT = 9999
STORAGE_PORT = 5000
KEY_NAMES = ["apikey"]

# GoTrue paths reachable without an apikey: links in e-mails and OAuth redirects carry none.
AUTH_OPEN_PATHS = {
    "verify": "/verify",
    "callback": "/callback",
    "authorize": "/authorize",
    "jwks": "/.well-known/jwks.json",
    "health": "/health",
    "settings": "/settings",
}


# ---------------------------------------------------------------- model of the declarative format


class _K(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CorsConfig(_K):
    origins: list[str] = Field(min_length=1)
    methods: list[Literal["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS"]]
    headers: list[str]
    exposed_headers: list[str]
    credentials: bool
    max_age: Annotated[int, Field(ge=0)]


class KeyAuthConfig(_K):
    key_names: list[str] = Field(min_length=1)
    hide_credentials: bool = False
    key_in_query: bool = True


class AclConfig(_K):
    allow: list[str] = Field(min_length=1)
    hide_groups_header: bool = True


class RateLimitingConfig(_K):
    second: Annotated[int, Field(ge=1)] | None = None
    minute: Annotated[int, Field(ge=1)] | None = None
    hour: Annotated[int, Field(ge=1)] | None = None
    policy: Literal["local"] = "local"
    limit_by: Literal["consumer"] = "consumer"
    fault_tolerant: bool = True
    hide_client_headers: bool = False

    @model_validator(mode="after")
    def _one_window(self) -> RateLimitingConfig:
        if self.second is None and self.minute is None and self.hour is None:
            raise ValueError("rate-limiting needs at least one of second, minute, hour")
        return self


class RequestTerminationConfig(_K):
    status_code: Annotated[int, Field(ge=100, le=599)]
    message: str


class HeaderList(_K):
    headers: list[str]


class RequestTransformerConfig(_K):
    add: HeaderList


PLUGIN_CONFIGS: dict[str, type[_K]] = {
    "cors": CorsConfig,
    "key-auth": KeyAuthConfig,
    "acl": AclConfig,
    "rate-limiting": RateLimitingConfig,
    "request-termination": RequestTerminationConfig,
    "request-transformer": RequestTransformerConfig,
}
# KONG_PLUGINS: exactly the plugins this config can use; the compose renders this tuple (one source of truth).
# Supabase's compose enables request-transformer,cors,key-auth,acl,basic-auth,request-termination,ip-restriction:
# we add rate-limiting (per-consumer limits from the manifests) and leave out basic-auth and ip-restriction
# (Supabase's dashboard route; Studio here is behind nginx's basic auth).
KONG_PLUGINS = tuple(sorted(PLUGIN_CONFIGS))


class Plugin(_K):
    name: Literal["cors", "key-auth", "acl", "rate-limiting", "request-termination", "request-transformer"]
    config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _config_matches_plugin(self) -> Plugin:
        PLUGIN_CONFIGS[self.name].model_validate(self.config)
        return self


HostName = Annotated[str, Field(pattern=r"^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$", max_length=253)]
EntityName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._~-]+$", max_length=128)]


class Route(_K):
    name: EntityName
    hosts: list[HostName] = Field(min_length=1)
    paths: list[Annotated[str, Field(pattern=r"^/[A-Za-z0-9._~/-]*$")]] = Field(min_length=1)
    strip_path: bool = True
    preserve_host: bool = False
    protocols: list[Literal["http", "https"]] = Field(min_length=1)


class Service(_K):
    name: EntityName
    url: str
    routes: list[Route] = Field(min_length=1)
    plugins: list[Plugin] = Field(default_factory=list)

    @model_validator(mode="after")
    def _url(self) -> Service:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"service {self.name}: url must be http(s)://host[:port]/path")
        names = [p.name for p in self.plugins]
        if len(names) != len(set(names)):
            raise ValueError(f"service {self.name}: a plugin is configured twice")
        return self

    def plugin(self, name: str) -> Plugin | None:
        return next((p for p in self.plugins if p.name == name), None)


class Target(_K):
    target: Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")]


class Upstream(_K):
    name: HostName
    targets: list[Target] = Field(min_length=1)


class KeyAuthCredential(_K):
    key: str = Field(min_length=16)


class AclGroup(_K):
    group: EntityName


class Consumer(_K):
    username: EntityName
    keyauth_credentials: list[KeyAuthCredential] = Field(default_factory=list)
    acls: list[AclGroup] = Field(default_factory=list)
    plugins: list[Plugin] = Field(default_factory=list)


class KongConfig(_K):
    """The subset of Kong's declarative format (2.1, Kong 2.8.1) we emit; Kong's rules plus ours."""

    format_version: Literal["2.1"] = Field(default=FORMAT_VERSION, alias="_format_version")
    transform: bool = Field(default=True, alias="_transform")
    upstreams: list[Upstream] = Field(default_factory=list)
    consumers: list[Consumer] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> KongConfig:
        _unique("service", [s.name for s in self.services])
        _unique("route", [r.name for s in self.services for r in s.routes])
        _unique("consumer", [c.username for c in self.consumers])
        _unique("upstream", [u.name for u in self.upstreams])
        keys = [k.key for c in self.consumers for k in c.keyauth_credentials]
        if len(keys) != len(set(keys)):
            raise ValueError("two key-auth credentials share one key")  # never echo the key
        groups = {a.group for c in self.consumers for a in c.acls}
        seen: dict[tuple[str, str], str] = {}
        for service in self.services:
            key_auth, acl = service.plugin("key-auth"), service.plugin("acl")
            if (key_auth is None) != (acl is None):
                raise ValueError(f"service {service.name}: key-auth and acl must come together")
            if acl is not None:
                missing = set(acl.config["allow"]) - groups
                if missing:
                    raise ValueError(f"service {service.name}: acl allows unknown groups {sorted(missing)}")
            for route in service.routes:
                for host in route.hosts:
                    for path in route.paths:
                        other = seen.setdefault((host, path), route.name)
                        if other != route.name:
                            raise ValueError(f"routes {other} and {route.name} both claim {host}{path}")
        # What the pinned Kong itself would refuse, with the plugins the compose enables.
        problems = kong_config_problems(self.document(), frozenset(KONG_PLUGINS), pinned_kong())
        if problems:
            raise ValueError("the pinned Kong would refuse this config: " + "; ".join(problems[:5]))
        return self

    def document(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


def _unique(what: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} name {name!r} is used twice")
        seen.add(name)


# ---------------------------------------------------------------- rendering


def consumer_names(ref: str) -> tuple[str, str]:
    return f"anon_{ref}", f"service_role_{ref}"


def acl_groups(ref: str) -> tuple[str, str]:
    return f"anon_{ref}", f"admin_{ref}"


def realtime_upstream_name(ref: str) -> str:
    return f"{ref}.realtime"


def service_hosts(ref: str) -> dict[str, str]:
    """Container host names of a project's services on the platform network."""
    return {"rest": f"rest-{ref}", "auth": f"auth-{ref}", "storage": f"storage-{ref}"}


def _cors(settings: EdgeSettings) -> dict[str, Any]:
    return {
        "name": "cors",
        "config": {
            "origins": list(settings.cors_origins),
            "methods": ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS"],
            "headers": [
                "Accept",
                "Authorization",
                "Content-Type",
                "Content-Profile",
                "Accept-Profile",
                "Prefer",
                "Range",
                "apikey",
                "x-client-info",
                "x-upsert",
            ],
            "exposed_headers": ["Content-Range", "Content-Location", "Range"],
            "credentials": False,
            "max_age": 3600,
        },
    }


def _protected(settings: EdgeSettings, ref: str, websocket: bool = False) -> list[dict[str, Any]]:
    """cors + key-auth + acl (this project's groups only).

    HTTP APIs take the key from the `apikey` header only, and a client that sends only `apikey` still
    reaches PostgREST/GoTrue with its key's role (`add` never overwrites a user's session JWT). Realtime's
    websocket carries the key in the query string and reads it itself, so it gets no transformer.
    """
    plugins: list[dict[str, Any]] = [
        _cors(settings),
        {
            "name": "key-auth",
            "config": {"key_names": KEY_NAMES, "hide_credentials": False, "key_in_query": websocket},
        },
    ]
    if not websocket:
        plugins.append(
            {
                "name": "request-transformer",
                "config": {"add": {"headers": ["Authorization:Bearer $(headers.apikey)"]}},
            }
        )
    plugins.append({"name": "acl", "config": {"allow": list(acl_groups(ref)), "hide_groups_header": True}})
    return plugins


def _rate_limit(limit: RateLimit) -> dict[str, Any]:
    config: dict[str, Any] = {"policy": "local", "limit_by": "consumer", "fault_tolerant": True}
    for window in ("second", "minute", "hour"):
        value = getattr(limit, window)
        if value is not None:
            config[window] = value
    return {"name": "rate-limiting", "config": config}


def _route(name: str, hosts: list[str], paths: list[str], preserve_host: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "hosts": hosts,
        "paths": paths,
        "strip_path": True,
        "preserve_host": preserve_host,
        "protocols": ["http", "https"],
    }


def _project_services(settings: EdgeSettings, project: EdgeProject) -> list[dict[str, Any]]:
    ref = project.ref
    hosts = project_hostnames(settings, project)
    api_host, custom = hosts[:1], hosts[1:]
    up = service_hosts(ref)
    services: list[dict[str, Any]] = []
    for key, path in AUTH_OPEN_PATHS.items():
        services.append(
            {
                "name": f"auth-{ref}-open-{key}",
                "url": f"http://{up['auth']}:{AUTH_PORT}{path}",
                "routes": [_route(f"auth-{ref}-open-{key}", hosts, [f"/auth/v1{path}"])],
                "plugins": [_cors(settings)],
            }
        )
    services.append(
        {
            "name": f"auth-{ref}",
            "url": f"http://{up['auth']}:{AUTH_PORT}/",
            "routes": [_route(f"auth-{ref}-all", hosts, ["/auth/v1/"])],
            "plugins": _protected(settings, ref),
        }
    )
    services.append(
        {
            "name": f"rest-{ref}",
            "url": f"http://{up['rest']}:{REST_PORT}/",
            "routes": [_route(f"rest-{ref}-all", hosts, ["/rest/v1/"])],
            "plugins": _protected(settings, ref),
        }
    )
    rt = realtime_upstream_name(ref)
    for key, kong_path, upstream_path in (
        ("ws", "/realtime/v1/", "/socket"),
        ("api", "/realtime/v1/api", "/api"),
    ):
        routes = [_route(f"realtime-{ref}-{key}", api_host, [kong_path], preserve_host=True)]
        if custom:
            routes.append(_route(f"realtime-{ref}-{key}-custom", custom, [kong_path], preserve_host=False))
        services.append(
            {
                "name": f"realtime-{ref}-{key}",
                "url": f"http://{rt}{upstream_path}",
                "routes": routes,
                "plugins": _protected(settings, ref, websocket=True),
            }
        )
    services.append(
        {
            "name": f"realtime-{ref}-tenants-blocked",
            "url": f"http://{rt}/api/tenants",
            "routes": [_route(f"realtime-{ref}-tenants-blocked", hosts, ["/realtime/v1/api/tenants"])],
            "plugins": [{"name": "request-termination", "config": {"status_code": 403, "message": "Forbidden"}}],
        }
    )
    if project.manifest.storage.enabled:
        services.append(
            {
                "name": f"storage-{ref}",
                "url": f"http://{up['storage']}:{STORAGE_PORT}/",
                "routes": [_route(f"storage-{ref}-all", hosts, ["/storage/v1/"])],
                "plugins": _protected(settings, ref),
            }
        )
    return services


def _suspended_service(settings: EdgeSettings, project: EdgeProject) -> dict[str, Any]:
    ref = project.ref
    return {
        "name": f"suspended-{ref}",
        "url": f"http://{service_hosts(ref)['rest']}:{REST_PORT}/",
        "routes": [_route(f"suspended-{ref}", project_hostnames(settings, project), ["/"])],
        "plugins": [
            {
                "name": "request-termination",
                "config": {"status_code": 503, "message": "This project is suspended"},
            }
        ],
    }


def render_kong(settings: EdgeSettings, projects: Sequence[EdgeProject]) -> KongConfig:
    """The whole declarative config; raises EdgeInputError or ValidationError. Loads nothing."""
    check_edge_inputs(settings, projects)
    upstreams: list[dict[str, Any]] = []
    consumers: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    for project in served(projects):
        ref = project.ref
        if project.state == "suspended":
            services.append(_suspended_service(settings, project))
            continue
        anon, service_role = consumer_names(ref)
        anon_group, admin_group = acl_groups(ref)
        limits = project.manifest.api.rate_limits
        consumers.append(
            {
                "username": anon,
                "keyauth_credentials": [{"key": project.secrets.keys.anon}],
                "acls": [{"group": anon_group}],
                "plugins": [_rate_limit(limits.anon)],
            }
        )
        consumers.append(
            {
                "username": service_role,
                "keyauth_credentials": [{"key": project.secrets.keys.service_role}],
                "acls": [{"group": admin_group}],
                "plugins": [_rate_limit(limits.service_role)],
            }
        )
        upstreams.append({"name": realtime_upstream_name(ref), "targets": [{"target": settings.realtime_upstream}]})
        services.extend(_project_services(settings, project))
    return KongConfig.model_validate(
        {
            "_format_version": FORMAT_VERSION,
            "_transform": True,
            "upstreams": upstreams,
            "consumers": consumers,
            "services": services,
        }
    )


def kong_json(config: KongConfig) -> str:
    """Deterministic JSON (a YAML subset Kong accepts as declarative config). Holds keys: never print it."""
    return json.dumps(config.document(), indent=2, sort_keys=True) + "\n"

