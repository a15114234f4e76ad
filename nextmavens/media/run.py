"""Running offload passes on the host: `nextmavens media offload` (the timer's) and the storage monitor's pass
before a prune. Its settings: NEXTMAVENS_CLOUDINARY_CLOUD (the cloud name), NEXTMAVENS_CLOUDINARY_KEY_FILE (a 0600
file holding `api_key:api_secret`), NEXTMAVENS_CLOUDINARY_URL (default https://api.cloudinary.com); the projects'
storage folders are `<storage_root>/<ref>`, storage_root from the edge settings (NEXTMAVENS_EDGE_CONFIG) or
NEXTMAVENS_STORAGE_ROOT. A policy declaring `references` logs in as the project's owner role, its password unsealed
from the control database (NEXTMAVENS_DSN and NEXTMAVENS_MASTER_KEY, as the nextmavens-env wrapper sets them)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

from nextmavens.files import read_secret_file
from nextmavens.manifest.loader import load_manifests
from nextmavens.media.cloudinary import DEFAULT_URL, CloudinaryClient
from nextmavens.media.offload import OffloadReport, offload_pass
from nextmavens.media.references import ReferencesError

log = logging.getLogger("nextmavens.media")

DEFAULT_STORAGE_ROOT = "/var/lib/nextmavens/storage"  # the edge settings' default (edge/settings.py storage_root)


class OffloadSettingsError(Exception):
    pass


def client_from_env(environ: Mapping[str, str]) -> CloudinaryClient:
    cloud, key_file = environ.get("NEXTMAVENS_CLOUDINARY_CLOUD"), environ.get("NEXTMAVENS_CLOUDINARY_KEY_FILE")
    if not cloud or not key_file:
        raise OffloadSettingsError("media offload needs NEXTMAVENS_CLOUDINARY_CLOUD and NEXTMAVENS_CLOUDINARY_KEY_FILE")
    api_key, _, api_secret = read_secret_file(Path(key_file), "Cloudinary's key file").partition(":")
    if not api_key or not api_secret:
        raise OffloadSettingsError(f"{key_file} must hold api_key:api_secret")
    return CloudinaryClient(cloud, api_key, api_secret, environ.get("NEXTMAVENS_CLOUDINARY_URL") or DEFAULT_URL)


def storage_root(environ: Mapping[str, str]) -> Path:
    edge_config = environ.get("NEXTMAVENS_EDGE_CONFIG")
    if edge_config:
        from nextmavens.edge.settingsfile import load_edge_host

        return Path(load_edge_host(Path(edge_config)).settings.storage_root)
    return Path(environ.get("NEXTMAVENS_STORAGE_ROOT") or DEFAULT_STORAGE_ROOT)


OWNER_STATEMENT_TIMEOUT_MS = 30_000


def owner_login(environ: Mapping[str, str], ref: str) -> str:
    """The conninfo of project `ref`'s owner role into its database; ReferencesError (naming no secret) if none."""
    from nextmavens.control.db import owner_dsn
    from nextmavens.engine.session import Engine, EngineConfig
    from nextmavens.naming import project_names

    dsn, key = environ.get("NEXTMAVENS_DSN"), environ.get("NEXTMAVENS_MASTER_KEY")
    if not dsn or not key:
        raise ReferencesError("references need NEXTMAVENS_DSN and NEXTMAVENS_MASTER_KEY (the nextmavens-env wrapper)")
    with Engine(EngineConfig(dsn=dsn, master_key_path=Path(key), actor="media-offload")).secrets() as store:
        secrets = store.project_secrets(ref)
    password = secrets.passwords.get(project_names(ref).owner) if secrets else None
    if password is None:
        raise ReferencesError(f"{ref} has no owner login yet (not applied)")
    return owner_dsn(dsn, ref, password, OWNER_STATEMENT_TIMEOUT_MS, application_name="nextmavens-media")


def offload_projects(
    projects_dir: Path,
    root: Path,
    client: CloudinaryClient,
    now: float | None = None,
    environ: Mapping[str, str] = os.environ,
) -> dict[str, OffloadReport]:
    """One pass for every active project whose manifest declares media_offload."""
    reports = {}
    for project in load_manifests(projects_dir).projects:
        policy = project.manifest.media_offload
        if policy is None or project.manifest.state != "active":
            continue
        login = partial(owner_login, environ, project.ref)
        reports[project.key] = offload_pass(
            root / project.ref, project.ref, policy, client, now or time.time(), owner_login=login
        )
    return reports


def monitor_pass(projects_dir: Path, environ: Mapping[str, str] = os.environ) -> Callable[[], bool] | None:
    """What the storage monitor runs before a prune: None when no project declares media_offload (the prune goes as
    before); else a pass over them all (each bounded by its deadline), True once it ran. A project whose files stayed
    (an upload refused, references that could not be rewritten, a trigger that hung) is logged and does not hold back
    the host's prune, which frees Docker's and the journal's space, never a project's files; False only when the
    pass could not run at all (no Cloudinary settings, unreadable manifests)."""
    try:
        declared = any(p.manifest.media_offload for p in load_manifests(projects_dir).projects)
    except Exception:  # noqa: BLE001 - unreadable manifests: no offload, and the prune is not held back
        return None
    if not declared:
        return None

    def run() -> bool:
        try:
            reports = offload_projects(projects_dir, storage_root(environ), client_from_env(environ), environ=environ)
        except Exception as exc:  # noqa: BLE001 - any failure means no pass succeeded
            log.warning("media offload pass failed: %s", exc)
            return False
        for key, report in reports.items():
            if not report.ok:
                log.warning("media offload of %s kept %d file(s); the prune goes ahead", key, len(report.failed))
        return True

    return run
