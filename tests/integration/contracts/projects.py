"""Two projects applied by the real engine, and what the edge renders for them with their real secrets."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import jwt
import psycopg

from nextmavens.edge.services import RenderedServices, render_project_services
from nextmavens.keys import ProjectSecrets
from nextmavens.manifest.loader import load_manifests
from nextmavens.manifest.models import ProjectManifest
from nextmavens.naming import ProjectNames, project_names
from tests.support.edgesamples import settings
from tests.support.engine import Stage
from tests.support.projects import write_project

# shop takes non-default values, so a renderer or the engine ignoring them shows.
SHOP_MAX_ROWS = 3
SHOP_JWT_EXPIRY = 7200


@dataclass(frozen=True)
class Applied:
    names: ProjectNames
    manifest: ProjectManifest
    secrets: ProjectSecrets
    services: RenderedServices

    @property
    def rest_env(self) -> dict[str, str]:
        return self.services.env_files["rest.env"]

    @property
    def auth_env(self) -> dict[str, str]:
        return self.services.env_files["auth.env"]


def apply_two_projects(stage: Stage) -> dict[str, Applied]:
    write_project(stage.projects, "acme", "shop", api={"max_rows": SHOP_MAX_ROWS, "jwt_expiry": SHOP_JWT_EXPIRY})
    write_project(stage.projects, "globex", "desk")
    stage.apply()
    manifests = load_manifests(stage.projects)
    out = {}
    with stage.engine().secrets() as store:
        for ref in ("shop", "desk"):
            loaded = manifests.by_ref(ref)
            secrets = store.project_secrets(ref)
            assert loaded is not None and secrets is not None
            out[ref] = Applied(
                names=project_names(ref),
                manifest=loaded.manifest,
                secrets=secrets,
                services=render_project_services(settings(), loaded.manifest, secrets),
            )
    return out


def user_token(project: Applied, sub: str, email: str) -> str:
    """An access token as GoTrue signs it, from the settings rendered for GoTrue (auth.env)."""
    env = project.auth_env
    now = int(time.time())
    claims = {
        "sub": sub,
        "email": email,
        "aud": env["GOTRUE_JWT_AUD"],
        "role": env["GOTRUE_JWT_DEFAULT_GROUP_NAME"],
        "iat": now,
        "exp": now + int(env["GOTRUE_JWT_EXP"]),
    }
    return jwt.encode(claims, env["GOTRUE_JWT_SECRET"], algorithm="HS256")


def login_rendered(stage: Stage, uri: str) -> psycopg.Connection:
    """Log in with the role, password and database of a rendered service URI (PGRST_DB_URI,
    GOTRUE_DB_DATABASE_URL), at this test server instead of the edge's `db` host."""
    parts = urlsplit(uri)
    return psycopg.connect(
        stage.server.dsn_for(
            unquote(parts.path.lstrip("/")), user=unquote(parts.username or ""), password=unquote(parts.password or "")
        ),
        autocommit=True,
        connect_timeout=5,
    )
