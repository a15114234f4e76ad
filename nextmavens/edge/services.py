"""Per-project services: one compose project `nm-<ref>` with PostgREST, GoTrue and (optionally) Storage.

Each service connects to the project's own database with the project's own login role (from
`naming.project_names`), keeps a small pool, has a memory limit and a health check, and publishes no port:
it joins the platform's internal Docker network under an alias (`rest-<ref>`, `auth-<ref>`,
`storage-<ref>`) that Kong's services point at.

Secrets never appear in the compose file: every service reads an `env_file` written 0600 next to it.
`render_project_services` is pure; `write_project_files` and the command builders do (or describe) the I/O.
Suspended projects are stopped; removed (absent) ones are left stopped, never `down -v`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from nextmavens.edge.kong import AUTH_PORT, STORAGE_PORT, service_hosts
from nextmavens.edge.settings import GOTRUE_MB, POSTGREST_MB, STORAGE_MB, EdgeSettings
from nextmavens.files import write_atomic
from nextmavens.keys import ProjectSecrets
from nextmavens.manifest.models import ProjectManifest
from nextmavens.naming import WHATSAPP_SCHEMA, compose_project_name, project_names

from .memory import GOTRUE_POOL, POSTGREST_POOL, STORAGE_POOL

POSTGREST_ADMIN_PORT = 3001
POSTGREST_ADMIN_HOST = "127.0.0.1"
# Container memory caps: room above the measured footprint before the kernel kills the service.
LIMIT_FACTOR = 1.6
DEFAULT_SCHEMAS = ("public", "storage", "graphql_public")


def _http_probe(url: str) -> list[str]:
    return ["wget", "--no-verbose", "--tries=1", "--spider", url]


def _healthcheck(command: list[str]) -> dict[str, Any]:
    """One timing for every per-project service: probe each second while starting (Docker >= 25), so
    `compose up --wait` does not wait a whole interval per dependent service."""
    return {
        "test": ["CMD", *command],
        "interval": "10s",
        "timeout": "5s",
        "retries": 3,
        "start_period": "10s",
        "start_interval": "1s",
    }


def _limit_mb(footprint: int) -> int:
    return int(footprint * LIMIT_FACTOR + 0.5)


def db_uri(settings: EdgeSettings, user: str, password: str, database: str) -> str:
    return (
        f"postgres://{quote(user, safe='')}:{quote(password, safe='')}@"
        f"{settings.db_host}:{settings.db_port}/{quote(database, safe='')}"
    )


@dataclass(frozen=True)
class RenderedServices:
    ref: str
    compose: str  # YAML without secrets: safe to print
    env_files: dict[str, dict[str, str]]  # file name -> variables (secrets: write 0600, never print)


def _password(secrets: ProjectSecrets, role: str) -> str:
    try:
        return secrets.passwords[role]
    except KeyError:
        raise ValueError(f"no password for login role {role!r} in the project's secrets") from None


def render_project_services(
    settings: EdgeSettings, manifest: ProjectManifest, secrets: ProjectSecrets
) -> RenderedServices:
    ref = manifest.ref
    names = project_names(ref)
    hosts = service_hosts(ref)
    api_url = settings.api_url(ref)
    schemas = [*DEFAULT_SCHEMAS, *manifest.database.schemas]
    if manifest.whatsapp.instances:  # apply made the whatsapp schema: service_role reads it through the API
        schemas.append(WHATSAPP_SCHEMA)

    rest_env = {
        "PGRST_DB_URI": db_uri(settings, names.authenticator, _password(secrets, names.authenticator), names.database),
        "PGRST_DB_SCHEMAS": ",".join(schemas),
        "PGRST_DB_ANON_ROLE": "anon",
        "PGRST_JWT_SECRET": secrets.jwt_secret,
        "PGRST_DB_POOL": str(POSTGREST_POOL),
        "PGRST_DB_MAX_ROWS": str(manifest.api.max_rows),
        "PGRST_DB_EXTRA_SEARCH_PATH": "public,extensions",
        "PGRST_ADMIN_SERVER_PORT": str(POSTGREST_ADMIN_PORT),
        # `postgrest --ready` (the health check) needs a real admin host, not the default "!4"; loopback also keeps
        # the admin endpoints (/schema_cache, /metrics) away from the other projects on the shared network.
        "PGRST_ADMIN_SERVER_HOST": POSTGREST_ADMIN_HOST,
        "PGRST_APP_SETTINGS_JWT_SECRET": secrets.jwt_secret,
        "PGRST_APP_SETTINGS_JWT_EXP": str(manifest.api.jwt_expiry),
    }
    auth_env = {
        "GOTRUE_API_HOST": "0.0.0.0",  # noqa: S104 - inside the container, on the internal network only
        "GOTRUE_API_PORT": str(AUTH_PORT),
        "API_EXTERNAL_URL": api_url,
        "GOTRUE_DB_DRIVER": "postgres",
        "GOTRUE_DB_DATABASE_URL": db_uri(
            settings, names.auth_admin, _password(secrets, names.auth_admin), names.database
        ),
        "GOTRUE_DB_MAX_POOL_SIZE": str(GOTRUE_POOL),
        "GOTRUE_SITE_URL": manifest.auth.site_url,
        "GOTRUE_URI_ALLOW_LIST": ",".join(manifest.auth.redirect_urls),
        "GOTRUE_DISABLE_SIGNUP": "true" if manifest.auth.disable_signup else "false",
        "GOTRUE_JWT_ADMIN_ROLES": "service_role",
        "GOTRUE_JWT_AUD": "authenticated",
        "GOTRUE_JWT_DEFAULT_GROUP_NAME": "authenticated",
        "GOTRUE_JWT_EXP": str(manifest.api.jwt_expiry),
        "GOTRUE_JWT_SECRET": secrets.jwt_secret,
    }
    env_files = {"rest.env": rest_env, "auth.env": auth_env}
    network = settings.platform_network
    services: dict[str, object] = {
        "rest": {
            "image": settings.postgrest_image,
            "restart": "unless-stopped",
            "env_file": ["rest.env"],
            "mem_limit": f"{_limit_mb(POSTGREST_MB)}m",
            "networks": {network: {"aliases": [hosts["rest"]]}},
            # PostgREST >= 14.0 (the pin, facts POSTGREST_V14_5): `--ready` GETs the admin server's /ready from
            # inside the container, whose image holds only the binary (no shell, no wget). v12 had no such flag.
            "healthcheck": _healthcheck(["postgrest", "--ready"]),
            "depends_on": {"auth": {"condition": "service_healthy"}},
        },
        "auth": {
            "image": settings.gotrue_image,
            "restart": "unless-stopped",
            "env_file": ["auth.env"],
            "mem_limit": f"{_limit_mb(GOTRUE_MB)}m",
            "networks": {network: {"aliases": [hosts["auth"]]}},
            "healthcheck": _healthcheck(_http_probe(f"http://localhost:{AUTH_PORT}/health")),
        },
    }
    if manifest.storage.enabled:
        env_files["storage.env"] = {
            "ANON_KEY": secrets.keys.anon,
            "SERVICE_KEY": secrets.keys.service_role,
            "PGRST_JWT_SECRET": secrets.jwt_secret,
            "AUTH_JWT_SECRET": secrets.jwt_secret,
            "DATABASE_URL": db_uri(
                settings, names.storage_admin, _password(secrets, names.storage_admin), names.database
            ),
            "DB_SUPER_USER": names.storage_admin,
            # Storage 1.25.7 sizes its pool from DATABASE_MAX_CONNECTIONS (default 20); it reads neither
            # DATABASE_POOL_MAX nor POSTGREST_URL (src/config.ts), though Supabase's compose passes the latter.
            "DATABASE_MAX_CONNECTIONS": str(STORAGE_POOL),
            "FILE_SIZE_LIMIT": str(manifest.storage.file_size_limit_mb * 1024 * 1024),
            "STORAGE_BACKEND": "file",
            "FILE_STORAGE_BACKEND_PATH": "/var/lib/storage",
            "TENANT_ID": ref,
            "REGION": "local",
            "GLOBAL_S3_BUCKET": "local",
        }
        services["storage"] = {
            "image": settings.storage_image,
            "restart": "unless-stopped",
            "env_file": ["storage.env"],
            "mem_limit": f"{_limit_mb(STORAGE_MB)}m",
            "networks": {network: {"aliases": [hosts["storage"]]}},
            "volumes": [f"{settings.storage_root}/{ref}:/var/lib/storage"],
            "healthcheck": _healthcheck(_http_probe(f"http://localhost:{STORAGE_PORT}/status")),
            "depends_on": {"rest": {"condition": "service_started"}},
        }
    document = {
        "name": compose_project_name(ref),
        "services": services,
        "networks": {network: {"external": True}},
    }
    compose = "# Rendered by nextmavens (edge); secrets live in the 0600 env files beside it.\n" + yaml.safe_dump(
        document, sort_keys=True, default_flow_style=False
    )
    for file_name, variables in env_files.items():
        for key, value in variables.items():
            if "\n" in value or "\r" in value:
                raise ValueError(f"{file_name}: {key} contains a line break")
    return RenderedServices(ref=ref, compose=compose, env_files=env_files)


# How docker compose v2 reads an `env_file` (compose-go's dotenv/parser.go, `extractVarValue`; the same code
# from compose-go v2.0.0 through v2.1.x, i.e. the docker compose 2.2x that Debian 13 ships):
# - unquoted and double-quoted values are interpolated: `${VAR}` and `$VAR` are replaced from compose's own
#   environment (and the project's .env), which is how a manifest URL could pull a platform secret in;
#   unquoted values also lose a ` #...` tail and trailing spaces;
# - single-quoted values are never interpolated and may hold spaces, `#`, `"` and `$` literally;
# - inside single quotes a backslash escapes the next character: `\'` gives `'`, and `\` followed by any
#   other character keeps both (`\\` gives two backslashes, `\$` gives `\$`);
# - the first `'` not escaped that way ends the value.
# So a value is written as '...' with each `'` written `\'`. A backslash directly before a `'` or at the
# very end cannot be expressed; such a value is refused (no manifest or generated secret can hold one).


def env_file_value(key: str, value: str) -> str:
    """`value` single-quoted for compose's dotenv parser (facts above); ValueError names only the key."""
    if any(ch in value for ch in "\n\r\0"):
        raise ValueError(f"{key}: a line break or NUL cannot be passed through an env file")
    out: list[str] = []
    index = 0
    while index < len(value):
        ch = value[index]
        if ch == "\\":
            following = value[index + 1 : index + 2]
            if following in ("", "'"):
                raise ValueError(f"{key}: a backslash before a quote or at the end cannot be passed literally")
            out.append(ch + following)  # the parser keeps `\x` as it is, including `\\`
            index += 2
            continue
        out.append("\\'" if ch == "'" else ch)
        index += 1
    return "'" + "".join(out) + "'"


def env_file_text(variables: dict[str, str]) -> str:
    """Env files that docker compose reads literally: every value single-quoted, nothing interpolated."""
    return "".join(f"{key}={env_file_value(key, value)}\n" for key, value in sorted(variables.items()))


def write_project_files(base_dir: Path, rendered: RenderedServices) -> list[Path]:
    """Write compose.yaml (0644) and the env files (0600, created with that mode) into base_dir/<ref>/.

    Returns the paths whose content changed.
    """
    directory = base_dir / rendered.ref
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    changed: list[Path] = []
    files = {"compose.yaml": (rendered.compose, 0o644)}
    files.update({name: (env_file_text(v), 0o600) for name, v in rendered.env_files.items()})
    for name, (text, mode) in sorted(files.items()):
        path = directory / name
        if path.exists() and path.read_text() == text:
            os.chmod(path, mode)
            continue
        write_atomic(path, text, mode)
        changed.append(path)
    return changed


def compose_command(base_dir: Path, manifest: ProjectManifest) -> list[str]:
    """argv converging the project's containers: up for active, stop for suspended or absent."""
    ref = manifest.ref
    head = ["docker", "compose", "-p", compose_project_name(ref), "-f", str(base_dir / ref / "compose.yaml")]
    if manifest.state == "active":
        return [*head, "up", "-d", "--remove-orphans", "--wait", "--wait-timeout", "120"]
    return [*head, "stop"]
