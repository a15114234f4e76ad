"""Pure builders of the shell commands our custom operations yield, and the decisions behind them.

No pyinfra import: facts are passed in as plain values, so tests compare exact strings.
Every argument goes through shlex.quote / shlex.join.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SUPPORTED_OS = {("ubuntu", "24.04"), ("debian", "12"), ("debian", "13")}


def unsupported_os_reason(os_release: Mapping[str, str]) -> str | None:
    """None when /etc/os-release names a supported release, else why not."""
    key = (os_release.get("ID", "").lower(), os_release.get("VERSION_ID", ""))
    if key in SUPPORTED_OS:
        return None
    pretty = os_release.get("PRETTY_NAME") or f"{key[0] or 'unknown OS'} {key[1]}".strip()
    supported = ", ".join(f"{name} {version}" for name, version in sorted(SUPPORTED_OS))
    return f"unsupported OS {pretty!r}: this deploy supports {supported}"


# --- ufw -----------------------------------------------------------------------------------------


def ufw_desired_rules(ssh_port: int, allowed: Sequence[str]) -> list[str]:
    """Rules as `ufw show added` prints them (without the leading 'ufw'); SSH always first."""
    rules = [f"allow {ssh_port}/tcp", *(f"allow {rule}" for rule in allowed)]
    return list(dict.fromkeys(rules))


def ufw_commands(
    state: Mapping, ssh_port: int, allowed: Sequence[str], prune: bool, incoming: str, outgoing: str
) -> list[str]:
    """The ufw commands that take `state` (the UfwState fact) to the desired firewall, in safe order:
    add rules (SSH first), delete unknown ones (never SSH), set defaults, enable last."""
    desired = ufw_desired_rules(ssh_port, allowed)
    present = list(state.get("rules", []))
    commands = [shlex.join(["ufw", *rule.split()]) for rule in desired if rule not in present]
    if prune:
        commands += [shlex.join(["ufw", "delete", *rule.split()]) for rule in present if rule not in desired]
    defaults = state.get("defaults", {})
    for direction, policy in (("incoming", incoming), ("outgoing", outgoing)):
        if defaults.get(direction) != policy:
            commands.append(shlex.join(["ufw", "default", policy, direction]))
    if not state.get("active"):
        commands.append("ufw --force enable")
    return commands


# --- docker networks ------------------------------------------------------------------------------


def network_subnet_mismatch(network: str, want: str, have: Sequence[str]) -> str:
    """Why a deploy stops when group data moved a fixed network's subnet, and the operator's way through."""
    return (
        f"docker network {network} has subnet {' '.join(have) or '(none)'}, group data says {want}: the deploy "
        f"does not recreate a network under running containers. Stop the containers on it "
        f"(`docker network inspect {network}`), run `docker network rm {network}` and deploy again"
    )


# --- docker compose ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComposeProject:
    directory: str  # on the host, holds compose.yaml
    name: str  # compose project name
    env_file: str  # the host's secrets file, interpolated into compose.yaml

    def base(self) -> list[str]:
        return [
            "docker",
            "compose",
            "--project-directory",
            self.directory,
            "-p",
            self.name,
            "--env-file",
            self.env_file,
            "-f",
            f"{self.directory}/compose.yaml",
        ]

    def config_hashes(self) -> str:
        return shlex.join([*self.base(), "config", "--hash", "*"])

    def containers(self) -> str:
        fmt = '{{.Label "com.docker.compose.service"}} {{.Label "com.docker.compose.config-hash"}} {{.State}}'
        label = f"label=com.docker.compose.project={self.name}"
        return shlex.join(["docker", "ps", "-a", "--filter", label, "--format", fmt])

    def validate_then_up(self) -> str:
        # `config --quiet` validates without printing the interpolated secrets.
        config = shlex.join([*self.base(), "config", "--quiet"])
        up = shlex.join([*self.base(), "up", "-d", "--remove-orphans"])
        return f"{config} && {up}"


def compose_drift(want: Mapping[str, str], have: Mapping[str, tuple[str, str]]) -> list[str]:
    """Why the running containers differ from the rendered files; empty when they match.

    want: service -> config hash of the rendered files (`docker compose config --hash '*'`);
    have: service -> (config-hash label, state) of the project's containers.
    """
    if not want:
        return ["the rendered compose files give no service hashes yet"]
    reasons = []
    for service, digest in sorted(want.items()):
        if service not in have:
            reasons.append(f"{service}: no container")
            continue
        label, state = have[service]
        if label != digest:
            reasons.append(f"{service}: container config differs from the rendered files")
        if state != "running":
            reasons.append(f"{service}: container is {state}")
    reasons += [f"{service}: orphan container" for service in sorted(set(have) - set(want))]
    return reasons


# --- secrets -------------------------------------------------------------------------------------


def secret_commands(path: str, state: Mapping, wanted: Mapping[str, int]) -> list[str]:
    """Append each missing KEY=<random hex> to `path`, generated on the host (never sent, never
    printed); keep the file root-owned and 0600. `wanted` maps key -> random bytes."""
    commands: list[str] = []
    qpath = shlex.quote(path)
    if not state.get("exists"):
        directory = shlex.quote(path.rsplit("/", 1)[0] or "/")
        commands.append(f"install -d -m 0700 {directory} && install -m 0600 /dev/null {qpath}")
    elif state.get("mode") != "600" or state.get("owner") != "root":
        commands.append(f"chown root:root {qpath} && chmod 0600 {qpath}")
    for key, nbytes in wanted.items():
        if key in state.get("keys", ()):
            continue
        random_hex = f"$(od -An -tx1 -N{int(nbytes)} /dev/urandom | tr -d ' \\n')"
        commands.append(f'(umask 077 && printf "%s=%s\\n" {shlex.quote(key)} "{random_hex}" >> {qpath})')
    return commands


# --- swap ----------------------------------------------------------------------------------------


def swap_size_for(ram_mb: int, setting: int) -> int:
    """Swap size in MiB: the setting when >= 0, else sized for the host (up to 2 GiB RAM: twice
    the RAM; above: half the RAM, capped at 4 GiB)."""
    if setting >= 0:
        return setting
    if ram_mb <= 2048:
        return ram_mb * 2
    return min(ram_mb // 2, 4096)


def swap_commands(path: str, state: Mapping, size_mb: int) -> list[str]:
    qpath = shlex.quote(path)
    have_mb = int(state.get("size_bytes") or 0) // (1024 * 1024)
    active = path in state.get("active", ())
    if size_mb == 0:
        if not state.get("size_bytes"):
            return []
        return [f"swapoff {qpath} 2>/dev/null; rm -f {qpath}"]
    commands = []
    if have_mb != size_mb:
        commands.append(
            f"(swapoff {qpath} 2>/dev/null; rm -f {qpath}; "
            f"fallocate -l {int(size_mb)}M {qpath} || dd if=/dev/zero of={qpath} bs=1M count={int(size_mb)})"
            f" && chmod 600 {qpath} && mkswap {qpath} >/dev/null && swapon {qpath}"
        )
    elif not active:
        commands.append(f"swapon {qpath}")
    return commands


# --- postgres bootstrap --------------------------------------------------------------------------


# Constant SQL: names and the password reach it as psql variables (-v / \getenv), quoted by psql.
ROLE_SQL = (
    "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'owner', :'pw') "
    "WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner') \\gexec"
)
DATABASE_SQL = (
    "SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner') "
    "WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \\gexec"
)
REVOKE_SQL = "SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \\gexec"
CONNECT_SQL = "\\connect :db"
SCHEMA_SQL = "SELECT format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', :'schema_{i}', :'owner') \\gexec"


@dataclass(frozen=True)
class PgDatabase:
    """A database the platform needs in the shared Postgres (stacks/<name>/stack.yaml `databases`)."""

    database: str
    owner: str
    password_env: str | None = None  # create `owner` as a login role with this secret's value
    schemas: tuple[str, ...] = ()
    private: bool = True  # REVOKE ALL ... FROM PUBLIC (never on a shared database like postgres)


def postgres_bootstrap_sql(db: PgDatabase) -> list[str]:
    """psql input creating what is missing: role, database, schemas. Idempotent on its own, so a
    stale fact can never make it fail."""
    lines = [f"\\getenv pw {db.password_env}", ROLE_SQL] if db.password_env else []
    lines += [DATABASE_SQL]
    lines += [REVOKE_SQL] if db.private else []
    if db.schemas:
        lines += [CONNECT_SQL, *(SCHEMA_SQL.format(i=i) for i in range(len(db.schemas)))]
    return lines


def psql_argv(container: str, admin_user: str, extra_env: Sequence[str] = (), *args: str) -> list[str]:
    """psql inside the Postgres container over TCP with the admin password (PGPASSWORD passed through
    by name from this shell, so no secret is on a command line)."""
    env = [f for name in ("PGPASSWORD", *extra_env) for f in ("-e", name)]
    return [
        "docker", "exec", "-i", *env, container,
        "psql", "-h", "127.0.0.1", "-U", admin_user, "-v", "ON_ERROR_STOP=1", "-q", *args,
    ]  # fmt: skip


def load_secrets(secrets_file: str, admin_password_env: str) -> str:
    return f'set -a && . {shlex.quote(secrets_file)} && set +a && export PGPASSWORD="${admin_password_env}"'


def wait_for_postgres(container: str, admin_user: str, seconds: int) -> str:
    ready = shlex.join(["docker", "exec", container, "pg_isready", "-q", "-h", "127.0.0.1", "-U", admin_user])
    return f"for _ in $(seq {int(seconds)}); do {ready} && break; sleep 1; done"


@dataclass(frozen=True)
class PgLoginRole:
    """A login role that is no superuser and may create nothing (the platform service's), with CONNECT on one
    database; its password is the host's secrets file's `password_env`."""

    role: str
    database: str
    password_env: str

    # rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, has a password, CONNECT
    WANTED = "t f f f f f t t"

    def __post_init__(self) -> None:
        for name in (self.role, self.database):
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                raise ValueError(f"not a plain PostgreSQL name: {name!r}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.password_env):
            raise ValueError(f"not a secret key name: {self.password_env!r}")

    # psql input (the names as variables, see psql_variables): one line of t/f in WANTED's order; no line when the
    # role does not exist (an error, so no line either, when the database does not).
    STATE_SQL = (
        "SELECT concat_ws(' ', r.rolcanlogin, r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolreplication,"
        " r.rolbypassrls, a.rolpassword IS NOT NULL, has_database_privilege(r.rolname, :'db', 'CONNECT'))"
        " FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid WHERE r.rolname = :'role';"
    )

    def psql_variables(self) -> list[str]:
        return ["-v", f"role={self.role}", "-v", f"db={self.database}"]

    def converged(self, state: str) -> bool:
        return " ".join(state.split()) == self.WANTED

    def sql(self) -> list[str]:
        """psql input: the role created if missing, its attributes and password set, CONNECT granted. The password
        reaches the statement as a psql variable, and this session logs no statement (nor one that fails)."""
        return [
            f"\\getenv pw {self.password_env}",
            "SET log_statement = 'none';",
            "SET log_min_error_statement = 'panic';",
            "SET pgaudit.log = 'none';",
            "SELECT format('CREATE ROLE %I', :'role')"
            " WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \\gexec",
            "SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
            " PASSWORD %L', :'role', :'pw') \\gexec",
            "SELECT format('GRANT CONNECT ON DATABASE %I TO %I', :'db', :'role') \\gexec",
        ]


def postgres_login_role_command(
    container: str, admin_user: str, secrets_file: str, admin_password_env: str, login: PgLoginRole
) -> str:
    feed = "printf '%s\\n' " + " ".join(shlex.quote(line) for line in login.sql())
    psql = shlex.join(
        psql_argv(
            container, admin_user, [login.password_env], "-d", "postgres", *login.psql_variables(),
        )
    )  # fmt: skip
    return (
        f'{load_secrets(secrets_file, admin_password_env)} && [ -n "${{{login.password_env}:-}}" ] && '
        f"{{ {wait_for_postgres(container, admin_user, 90)}; {feed} | {psql} >/dev/null; }}"
    )


def postgres_bootstrap_command(
    container: str, admin_user: str, secrets_file: str, admin_password_env: str, db: PgDatabase
) -> str:
    feed = "printf '%s\\n' " + " ".join(shlex.quote(line) for line in postgres_bootstrap_sql(db))
    variables = [
        f"db={db.database}",
        f"owner={db.owner}",
        *(f"schema_{i}={s}" for i, s in enumerate(db.schemas)),
    ]
    extra_env = [db.password_env] if db.password_env else []
    psql = shlex.join(
        psql_argv(container, admin_user, extra_env, "-d", "postgres", *(a for v in variables for a in ("-v", v)))
    )
    return (
        f"{load_secrets(secrets_file, admin_password_env)} && "
        f"{wait_for_postgres(container, admin_user, 90)}; {feed} | {psql} >/dev/null"
    )


# --- sshd ----------------------------------------------------------------------------------------


def sshd_install_command(staged: str, dropin: str) -> str:
    """Move the staged drop-in into place only if `sshd -t` accepts the result; otherwise put the
    old file back and fail. Reload (not restart) so the connection running the deploy survives."""
    s, d = shlex.quote(staged), shlex.quote(dropin)
    prev = shlex.quote(dropin + ".prev")
    return (
        f"mkdir -p /run/sshd && (cp -p {d} {prev} 2>/dev/null || rm -f {prev}) && install -m 0600 {s} {d}"
        f" && if sshd -t; then rm -f {prev} {s};"
        " if systemctl is-active --quiet ssh.socket; then systemctl daemon-reload"
        " && systemctl restart ssh.socket; fi;"
        " systemctl try-reload-or-restart ssh.service;"
        f" else if [ -f {prev} ]; then mv {prev} {d}; else rm -f {d}; fi;"
        " echo 'sshd -t refused the new configuration; the previous one is kept' >&2; exit 1; fi"
    )


# --- the nextmavens venv -------------------------------------------------------------------------


@dataclass(frozen=True)
class LockedVenv:
    """A venv built beside the live one (`build`, under `builds_dir`) from the lock and the wheel, then swapped in:
    `venv` becomes a symlink to it. Until the swap the live venv is untouched, so a failed install leaves it working.
    `find_links`: a directory of uploaded wheels, installed from alone (no index); None: the host's index.
    `check`: a command of the new venv's bin/ that must succeed before the swap."""

    venv: str
    builds_dir: str
    digest: str
    lock: str
    wheel: str
    find_links: str | None = None
    check: tuple[str, ...] = ("nextmavens", "--help")

    @property
    def build(self) -> str:
        return f"{self.builds_dir}/{self.digest[:16]}"

    @property
    def marker(self) -> str:
        return f"{self.venv}/.nextmavens-install.sha256"

    def commands(self) -> list[str]:
        b, v, builds = shlex.quote(self.build), shlex.quote(self.venv), shlex.quote(self.builds_dir)
        # -I and no PYTHONPATH: what the deploy's own environment holds must not count as installed
        pip = [f"{self.build}/bin/python", "-I", "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
        pip.append("--quiet")
        source = ["--no-index", "--find-links", self.find_links] if self.find_links else []
        swap = shlex.quote(f"{self.venv}.swap")
        return [
            f"mkdir -p {builds} && rm -rf {b} && python3 -m venv {b}",
            shlex.join([*pip, "--require-hashes", "--no-deps", *source, "--requirement", self.lock]),
            shlex.join([*pip, "--no-deps", self.wheel]),
            # every dependency of every installed distribution is there, and the program starts
            f"{b}/bin/python -I -m pip check --disable-pip-version-check >/dev/null && "
            f"env -u PYTHONPATH {shlex.join([f'{self.build}/bin/{self.check[0]}', *self.check[1:]])} >/dev/null",
            f"echo {shlex.quote(self.digest)} > {shlex.quote(self.build + '/.nextmavens-install.sha256')}",
            # A venv left by an earlier release is a directory: kept beside the builds as the one to go back to.
            f"prev=$(readlink -f {v} || true); "
            f'if [ -d {v} ] && [ ! -L {v} ]; then prev={builds}/replaced-$(date +%s); mv -T {v} "$prev"; fi; '
            f"ln -sfn {b} {swap} && mv -T {swap} {v} && "
            f'for old in {builds}/*; do [ "$old" = {b} ] || [ "$old" = "$prev" ] || rm -rf "$old"; done',
        ]


def sudoers_install_command(staged: str, dropin: str) -> str:
    """Install the staged sudoers drop-in (root, 0440) only if `visudo -cf` accepts it; otherwise delete it and
    fail, keeping the installed one."""
    s, d = shlex.quote(staged), shlex.quote(dropin)
    return (
        f"if visudo -cqf {s}; then install -m 0440 -o root -g root {s} {d} && rm -f {s};"
        f" else rm -f {s}; echo 'visudo refused the new sudoers rule; the previous one is kept' >&2; exit 1; fi"
    )
