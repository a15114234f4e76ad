"""Load every manifest under a projects directory and validate them together.

Either every manifest is valid and a `ManifestSet` comes back, or `ManifestErrors` lists every problem
found (file, line, field path, message), so an operator fixes them all in one pass. Nothing is applied
from an invalid set: callers only get a set when there is no error.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from nextmavens.manifest.models import (
    INSTANCE_NAME_PATTERN,
    REF_PATTERN,
    SCHEMA_NAME_PATTERN,
    OrgManifest,
    ProjectManifest,
)
from nextmavens.manifest.yamlsource import MAX_BYTES, YamlDocument, YamlSourceError, parse_yaml
from nextmavens.naming import PG_IDENTIFIER_MAX_BYTES, overlong_identifiers

ORG_FILE = "org.yaml"


@dataclass(frozen=True)
class ManifestError:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ManifestErrors(Exception):
    def __init__(self, errors: list[ManifestError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.file, e.line, e.field))
        super().__init__("\n".join(str(e) for e in self.errors))


@dataclass(frozen=True)
class LoadedProject:
    org: str
    path: str  # relative to the projects directory's parent, as the operator sees it in git
    manifest: ProjectManifest
    document: YamlDocument = field(compare=False, repr=False)

    @property
    def ref(self) -> str:
        return self.manifest.ref

    @property
    def key(self) -> str:
        """ORG/PROJECT, as the command line names a project."""
        return f"{self.org}/{self.manifest.ref}"


@dataclass(frozen=True)
class LoadedOrg:
    slug: str
    path: str | None
    manifest: OrgManifest | None


@dataclass(frozen=True)
class ManifestSet:
    orgs: dict[str, LoadedOrg]
    projects: tuple[LoadedProject, ...]

    def by_key(self, key: str) -> LoadedProject | None:
        return next((p for p in self.projects if p.key == key), None)

    def by_ref(self, ref: str) -> LoadedProject | None:
        return next((p for p in self.projects if p.ref == ref), None)


def load_manifests(projects_dir: Path) -> ManifestSet:
    """Read `<dir>/<org>/<project>.yaml` and `<dir>/<org>/org.yaml`; raise ManifestErrors on any problem."""
    if not projects_dir.is_dir():
        raise ManifestErrors([ManifestError(str(projects_dir), 1, "", "projects directory does not exist")])
    display_root = projects_dir.parent
    errors: list[ManifestError] = []
    orgs: dict[str, LoadedOrg] = {}
    projects: list[LoadedProject] = []
    for org_dir in sorted(p for p in projects_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        org = org_dir.name
        if org_dir.is_symlink():
            errors.append(ManifestError(_display(org_dir, display_root), 1, "", NOT_REAL))
            continue
        if not re.fullmatch(REF_PATTERN, org, flags=re.ASCII) or len(org) > 63:
            errors.append(
                ManifestError(
                    _display(org_dir, display_root),
                    1,
                    "",
                    f"organization folder {org!r} must be a lowercase slug",
                )
            )
            continue
        org_manifest: OrgManifest | None = None
        org_path: str | None = None
        for file in sorted(org_dir.iterdir()):
            shown = _display(file, display_root)
            if file.is_dir() or file.name.startswith("."):
                continue
            if file.suffix == ".yml":
                errors.append(ManifestError(shown, 1, "", "manifests end in .yaml, not .yml"))
                continue
            if file.suffix != ".yaml":
                continue
            if file.is_symlink():
                errors.append(ManifestError(shown, 1, "", NOT_REAL))
                continue
            if file.name == ORG_FILE:
                org_path = shown
                org_manifest = _load_model(file, shown, OrgManifest, errors)
                continue
            loaded = _load_model(file, shown, ProjectManifest, errors, keep_document=True)
            if loaded is None:
                continue
            manifest, document = loaded
            if manifest.ref != file.stem:
                errors.append(
                    ManifestError(
                        shown,
                        document.line_of(("ref",)),
                        "ref",
                        f"ref {manifest.ref!r} must match the file name {file.stem!r}",
                    )
                )
                continue
            projects.append(LoadedProject(org=org, path=shown, manifest=manifest, document=document))
        orgs[org] = LoadedOrg(slug=org, path=org_path, manifest=org_manifest)
    errors.extend(cross_file_errors(projects))
    if errors:
        raise ManifestErrors(errors)
    return ManifestSet(orgs=orgs, projects=tuple(sorted(projects, key=lambda p: p.key)))


def cross_file_errors(projects: Iterable[LoadedProject]) -> list[ManifestError]:
    """Rules no single file can check: unique refs and domains, identifier lengths once prefixed."""
    errors: list[ManifestError] = []
    ref_owner: dict[str, LoadedProject] = {}
    domain_owner: dict[str, tuple[LoadedProject, tuple[str | int, ...]]] = {}
    mail_domain_owner: dict[str, LoadedProject] = {}
    inbound_owner: dict[str, LoadedProject] = {}
    for project in projects:
        doc = project.document
        first = ref_owner.setdefault(project.ref, project)
        if first is not project:
            errors.append(
                ManifestError(
                    project.path,
                    doc.line_of(("ref",)),
                    "ref",
                    f"ref {project.ref!r} is already used by {first.path}; refs are unique across all orgs",
                )
            )
        for what, name in overlong_identifiers(project.ref):
            errors.append(
                ManifestError(
                    project.path,
                    doc.line_of(("ref",)),
                    "ref",
                    f"ref is too long: the {what} {name!r} would be {len(name.encode())} bytes "
                    f"(PostgreSQL allows {PG_IDENTIFIER_MAX_BYTES})",
                )
            )
        claims: list[tuple[str, tuple[str | int, ...]]] = [
            (domain, ("domains", index)) for index, domain in enumerate(project.manifest.domains)
        ]
        for app_index, app in enumerate(project.manifest.apps):
            claims += [(domain, ("apps", app_index, "domains", i)) for i, domain in enumerate(app.domains)]
        for domain, loc in claims:
            claimed = domain_owner.setdefault(domain, (project, loc))
            if claimed[1] != loc or claimed[0] is not project:
                errors.append(
                    ManifestError(
                        project.path,
                        doc.line_of(loc),
                        _field_path(loc),
                        f"domain {domain!r} is already claimed by {claimed[0].path} ({_field_path(claimed[1])}); "
                        "a name is served by one project or app",
                    )
                )
        errors.extend(_email_claims(project, mail_domain_owner, inbound_owner))
    return errors


def _email_claims(
    project: LoadedProject, domain_owner: dict[str, LoadedProject], address_owner: dict[str, LoadedProject]
) -> list[ManifestError]:
    """A sending domain and each inbound address belong to one project: mail to an address lands in exactly one
    project's database, and a delivery report for a domain's mail updates exactly one."""
    email = project.manifest.email
    if email is None:
        return []
    doc = project.document
    errors = []
    first = domain_owner.setdefault(email.from_domain, project)
    if first is not project:
        errors.append(
            ManifestError(
                project.path,
                doc.line_of(("email", "from_domain")),
                "email.from_domain",
                f"from_domain {email.from_domain!r} is already used by {first.path}; a domain sends for one project",
            )
        )
    for index, address in enumerate(email.inbound_addresses):
        first = address_owner.setdefault(address, project)
        if first is not project:
            errors.append(
                ManifestError(
                    project.path,
                    doc.line_of(("email", "inbound_addresses", index)),
                    f"email.inbound_addresses[{index}]",
                    f"inbound address {address!r} is already listed by {first.path}",
                )
            )
    return errors


# The manifest repository on the host belongs to the platform service's user, and root applies it: a link there
# could make root read (and quote in its errors) any file, and a FIFO would hang the apply.
NOT_REAL = "not a regular file or folder (a symbolic link?): manifests are plain files in plain folders"


class _NotRegular(Exception):
    pass


def _read_regular(file: Path) -> bytes:
    """At most MAX_BYTES + 1 bytes of `file`, refusing (_NotRegular) a symbolic link as the file or its folder at the
    moment of opening, and anything but a regular file."""
    try:
        folder = os.open(file.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        raise _NotRegular from None
    try:
        fd = os.open(file.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
    except OSError:
        raise _NotRegular from None
    finally:
        os.close(folder)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise _NotRegular
        return handle.read(MAX_BYTES + 1)  # never read more than the limit, whatever the file's size


def _load_model(
    file: Path, shown: str, model: type[BaseModel], errors: list[ManifestError], keep_document: bool = False
) -> Any:
    try:
        data = _read_regular(file)
    except _NotRegular:
        errors.append(ManifestError(shown, 1, "", NOT_REAL))
        return None
    if len(data) > MAX_BYTES:
        errors.append(ManifestError(shown, 1, "", f"the file is larger than {MAX_BYTES // 1024} KiB"))
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        errors.append(ManifestError(shown, 1, "", "not UTF-8 text"))
        return None
    try:
        document = parse_yaml(text)
    except YamlSourceError as exc:
        errors.append(ManifestError(shown, exc.line, "", exc.message))
        return None
    if not isinstance(document.data, dict):
        errors.append(ManifestError(shown, 1, "", "a manifest must be a YAML mapping of keys to values"))
        return None
    try:
        instance = model.model_validate(document.data)
    except ValidationError as exc:
        for problem in exc.errors():
            loc = tuple(problem["loc"])
            errors.append(ManifestError(shown, document.line_of(loc), *describe(problem)))
        return None
    return (instance, document) if keep_document else instance


def describe(problem: Any) -> tuple[str, str]:
    """(field path, message) of one of a model's validation problems, as the operator reads them."""
    return _field_path(tuple(problem["loc"])), _message(problem)


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", str(part)) or str(part) in {"function-after"}:
            # Pydantic inserts validator names into locations; they mean nothing to an operator.
            if str(part).startswith(("function-", "literal[")) or part == "[key]":
                continue
            out += f".{part!r}" if out else repr(part)
        else:
            out += f".{part}" if out else str(part)
    return out


_SLUG_WORDS = "must be a lowercase slug: ASCII letters a-z and digits, single hyphens inside, starting with a letter"
_PATTERN_WORDS = {
    REF_PATTERN: _SLUG_WORDS,
    INSTANCE_NAME_PATTERN: _SLUG_WORDS,
    SCHEMA_NAME_PATTERN: "must be a lowercase PostgreSQL name: ASCII letters a-z, digits and underscores",
}


def _message(problem: Any) -> str:
    kind = problem["type"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see schema/ for the allowed keys)"
    if kind == "missing":
        return "required key is missing"
    if kind == "string_pattern_mismatch":
        described = _PATTERN_WORDS.get(str(problem.get("ctx", {}).get("pattern")))
        if described:
            return f"{problem['input']!r} {described}"
    message = str(problem["msg"])
    return message.removeprefix("Value error, ")


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
