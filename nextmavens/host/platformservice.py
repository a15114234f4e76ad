"""The platform service on the host: the names and paths its templates share (templates/systemd/platform*.j2, the
root command it may run, templates/nextmavens/nextmavens-privileged.j2, and its sudoers rule) and how they follow
from validated host data. Pure; tasks/platform.py renders and installs them."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import Any

from nextmavens.host.edgeconfig import evolution_api_url
from nextmavens.host.hostdata import HostData
from nextmavens.host.projectstudios import studio_route
from nextmavens.naming import PLATFORM_ROLE, PLATFORM_UNIT

UNIT = PLATFORM_UNIT  # the doctor's settings name it too
APPLY_UNIT = "nextmavens-platform-apply.service"
# The apply unit's JSON answer: root's (0600), read back by nextmavens-privileged; /run, so never stale across boots.
APPLY_RESULT = "/run/nextmavens-platform-apply.json"
SUDOERS_FILE = "/etc/sudoers.d/nextmavens-platform"  # no dot in the name: sudo skips files with one
# The secrets file's key holding the password of the service's own PostgreSQL role (PLATFORM_ROLE, no superuser):
# the deploy sets it on the role and copies it into the service's pgpass credential.
PLATFORM_DB_PASSWORD = "PLATFORM_DB_PASSWORD"
PGPASS_SECRET = PLATFORM_DB_PASSWORD
# The metrics collector's own role's password (nextmavens.naming.METRICS_ROLE): the nextmavens-env wrapper builds
# NEXTMAVENS_METRICS_DSN from it, which nextmavens-metrics.service uses instead of the admin's NEXTMAVENS_DSN.
METRICS_DB_PASSWORD = "METRICS_DB_PASSWORD"
# ... and Evolution's global key, into the service's key file (its WhatsApp endpoints)
EVOLUTION_KEY_SECRET = "EVOLUTION_API_KEY"
# ... and postgres-meta's CRYPTO_KEY (the stack's), for the meta gate's answers (Studio for a project only)
META_KEY_SECRET = "PG_META_CRYPTO_KEY"
# Where postgres-meta (on the platform network) reaches the shared PostgreSQL: the gate's connections name it.
STUDIO_DB_ADDRESS = "nextmavens-postgres:5432"

# The email and media secrets (issue 17): the secrets file's key -> (the service's 0600 copy, the variable naming it).
# Resend's key and webhook secret and the Cloudinary credentials (`api_key:api_secret`) are the operator's: added to
# the secrets file by hand, each copied (and named in the unit) only once present. The inbound worker's HMAC secret
# is generated on the host (the operator gives the worker the same value with `wrangler secret put`).
INBOUND_EMAIL_SECRET = "INBOUND_EMAIL_SECRET"
CLOUDINARY_KEY_SECRET = "CLOUDINARY_KEY"
EMAIL_SECRETS: dict[str, tuple[str, str]] = {
    "RESEND_API_KEY": ("resend.key", "NEXTMAVENS_RESEND_KEY_FILE"),
    "RESEND_WEBHOOK_SECRET": ("resend-webhook.secret", "NEXTMAVENS_RESEND_WEBHOOK_SECRET_FILE"),
    INBOUND_EMAIL_SECRET: ("inbound-email.secret", "NEXTMAVENS_INBOUND_EMAIL_SECRET_FILE"),
    CLOUDINARY_KEY_SECRET: ("cloudinary.key", "NEXTMAVENS_CLOUDINARY_KEY_FILE"),
}


def privileged_command(config: HostData) -> str:
    return f"{config.platform_dir}/bin/nextmavens-privileged"


def privileged_prefix(config: HostData) -> list[str]:
    """NEXTMAVENS_PLATFORM_PRIVILEGED: the argv the service puts before `apply --yes --json` or `container-logs`."""
    return ["sudo", "-n", privileged_command(config)]


def secrets_dir(config: HostData) -> str:
    """The service's own secrets (its user's, 0700; named after it: the secrets file's folder is root's alone): the
    copies below, and nothing else of the host's."""
    return f"/etc/{config.platform_user}"


def pgpass_file(config: HostData) -> str:
    """The service's pgpass line (its user's, 0600) for the shared PostgreSQL, from the secrets file."""
    return f"{secrets_dir(config)}/pgpass"


def master_key_source(config: HostData) -> str:
    """Where the nextmavens-env wrapper points NEXTMAVENS_MASTER_KEY (the engine creates it at the first apply)."""
    return f"{config.platform_dir}/master.key"


def master_key_copy(config: HostData) -> str:
    """The service's copy of the master key (its user's, 0600): the engine refuses a key file others can read."""
    return f"{secrets_dir(config)}/master.key"


def evolution_key_file(config: HostData) -> str:
    """The service's copy of Evolution's global key (its user's, 0600), from the secrets file."""
    return f"{secrets_dir(config)}/evolution.key"


def meta_key_file(config: HostData) -> str:
    """The service's copy of postgres-meta's CRYPTO_KEY (its user's, 0600), from the secrets file."""
    return f"{secrets_dir(config)}/pg-meta.key"


def email_secret_files(config: HostData, present: Iterable[str]) -> dict[str, str]:
    """The service's 0600 copy -> secrets-file key, for the email and media secrets the secrets file holds (`present`:
    its key names, never values). The Cloudinary key only with group data `cloudinary_cloud` (it names the account)."""
    keys = set(present)
    if config.cloudinary_cloud is None:
        keys.discard(CLOUDINARY_KEY_SECRET)
    return {f"{secrets_dir(config)}/{EMAIL_SECRETS[key][0]}": key for key in EMAIL_SECRETS if key in keys}


def email_environment(config: HostData, present: Iterable[str]) -> dict[str, str]:
    """The unit's NEXTMAVENS_* variables naming those copies (and the Cloudinary cloud beside its key): the service
    answers 503 (or 404 for a hook) for what is not named, instead of failing on a file the deploy did not place."""
    env = {EMAIL_SECRETS[key][1]: path for path, key in email_secret_files(config, present).items()}
    if "NEXTMAVENS_CLOUDINARY_KEY_FILE" in env and config.cloudinary_cloud is not None:
        env["NEXTMAVENS_CLOUDINARY_CLOUD"] = config.cloudinary_cloud
    return dict(sorted(env.items()))


def root_cloudinary_key(config: HostData) -> str:
    """Root's copy of the Cloudinary credentials (0600, beside the secrets file): the nextmavens-env wrapper names it
    to root's jobs (the media-offload and storage-monitor timers, `nextmavens media offload` by hand)."""
    return f"{config.secrets_file.rsplit('/', 1)[0]}/cloudinary.key"


def pgpass_prefix(config: HostData) -> str:
    """host:port:database:user: before the password (libpq's passfile format; the generated password is hex), for
    the service's own role. Any database: the role's grants decide where it may connect (the control database)."""
    return f"127.0.0.1:{config.loopback_ports.postgres}:*:{PLATFORM_ROLE}:"


def platform_paths(config: HostData) -> dict[str, Any]:
    """The platform templates' variables beyond the host data (nextmavens.host.render.template_context adds them)."""
    studios = studio_route(config)
    return {
        "platform_pgpass": pgpass_file(config),
        "platform_db_role": PLATFORM_ROLE,
        "platform_master_key": master_key_copy(config),
        "platform_evolution_url": evolution_api_url(config),
        "platform_evolution_key": evolution_key_file(config),
        "platform_apply_result": APPLY_RESULT,
        "platform_privileged_command": privileged_command(config),
        "platform_privileged_prefix": shlex.join(privileged_prefix(config)),
        # postgres-meta on loopback, asked with a per-request connection (types; Studio's meta gate)
        "platform_postgres_meta": {
            "url": f"http://127.0.0.1:{config.loopback_ports.postgres_meta}",
            "meta_key_file": meta_key_file(config),
            "db_address": STUDIO_DB_ADDRESS,
        },
        # Studio for a project (None: off): the service's settings for it (README "Studio for a project")
        "platform_studio": None
        if studios is None
        else {
            "url": f"https://{studios.domain}",
            "max_running": studios.max_running,
            "idle_minutes": studios.idle_minutes,
        },
        "platform_email_environment": {},  # tasks/platform.py: email_environment() of the secrets file's keys
        "root_cloudinary_key": root_cloudinary_key(config),
    }
