"""The platform service (`nextmavens platform serve`) as a systemd unit running as its own unprivileged user, with
the root-owned apply unit it may start through one sudoers rule; nginx serves it at platform_service_domain (the
edge's vhost). It logs in to PostgreSQL as its own role (no superuser). After `apply`: the service reads the master
key that the first apply creates, and its role's grants come with the control migrations that apply runs."""

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd
from pyinfra.operations.util import any_changed

from nextmavens.host.context import host_config
from nextmavens.host.dist import file_sha256, resolve_wheel
from nextmavens.host.facts import SecretFileKeys
from nextmavens.host.operations import notice, postgres_login_role, private_copy, secret_copies, sudoers_dropin
from nextmavens.host.platformservice import (
    APPLY_UNIT,
    CLOUDINARY_KEY_SECRET,
    EMAIL_SECRETS,
    EVOLUTION_KEY_SECRET,
    META_KEY_SECRET,
    METRICS_DB_PASSWORD,
    PGPASS_SECRET,
    PLATFORM_DB_PASSWORD,
    SUDOERS_FILE,
    UNIT,
    email_environment,
    email_secret_files,
    evolution_key_file,
    master_key_copy,
    master_key_source,
    meta_key_file,
    pgpass_file,
    pgpass_prefix,
    privileged_command,
    root_cloudinary_key,
    secrets_dir,
)
from nextmavens.host.render import template_context
from nextmavens.naming import CONTROL_DATABASE, METRICS_ROLE, PLATFORM_ROLE
from nextmavens.templates import render
from tasks.stacks import PLATFORM_SECRETS, shared_postgres_admin


@deploy("The platform service")
def platform():
    config = host_config()
    user = config.platform_user
    # The dashboard serves Inter from Debian's package (nextmavens.platform.dashboard.assets reads it there).
    apt.packages(name="Inter for the dashboard", packages=["fonts-inter"])
    files.directory(
        name="The service's secrets directory (its user's, 0700)",
        path=secrets_dir(config),
        user=user,
        group=user,
        mode="700",
    )
    # Its grants on the control database are a control migration's (the apply before this task runs it). The
    # metrics collector's role (nextmavens-metrics.service, tasks/app.py) likewise, migration 1020's: here, after the
    # apply, because CONNECT needs the control database to exist (until then the collector's minutes fail to connect
    # and it tries again the next minute).
    logins = {PLATFORM_ROLE: PLATFORM_DB_PASSWORD, METRICS_ROLE: METRICS_DB_PASSWORD}
    roles = {
        name: postgres_login_role(
            name=f"PostgreSQL role {name}: logs in, no superuser, creates nothing, CONNECT on {CONTROL_DATABASE}",
            **shared_postgres_admin(config),
            role=name,
            database=CONTROL_DATABASE,
            password_env=password_env,
        )
        for name, password_env in host.loop(logins.items())
    }
    role = roles[PLATFORM_ROLE]
    # postgres-meta's key: the connection the service sends it per request (types, Studio's meta gate) is sealed with it
    copies = {
        pgpass_file(config): PGPASS_SECRET,
        evolution_key_file(config): EVOLUTION_KEY_SECRET,
        meta_key_file(config): META_KEY_SECRET,
    }
    pgpass = secret_copies(
        name="The service's pgpass line and keys (its user's, 0600), from the secrets file",
        secrets_file=config.secrets_file,
        files=copies,
        prefixes={pgpass_file(config): pgpass_prefix(config)},
        owner=user,
    )
    # Email and media (issue 17): only the keys the secrets file holds (names read, never values) are copied and named
    # in the unit; the rest stay off (503/404) with a notice saying which key turns each on.
    # The keys this deploy generates (tasks/stacks.py) count as present: on a fresh host the fact predates them.
    present = {*host.get_fact(SecretFileKeys, path=config.secrets_file)["keys"], *PLATFORM_SECRETS}
    email_files = email_secret_files(config, present)
    email_copies = secret_copies(  # never empty: the inbound secret is a generated one
        name="The service's email and media secrets (its user's, 0600), from the secrets file",
        secrets_file=config.secrets_file,
        files=email_files,
        owner=user,
    )
    missing = [key for key in EMAIL_SECRETS if key not in email_files.values()]
    if CLOUDINARY_KEY_SECRET in email_files.values():
        secret_copies(
            name="Root's Cloudinary credentials for the media-offload and storage-monitor jobs (0600)",
            secrets_file=config.secrets_file,
            files={root_cloudinary_key(config): CLOUDINARY_KEY_SECRET},
        )
    if missing:
        notice(
            name=f"Email/media OFF until the secrets file {config.secrets_file} holds: {', '.join(missing)}",
            message="each KEY=value line (unquoted) turns one on at the next deploy"
            + ("; CLOUDINARY_KEY also needs group data cloudinary_cloud" if config.cloudinary_cloud is None else ""),
        )
    master_key = private_copy(
        name="The service's copy of the master key (its user's, 0600)",
        src=master_key_source(config),
        dest=master_key_copy(config),
        owner=user,
    )
    wheel = resolve_wheel(config.nextmavens_wheel)
    # The package the venv holds is named in the service's unit: a new one changes the unit and restarts the service.
    context = {
        **template_context(config),
        "platform_package": f"{wheel.name} sha256:{file_sha256(wheel)}",
        "platform_email_environment": email_environment(config, present),
    }
    rendered = {
        f"/etc/systemd/system/{UNIT}": render("templates/systemd/platform.service.j2", **context),
        f"/etc/systemd/system/{APPLY_UNIT}": render("templates/systemd/platform-apply.service.j2", **context),
        privileged_command(config): render("templates/nextmavens/nextmavens-privileged.j2", **context),
    }
    changed = [
        files.put(
            name=f"{path}",
            src=StringIO(text),
            dest=path,
            mode="755" if path == privileged_command(config) else "644",
            user="root",
            group="root",
        )
        for path, text in rendered.items()
    ]
    sudoers_dropin(
        name=f"sudoers: {user} may run `{privileged_command(config)} apply --yes --json | container-logs ...` only",
        path=SUDOERS_FILE,
        content=render("templates/sudoers/platform.j2", **context),
    )
    units_changed = any_changed(*changed)
    restart = any_changed(*changed, role, pgpass, email_copies, master_key)
    systemd.daemon_reload(name="systemd daemon-reload for the platform units", _if=units_changed)
    systemd.service(
        name=f"{UNIT} restarted (its unit, the package it runs or its credential changed)",
        service=UNIT,
        restarted=True,
        _if=restart,
    )
    systemd.service(name=f"{UNIT} running and enabled", service=UNIT, running=True, enabled=True)
