"""Custom pyinfra operations. Each reads its facts in its body (re-run at execute time, so decisions
see the host as it is then), yields only the commands needed, and says why when it yields none."""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Mapping, Sequence
from io import BytesIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation
from pyinfra.api.exceptions import OperationError
from pyinfra.facts.server import Users

from nextmavens.host import commands, publish
from nextmavens.host.facts import (
    ComposeState,
    DockerNetworks,
    DockerNetworkSubnets,
    FileSha256,
    ManagedUnits,
    ManifestRepoState,
    OsRelease,
    PostgresLoginRole,
    PostgresObjects,
    PrivateCopy,
    PythonTarget,
    SecretCopies,
    SecretFileKeys,
    SwapState,
    UfwState,
)
from nextmavens.host.manifestsource import publish_action


@operation()
def supported_os():
    """Stop this host before its first change unless it runs a supported release."""
    reason = commands.unsupported_os_reason(host.get_fact(OsRelease))
    if reason:
        raise OperationError(reason)
    host.noop("the OS release is supported")
    yield from ()


@operation()
def ufw_firewall(
    ssh_port: int,
    allowed: Sequence[str],
    prune: bool = True,
    incoming: str = "deny",
    outgoing: str = "allow",
):
    """ufw with default deny incoming, the SSH port and `allowed` open; adds only missing rules,
    allows SSH before enabling, and issues no ufw command when everything already matches."""
    state = host.get_fact(UfwState)
    todo = commands.ufw_commands(state, ssh_port, allowed, prune, incoming, outgoing)
    if not todo:
        host.noop("ufw is active with exactly the declared rules")
    yield from todo


@operation()
def compose_up(directory: str, project: str, env_file: str):
    """`docker compose up -d` (after `config --quiet` validates) only when the running containers
    differ from the rendered files: config hash label, state, missing or orphan containers."""
    state = host.get_fact(ComposeState, directory=directory, project=project, env_file=env_file)
    reasons = commands.compose_drift(state["want"], state["have"])
    if not reasons:
        host.noop(f"compose project {project} runs its rendered files")
        return
    yield commands.ComposeProject(directory, project, env_file).validate_then_up()


@operation()
def secrets_file(path: str, wanted: Mapping[str, int]):
    """Generate each missing secret once, on the host, into a root-owned 0600 KEY=value file.
    Values never leave the host: commands carry only key names."""
    state = host.get_fact(SecretFileKeys, path=path)
    todo = commands.secret_commands(path, state, wanted)
    if not todo:
        host.noop(f"{path} holds every secret, 0600")
    yield from todo


@operation()
def secret_copies(
    secrets_file: str, files: Mapping[str, str], prefixes: Mapping[str, str] | None = None, owner: str = "root"
):
    """Copy single values out of the secrets file into their own 0600 files of `owner` (dest -> KEY), on the host,
    where a program wants one secret per file; `prefixes` (dest -> text) puts literal text before a value (a pgpass
    line's host:port:database:user:). Commands carry only key names, paths and those prefixes."""
    prefixes = prefixes or {}
    for key in files.values():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"not a secret key name: {key!r}")
    for prefix in prefixes.values():
        if "\n" in prefix:
            raise ValueError("a prefix is one line")
    pairs = "".join(
        f"{dest}={key}" + (f"={prefixes[dest]}" if prefixes.get(dest) else "") + "\n"
        for dest, key in sorted(files.items())
    )
    state = host.get_fact(SecretCopies, secrets_file=secrets_file, files=pairs, owner=owner)
    stale = sorted(dest for dest in files if state.get(dest) != "ok")
    if not stale:
        host.noop(f"{len(files)} secret files hold their values, 0600")
        return
    src = shlex.quote(secrets_file)
    for dest in stale:
        d, tmp = shlex.quote(dest), shlex.quote(dest + ".tmp")
        parent = shlex.quote(dest.rsplit("/", 1)[0] or "/")
        prefix = shlex.quote(prefixes.get(dest, ""))
        yield (
            f"umask 077 && mkdir -p {parent} && rm -f {tmp} && v=$(sed -n 's/^{files[dest]}=//p' {src} | head -n1)"
            f' && [ -n "$v" ] && printf \'%s%s\\n\' {prefix} "$v" > {tmp}'
            f" && chown {shlex.quote(owner)}: {tmp} && chmod 600 {tmp} && mv -f {tmp} {d}"
        )


@operation()
def swap_file(path: str = "/swapfile", size_mb: int = -1):
    """A swap file of `size_mb` MiB (-1: sized for the host's RAM, 0: none), active now.
    Its /etc/fstab line is a separate files.line."""
    state = host.get_fact(SwapState, path=path)
    size = commands.swap_size_for(state["ram_mb"], size_mb)
    todo = commands.swap_commands(path, state, size)
    if not todo:
        host.noop(f"swap file {path} is {size} MiB and active" if size else "no swap file wanted")
    yield from todo


@operation()
def docker_network(network: str, subnet: str | None = None, gateway: str | None = None):
    """A user-defined bridge network (created once, never recreated), with a fixed `subnet` and `gateway` when
    given. An existing network on another subnet stops the deploy: recreating it would cut every container on it."""
    if network in host.get_fact(DockerNetworks):
        if subnet is not None:
            have = host.get_fact(DockerNetworkSubnets, network=network)
            if subnet not in have:
                raise OperationError(commands.network_subnet_mismatch(network, subnet, have))
        host.noop(f"docker network {network} exists")
        return
    fixed = ["--subnet", subnet, "--gateway", gateway] if subnet is not None and gateway is not None else []
    yield shlex.join(["docker", "network", "create", "--driver", "bridge", *fixed, network])


@operation()
def postgres_database(
    container: str,
    admin_user: str,
    secrets_path: str,
    admin_password_env: str,
    database: str,
    owner: str,
    password_env: str | None = None,
    schemas: Sequence[str] = (),
    private: bool = True,
):
    """A database in the shared Postgres, with (when `password_env`) its own login role whose password
    is read from the host's secrets file inside the container, and schemas; only what is missing."""
    db = commands.PgDatabase(database, owner, password_env, tuple(schemas), private)
    state = host.get_fact(
        PostgresObjects,
        container=container,
        admin_user=admin_user,
        database=database,
        secrets_file=secrets_path,
        admin_password_env=admin_password_env,
    )
    missing = [] if owner in state["roles"] or password_env is None else [f"role {owner}"]
    missing += [] if database in state["databases"] else [f"database {database}"]
    missing += [f"schema {s}" for s in schemas if s not in state["schemas"]]
    if not missing:
        host.noop(f"database {database} and its role and schemas exist")
        return
    yield commands.postgres_bootstrap_command(container, admin_user, secrets_path, admin_password_env, db)


@operation()
def postgres_login_role(
    container: str, admin_user: str, secrets_path: str, admin_password_env: str, role: str, database: str,
    password_env: str,
):  # fmt: skip
    """`role` in the shared Postgres: it logs in with the password the host's secrets file holds as `password_env`,
    is no superuser and may create nothing, with CONNECT on `database`; set again only when the fact finds it off."""
    login = commands.PgLoginRole(role, database, password_env)
    state = host.get_fact(
        PostgresLoginRole,
        container=container,
        admin_user=admin_user,
        secrets_file=secrets_path,
        admin_password_env=admin_password_env,
        role=role,
        database=database,
        password_env=password_env,
    )
    if login.converged(state):
        host.noop(f"role {login.role} logs in, no superuser, with CONNECT on {login.database}")
        return
    yield commands.postgres_login_role_command(container, admin_user, secrets_path, admin_password_env, login)


@operation()
def sshd_dropin(path: str, content: str):
    """An sshd drop-in installed only if `sshd -t` accepts it, then a reload that keeps the running
    connection; a refused config leaves the previous file in place and fails the deploy."""
    data = content.encode()
    if host.get_fact(FileSha256, path=path) == hashlib.sha256(data).hexdigest():
        host.noop(f"{path} is up to date")
        return
    staged = f"{path}.staged"
    yield FileUploadCommand(BytesIO(data), staged)
    yield commands.sshd_install_command(staged, path)


@operation()
def private_copy(src: str, dest: str, owner: str):
    """`dest`: a 0600 copy of `src` for `owner` (a secret file another user's program reads, e.g. the master key for
    the platform service), rewritten when it differs; nothing while `src` does not exist yet."""
    state = host.get_fact(PrivateCopy, src=src, dest=dest, owner=owner)
    if state == "ok":
        host.noop(f"{dest} is {owner}'s 0600 copy of {src}")
        return
    if state == "missing":
        host.noop(f"no {src} yet: nothing to copy")
        return
    s, d, tmp, o = shlex.quote(src), shlex.quote(dest), shlex.quote(dest + ".tmp"), shlex.quote(owner)
    yield f"install -m 600 -o {o} -g {o} {s} {tmp} && mv -f {tmp} {d}"


@operation()
def only_own_group(user: str):
    """`user` in no group but its primary one (a service account: never docker, never sudo); pyinfra's server.user
    only adds supplementary groups. A user that does not exist yet (its useradd is in this run) has none."""
    existing = (host.get_fact(Users) or {}).get(user)
    if not existing or not existing["groups"]:
        host.noop(f"{user} is in its own group only")
        return
    yield f"usermod -G '' {shlex.quote(user)}"


@operation()
def sudoers_dropin(path: str, content: str):
    """A sudoers drop-in installed only if `visudo -cf` accepts it (a broken file in sudoers.d breaks every sudo on
    the host); a refused one is deleted and fails the deploy, leaving the previous file in place."""
    data = content.encode()
    if host.get_fact(FileSha256, path=path) == hashlib.sha256(data).hexdigest():
        host.noop(f"{path} is up to date")
        return
    staged = f"{path.rsplit('/', 1)[0]}/.{path.rsplit('/', 1)[1]}.staged"  # a dot: sudo never reads it
    yield FileUploadCommand(BytesIO(data), staged)
    yield commands.sudoers_install_command(staged, path)


@operation()
def venv_locked(
    venv: str,
    builds_dir: str,
    wheel: str,
    wheel_sha256: str,
    lock: str,
    lock_sha256: str,
    find_links: str | None = None,
    check: Sequence[str] = ("nextmavens", "--help"),
):
    """The uploaded wheel and exactly the lock's dependencies (hash-checked) in a venv of their own, rebuilt beside
    the live one and swapped in when the wheel, the lock or the host's Python changed: a marker in the venv holds
    the digest of the three as last installed. `check` (argv in the venv's bin/) must pass before the swap."""
    python = host.get_fact(PythonTarget).get("version", "")
    digest = hashlib.sha256(f"{wheel_sha256}\n{lock_sha256}\n{python}".encode()).hexdigest()
    plan = commands.LockedVenv(venv, builds_dir, digest, lock, wheel, find_links, tuple(check))
    if host.get_fact(FileSha256, path=plan.marker) == hashlib.sha256(f"{digest}\n".encode()).hexdigest():
        host.noop(f"{wheel} and the locked dependencies are installed in {venv}")
        return
    yield from plan.commands()


@operation()
def file_if_missing(path: str, content: str, mode: str = "0644"):
    """Seed a file that something else owns afterwards (e.g. kong.yml, rewritten by the engine):
    written only when absent, never reverted."""
    if host.get_fact(FileSha256, path=path):
        host.noop(f"{path} exists (owned by its writer)")
        return
    yield shlex.join(["install", "-d", path.rsplit("/", 1)[0] or "/"])
    yield FileUploadCommand(BytesIO(content.encode()), path)
    yield shlex.join(["chmod", mode, path])


@operation()
def notice(message: str):
    """Print `message` in the deploy output (as this operation's name and a no-op line); no change."""
    host.noop(message)
    yield from ()


@operation()
def engine_apply(wrapper: str, projects_dir: str, marker: str, inputs_sha256: str):
    """Run `nextmavens apply --projects DIR --yes` on the host when its inputs (manifests, engine wheel,
    stacks) differ from the last successful apply; a failed apply leaves the marker, so the next
    deploy retries. Drift between runs is the reconcile timer's job."""
    if host.get_fact(FileSha256, path=marker) == hashlib.sha256(f"{inputs_sha256}\n".encode()).hexdigest():
        host.noop("the engine already applied these manifests")
        return
    apply = shlex.join([wrapper, "nextmavens", "apply", "--projects", projects_dir, "--yes"])
    yield f"{apply} && echo {shlex.quote(inputs_sha256)} > {shlex.quote(marker)}"


@operation()
def publish_manifests(
    path: str, source: str, commit: str, bundle: bytes, branch: str, owner: str, pull: str, remote_bundle: str
):
    """Fast-forward the host's manifest repository at `path` to `commit` (HEAD of the operator's repository at
    `source`, carried in `bundle`), creating it (or converting an earlier release's plain folder) the first time.
    Fails, before anything is published, when the host has commits `commit` lacks or uncommitted files."""
    action = publish_action(host.get_fact(ManifestRepoState, path=path), source, commit, path, pull)
    if action.kind == "refuse":
        raise OperationError(action.message)
    if action.kind == "none":
        host.noop(action.message)
        return
    yield FileUploadCommand(BytesIO(bundle), remote_bundle)
    yield from publish.publish_commands(action, path, remote_bundle, commit, branch, owner)


@operation()
def prune_units(prefix: str, marker: str, keep: Sequence[str]):
    """Stop, disable and delete the unit files we rendered (<prefix>*, holding `marker`) that are no
    longer declared (a job removed from group data `timers`): removing a job is declarative too."""
    stale = [unit for unit in host.get_fact(ManagedUnits, prefix=prefix, marker=marker) if unit not in keep]
    if not stale:
        host.noop(f"no undeclared {prefix}* units")
        return
    for unit in stale:
        quoted = shlex.quote(unit)
        yield f"systemctl disable --now {quoted} 2>/dev/null; rm -f /etc/systemd/system/{quoted}"
    yield "systemctl daemon-reload"
