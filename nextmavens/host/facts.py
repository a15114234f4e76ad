"""Custom pyinfra facts: one remote command each, whose output `process` parses into plain data.

Every command exits 0 whatever the state (a failing fact command fails the host during prepare), and
facts needing a binary that an earlier operation installs declare `requires_command`.
"""

from __future__ import annotations

import shlex
from typing import Any

from pyinfra.api import FactBase

from nextmavens.host.commands import ComposeProject, PgLoginRole, load_secrets, psql_argv, wait_for_postgres
from nextmavens.host.publish import HostRepo, parse_state, state_command

_SECTION = "--nextmavens-section--"


def _sections(lines: list[str]) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for line in lines:
        if line.strip() == _SECTION:
            parts.append([])
        else:
            parts[-1].append(line)
    return parts


class OsRelease(FactBase[dict]):
    """/etc/os-release as a dict (ID, VERSION_ID, VERSION_CODENAME, PRETTY_NAME, ...)."""

    def command(self) -> str:
        return "cat /etc/os-release 2>/dev/null || true"

    @staticmethod
    def default() -> dict:
        return {}

    def process(self, output: list[str]) -> dict:
        result = {}
        for line in output:
            key, sep, value = line.partition("=")
            if sep and key.strip() and not key.startswith("#"):
                result[key.strip()] = value.strip().strip('"').strip("'")
        return result


_POLICY = {"DROP": "deny", "ACCEPT": "allow", "REJECT": "reject"}


class UfwState(FactBase[dict]):
    """ufw in one command: whether it is active (`ufw status verbose`), the user rules it holds
    (`ufw show added`, as 'allow 22/tcp'), and the default policies (/etc/default/ufw, which holds
    them whether or not ufw is active)."""

    def requires_command(self) -> str:
        return "ufw"

    def command(self) -> str:
        return (
            f"ufw status verbose; echo {_SECTION}; ufw show added; echo {_SECTION}; "
            "grep '^DEFAULT_' /etc/default/ufw || true"
        )

    @staticmethod
    def default() -> dict:
        return {"active": False, "rules": [], "defaults": {}}

    def process(self, output: list[str]) -> dict:
        status, added, defaults = (_sections(output) + [[], [], []])[:3]
        active = any(line.strip() == "Status: active" for line in status)
        rules = [line.strip()[4:] for line in added if line.strip().startswith("ufw ")]
        policies = {}
        for line in defaults:
            key, _, value = line.partition("=")
            direction = {"DEFAULT_INPUT_POLICY": "incoming", "DEFAULT_OUTPUT_POLICY": "outgoing"}.get(key.strip())
            if direction:
                policies[direction] = _POLICY.get(value.strip().strip('"'), value.strip().strip('"'))
        return {"active": active, "rules": rules, "defaults": policies}


class ComposeState(FactBase[dict]):
    """What a compose project should run (service -> config hash of the rendered files on the host)
    and what runs (service -> (config-hash label, state)) in one command."""

    def requires_command(self, directory: str, project: str, env_file: str) -> str:
        return "docker"

    def command(self, directory: str, project: str, env_file: str) -> str:
        compose = ComposeProject(directory, project, env_file)
        return (
            f"(test -f {shlex.quote(directory + '/compose.yaml')} && "
            f"{compose.config_hashes()} 2>/dev/null); echo {_SECTION}; "
            f"{compose.containers()} 2>/dev/null; true"
        )

    @staticmethod
    def default() -> dict:
        return {"want": {}, "have": {}}

    def process(self, output: list[str]) -> dict:
        hashes, containers = (_sections(output) + [[], []])[:2]
        want = {}
        for line in hashes:
            parts = line.split()
            if len(parts) == 2:
                want[parts[0]] = parts[1]
        have: dict[str, tuple[str, str]] = {}
        for line in containers:
            parts = line.split()
            if len(parts) == 3:
                have[parts[0]] = (parts[1], parts[2])
            elif len(parts) == 2:  # a container without the hash label
                have[parts[0]] = ("", parts[1])
        return {"want": want, "have": have}


class SecretFileKeys(FactBase[dict]):
    """The KEY names in a KEY=value secrets file, its mode and owner. Never the values."""

    def command(self, path: str) -> str:
        q = shlex.quote(path)
        return (
            f"if [ -f {q} ]; then stat -c '%a %U' {q}; sed -n 's/^\\([A-Za-z_][A-Za-z0-9_]*\\)=.*/\\1/p' {q}; fi; true"
        )

    @staticmethod
    def default() -> dict:
        return {"exists": False, "keys": []}

    def process(self, output: list[str]) -> dict:
        if not output:
            return {"exists": False, "keys": []}
        mode, _, owner = output[0].partition(" ")
        return {"exists": True, "mode": mode, "owner": owner.strip(), "keys": [x.strip() for x in output[1:]]}


class SwapState(FactBase[dict]):
    """RAM in MiB, active swap devices/files, and the size of one swap file."""

    def command(self, path: str) -> str:
        q = shlex.quote(path)
        return (
            "awk '/^MemTotal:/ {print int($2/1024)}' /proc/meminfo; "
            f"echo {_SECTION}; awk 'NR>1 {{print $1}}' /proc/swaps; echo {_SECTION}; "
            f"stat -c %s {q} 2>/dev/null; true"
        )

    @staticmethod
    def default() -> dict:
        return {"ram_mb": 0, "active": [], "size_bytes": 0}

    def process(self, output: list[str]) -> dict:
        ram, active, size = (_sections(output) + [[], [], []])[:3]
        return {
            "ram_mb": int(ram[0]) if ram and ram[0].strip().isdigit() else 0,
            "active": [line.strip() for line in active if line.strip()],
            "size_bytes": int(size[0]) if size and size[0].strip().isdigit() else 0,
        }


class DockerNetworks(FactBase[list]):
    def requires_command(self) -> str:
        return "docker"

    def command(self) -> str:
        return "docker network ls --format '{{.Name}}' 2>/dev/null || true"

    @staticmethod
    def default() -> list:
        return []

    def process(self, output: list[str]) -> list:
        return [line.strip() for line in output if line.strip()]


class DockerNetworkSubnets(FactBase[list]):
    """The IPv4/IPv6 subnets a docker network was created with (empty when it does not exist)."""

    def requires_command(self, network: str) -> str:
        return "docker"

    def command(self, network: str) -> str:
        fmt = "{{range .IPAM.Config}}{{.Subnet}} {{end}}"
        return f"docker network inspect --format {shlex.quote(fmt)} {shlex.quote(network)} 2>/dev/null || true"

    @staticmethod
    def default() -> list:
        return []

    def process(self, output: list[str]) -> list:
        return [word for line in output for word in line.split()]


class PostgresObjects(FactBase[dict]):
    """Roles and databases in a running Postgres container, and the schemas of one database; empty
    when the container is not running yet (the bootstrap SQL is idempotent either way). Connects over
    TCP with the admin password from the host's secrets file; prints no secret."""

    def requires_command(self, container: str, admin_user: str, database: str, secrets_file: str,
                         admin_password_env: str) -> str:  # fmt: skip
        return "docker"

    def command(
        self, container: str, admin_user: str, database: str, secrets_file: str, admin_password_env: str
    ) -> str:
        cluster = shlex.quote(
            "SELECT 'role ' || rolname FROM pg_roles UNION ALL SELECT 'database ' || datname FROM pg_database"
        )
        schemas = shlex.quote("SELECT 'schema ' || nspname FROM pg_namespace")
        psql = shlex.join(psql_argv(container, admin_user, ()))
        running = f"docker inspect -f '{{{{.State.Running}}}}' {shlex.quote(container)} 2>/dev/null"
        return (
            f'if [ "$({running})" = true ]; then {load_secrets(secrets_file, admin_password_env)} && '
            f"{wait_for_postgres(container, admin_user, 30)}; "
            f"{psql} -d postgres -tAc {cluster} 2>/dev/null; "
            f"{psql} -d {shlex.quote(database)} -tAc {schemas} 2>/dev/null; fi; true"
        )

    @staticmethod
    def default() -> dict:
        return {"roles": [], "databases": [], "schemas": []}

    def process(self, output: list[str]) -> dict:
        result: dict[str, Any] = {"roles": [], "databases": [], "schemas": []}
        for line in output:
            kind, _, name = line.strip().partition(" ")
            if kind in ("role", "database", "schema"):
                result[f"{kind}s"].append(name)
        return result


class PostgresLoginRole(FactBase[str]):
    """A login role's attributes, password set and CONNECT on its database, as PgLoginRole.STATE_SQL's one line;
    '' when the role is missing or the container is not running. Prints no secret."""

    def requires_command(self, container: str, admin_user: str, secrets_file: str, admin_password_env: str,
                         role: str, database: str, password_env: str) -> str:  # fmt: skip
        return "docker"

    def command(self, container: str, admin_user: str, secrets_file: str, admin_password_env: str,
                role: str, database: str, password_env: str) -> str:  # fmt: skip
        login = PgLoginRole(role, database, password_env)
        psql = shlex.join(psql_argv(container, admin_user, (), "-d", "postgres", "-tA", *login.psql_variables()))
        running = f"docker inspect -f '{{{{.State.Running}}}}' {shlex.quote(container)} 2>/dev/null"
        return (
            f'if [ "$({running})" = true ]; then {load_secrets(secrets_file, admin_password_env)} && '
            f"{wait_for_postgres(container, admin_user, 30)}; "
            f"printf '%s\\n' {shlex.quote(login.STATE_SQL)} | {psql} 2>/dev/null; fi; true"
        )

    @staticmethod
    def default() -> str:
        return ""

    def process(self, output: list[str]) -> str:
        return " ".join(line.strip() for line in output if line.strip())


class FileSha256(FactBase[str]):
    """sha256 of a file's content, or '' when it does not exist."""

    def command(self, path: str) -> str:
        return f"sha256sum {shlex.quote(path)} 2>/dev/null | cut -d' ' -f1; true"

    @staticmethod
    def default() -> str:
        return ""

    def process(self, output: list[str]) -> str:
        return output[0].strip() if output else ""


class PythonTarget(FactBase[dict]):
    """The host's python3: {"version": "3.13", "machine": "x86_64", "glibc": "2.41"}, or {} without python3."""

    def command(self) -> str:
        script = "import platform, sys; print(*sys.version_info[:2], platform.machine(), *platform.libc_ver())"
        return f"command -v python3 >/dev/null && python3 -c {shlex.quote(script)} || true"

    @staticmethod
    def default() -> dict:
        return {}

    def process(self, output: list[str]) -> dict:
        fields = output[0].split() if output else []
        if len(fields) != 5 or fields[3] != "glibc":
            return {}
        return {"version": f"{fields[0]}.{fields[1]}", "machine": fields[2], "glibc": fields[4]}


class ManagedUnits(FactBase[list]):
    """Unit files in /etc/systemd/system named <prefix>* that carry `marker` (the header our job
    templates write), so units others install under the same prefix are never touched."""

    def command(self, prefix: str, marker: str) -> str:
        return (
            f"cd /etc/systemd/system && grep -l -F -x -e {shlex.quote(marker)} -- "
            f"{shlex.quote(prefix)}*.service {shlex.quote(prefix)}*.timer 2>/dev/null; true"
        )

    @staticmethod
    def default() -> list:
        return []

    def process(self, output: list[str]) -> list:
        return sorted(line.strip() for line in output if line.strip().endswith((".service", ".timer")))


class SecretCopies(FactBase[dict]):
    """For each file -> KEY: whether the file is the owner's, 0600 and holds exactly its prefix and the value of KEY
    in the secrets file ("ok") or not ("stale"). The comparison runs on the host; no value is ever printed."""

    def command(self, secrets_file: str, files: str, owner: str = "root") -> str:
        """files: "dest=KEY" or "dest=KEY=prefix" lines (a string, so the fact's arguments hash); owner: whose 0600
        files they are."""
        src = shlex.quote(secrets_file)
        checks = []
        for line in sorted(line for line in files.splitlines() if line):
            dest, key, prefix = (line.split("=", 2) + [""])[:3]
            d = shlex.quote(dest)
            checks.append(
                f"v=$(sed -n 's/^{key}=//p' {src} 2>/dev/null | head -n1); "
                f"if [ -f {d} ] && [ \"$(stat -c '%a %U' {d})\" = {shlex.quote('600 ' + owner)} ] && [ -n \"$v\" ] "
                f'&& [ "$(cat {d})" = {shlex.quote(prefix)}"$v" ]; then echo ok {d}; else echo stale {d}; fi'
            )
        return "; ".join(checks) + "; true"

    @staticmethod
    def default() -> dict:
        return {}

    def process(self, output: list[str]) -> dict:
        return {line.split(" ", 1)[1]: line.split(" ", 1)[0] for line in output if " " in line}


class ManifestRepoState(FactBase[Any]):
    """The host's manifest repository: absent, a plain folder, or a repository with its HEAD, uncommitted files and
    recent commits (nextmavens.host.publish.HostRepo)."""

    def command(self, path: str) -> str:
        return state_command(path)

    @staticmethod
    def default() -> Any:
        return HostRepo("absent")

    def process(self, output: list[str]) -> Any:
        return parse_state(output)


class PrivateCopy(FactBase[str]):
    """Whether `dest` is an exact copy of `src`, 0600 and `owner`'s ("ok"), differs ("stale"), or `src` does not
    exist ("missing"). Compared on the host with cmp; no content is printed."""

    def command(self, src: str, dest: str, owner: str) -> str:
        s, d, mode = shlex.quote(src), shlex.quote(dest), shlex.quote(f"600 {owner}")
        return (
            f"if [ ! -f {s} ]; then echo missing; elif [ -f {d} ] && cmp -s {s} {d} "
            f"&& [ \"$(stat -c '%a %U' {d})\" = {mode} ]; then echo ok; else echo stale; fi"
        )

    def process(self, output: list[str]) -> str:
        return output[0].strip() if output else "missing"
