"""The shared stacks (supabase, redis, evolution): secrets generated on the host, compose files
rendered from stacks/<name>/, `up -d` only when the running containers drift from them."""

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files

from nextmavens.host.context import host_config
from nextmavens.host.operations import compose_up, file_if_missing, postgres_database, secrets_file
from nextmavens.host.platformservice import INBOUND_EMAIL_SECRET, METRICS_DB_PASSWORD, PLATFORM_DB_PASSWORD
from nextmavens.host.render import load_stack, render_stack, template_context

# Order matters: Postgres first (the others use it), Redis before Evolution.
STACKS = ("supabase", "redis", "evolution")
# The engine's master key is not one of these: the engine creates its own key file (0600) on first apply,
# at the path the nextmavens-env wrapper gives it in NEXTMAVENS_MASTER_KEY.
# The inbound mail worker's HMAC secret is generated here too: the operator copies it into the worker (wrangler).
PLATFORM_SECRETS: dict[str, int] = {PLATFORM_DB_PASSWORD: 32, INBOUND_EMAIL_SECRET: 32, METRICS_DB_PASSWORD: 32}
POSTGRES_CONTAINER = "nextmavens-postgres"  # container_name in stacks/supabase/compose.yaml.j2
POSTGRES_PASSWORD_ENV = "POSTGRES_PASSWORD"  # the admin password's key in the secrets file
KONG_SEED = '_format_version: "2.1"\n_transform: true\nservices: []\n'


def shared_postgres_admin(config) -> dict[str, str]:
    """How the host's Postgres operations (postgres_database, postgres_login_role) reach the shared Postgres: as its
    admin, inside its container, with the admin password the secrets file holds."""
    return {
        "container": POSTGRES_CONTAINER,
        "admin_user": config.postgres_admin_user,
        "secrets_path": config.secrets_file,
        "admin_password_env": POSTGRES_PASSWORD_ENV,
    }


def wanted_secrets() -> dict[str, int]:
    wanted = dict(PLATFORM_SECRETS)
    for stack in STACKS:
        wanted.update(load_stack(stack).get("secrets") or {})
    return wanted


@deploy("Shared stacks")
def stacks():
    config = host_config()
    context = template_context(config)
    secrets_file(name="Secrets generated on the host (0600)", path=config.secrets_file, wanted=wanted_secrets())
    file_if_missing(
        name="Seed Kong's declarative config (the engine rewrites it)",
        path=f"{config.platform_dir}/kong/kong.yml",
        content=KONG_SEED,
    )
    for stack in host.loop(STACKS):
        directory = f"{config.platform_dir}/stacks/{stack}"
        meta = load_stack(stack)
        files.directory(name=f"{stack}: stack directory", path=directory, mode="755")
        for filename, content in host.loop(sorted(render_stack(stack, context).items())):
            files.put(name=f"{stack}: {filename}", src=StringIO(content), dest=f"{directory}/{filename}", mode="644")
        compose_up(
            name=f"{stack}: compose up -d when containers drift from the files",
            directory=directory,
            project=meta["project"],
            env_file=config.secrets_file,
        )
        for database in host.loop(meta.get("databases") or []):
            db_name = database["database"].format(**context)
            postgres_database(
                name=f"{stack}: database {db_name} in the shared Postgres",
                **shared_postgres_admin(config),
                database=db_name,
                owner=database["owner"].format(**context),
                password_env=database.get("password_env"),
                schemas=database.get("schemas", []),
                private=database.get("private", True),
            )
