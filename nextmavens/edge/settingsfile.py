"""The edge's settings file on the host, as the commands read it.

The file (`--edge-config`, rendered by the host deploy) holds EdgeSettings' plain fields and the
paths of the files holding its platform secrets; the secrets themselves never sit in that file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from nextmavens.edge.appsettings import AppDeploySettings
from nextmavens.edge.certs import CertbotDirs
from nextmavens.edge.settings import EdgeSettings
from nextmavens.files import SecretFileError, read_secret_file

SecretField = Literal[
    "supavisor_api_secret",
    "realtime_api_secret",
    "pooler_manager_password",
    "realtime_db_password",
    "evolution_api_key",
]


class EdgeConfigError(Exception):
    pass


class EdgePaths(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    nginx_site: Path = Path("/etc/nginx/conf.d/nextmavens-edge.conf")  # the one file the edge writes
    state_dir: Path = Path("/var/lib/nextmavens/edge")  # last good nginx config, Kong hash, cert back-off
    # certbot's --config-dir is settings.letsencrypt_dir: nginx reads the certificates from the same folder.
    certbot_work_dir: Path = Path(CertbotDirs.work_dir)
    certbot_logs_dir: Path = Path(CertbotDirs.logs_dir)


class EdgeHostConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    settings: EdgeSettings = Field(description="Without the platform secrets: secret_files names their files")
    secret_files: dict[SecretField, Path] = Field(default_factory=dict)
    paths: EdgePaths = Field(default_factory=EdgePaths)
    issue_certificates: bool = True
    docker: list[str] = Field(default_factory=lambda: ["docker"], description="argv prefix replacing `docker`")
    nginx_test: list[str] = Field(default_factory=lambda: ["nginx", "-t", "-q"])
    nginx_reload: list[str] = Field(default_factory=lambda: ["nginx", "-s", "reload"])
    # App deployments (group data `app_deploys`); None in a file of the release before: `deploy` then refuses
    apps: AppDeploySettings | None = None


@dataclass(frozen=True)
class EdgeHost:
    settings: EdgeSettings
    config: EdgeHostConfig


def load_edge_host(path: Path) -> EdgeHost:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise EdgeConfigError(f"{path}: cannot read the edge settings: {exc}") from None
    try:
        config = EdgeHostConfig.model_validate(raw)
        secrets: dict[str, Any] = {name: SecretStr(_read_secret(file)) for name, file in config.secret_files.items()}
        settings = config.settings.model_copy(update=secrets)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise EdgeConfigError(f"{path}: {problems}") from None
    return EdgeHost(settings=settings, config=config)


def _read_secret(path: Path) -> str:
    try:
        return read_secret_file(path)
    except SecretFileError as exc:
        raise EdgeConfigError(str(exc)) from None
