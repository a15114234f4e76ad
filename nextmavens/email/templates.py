"""A project's email templates: `projects/<org>/templates/<name>.html` and `<name>.txt` in the manifest repository,
rendered by Jinja2's immutable sandbox (tenant text must never reach Python's internals), HTML autoescaped, strict
about undefined names.

Templates are read only as plain files in plain folders of the org's own `templates/` folder: a name is a slug,
a symbolic link is refused at the moment of opening (the repository's files belong to the service's user; a link
could make the service read, and mail out, any file it can read), and so is a file over MAX_TEMPLATE_BYTES.
`{% include %}` and `{% extends %}` reach the same folder through the same checks.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATES_FOLDER = "templates"
NAME_PATTERN = r"[a-z][a-z0-9_-]{0,63}"
KINDS = ("html", "txt")
MAX_TEMPLATE_BYTES = 256 * 1024
MAX_RENDERED_CHARS = 2 * 1024 * 1024
MAX_RENDER_S = 1.0  # wall time one part may take to render (a loop over loops, a slow filter): refused beyond
MAX_POWER_EXPONENT = 1000
_FILE = re.compile(rf"({NAME_PATTERN})\.(html|txt)")


class TemplateError(ValueError):
    """A template that is missing, not a plain file, too large, or fails to render: the message names it and
    the line, never the data."""


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    html: bool
    text: bool


@dataclass(frozen=True)
class Rendered:
    html: str | None
    text: str | None


def templates_dir(projects_dir: Path, org: str) -> Path:
    return projects_dir / org / TEMPLATES_FOLDER


def _read_plain(folder: Path, filename: str) -> str:
    """The UTF-8 text of `folder/filename`, refusing links (folder and file), non-regular files and large ones."""
    if not _FILE.fullmatch(filename):
        raise TemplateError(f"template file {filename!r} is not <name>.html or <name>.txt with a lowercase name")
    try:
        fd_dir = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        raise TemplateError(f"no template {filename} (the org has no plain templates folder)") from None
    try:
        fd = os.open(filename, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd_dir)
    except FileNotFoundError:
        raise TemplateError(f"no template {filename}") from None
    except OSError:
        raise TemplateError(f"template {filename} is not a plain file (a symbolic link?)") from None
    finally:
        os.close(fd_dir)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise TemplateError(f"template {filename} is not a plain file")
        data = handle.read(MAX_TEMPLATE_BYTES + 1)
    if len(data) > MAX_TEMPLATE_BYTES:
        raise TemplateError(f"template {filename} is larger than {MAX_TEMPLATE_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise TemplateError(f"template {filename} is not UTF-8 text") from None


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        found = path.lstat()
    except OSError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size


class _PlainFiles(jinja2.BaseLoader):
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        path = self.folder / template
        before = _stamp(path)
        source = _read_plain(self.folder, template)
        # compiled once, read again (through the same checks) when the file is replaced or changed
        return source, None, lambda: before is not None and _stamp(path) == before


class _TooSlow(Exception):
    """Raised inside a template's frame when its render passed the deadline."""


def _within(seconds: float, work: Callable[[], str]) -> str:
    """`work()`, stopped with _TooSlow once it has run `seconds`: a tracer on this thread alone checks the clock on
    every call and on every line of the compiled templates' code (each loop iteration passes one), so a template's
    own loops cannot run past it. Python's own builtins run uninterrupted; their inputs are bounded by the sandbox's
    range limit, the power and repetition checks below and the request's size."""
    deadline = time.monotonic() + seconds
    fired = False

    def check(frame: Any, event: str, arg: Any) -> Any:
        nonlocal fired
        if not fired and time.monotonic() > deadline:
            fired = True  # once: Jinja's own error handling then runs untraced
            raise _TooSlow
        return check

    def start(frame: Any, event: str, arg: Any) -> Any:
        check(frame, event, arg)
        return check if frame.f_code.co_filename == "<template>" and not fired else None

    previous = sys.gettrace()
    sys.settrace(start)
    try:
        return work()
    finally:
        sys.settrace(previous)


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, also refusing `**` with a large exponent and `*` repeating a string or list past
    the rendered-size cap (both would spend time and memory in one step the clock cannot interrupt)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > MAX_POWER_EXPONENT:
            raise jinja2.exceptions.SecurityError("exponent too large")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, (str, list, tuple)) and isinstance(times, int)
                if sized and len(seq) * times > MAX_RENDERED_CHARS:
                    raise jinja2.exceptions.SecurityError("repetition too large")
        return super().call_binop(context, operator, left, right)


@lru_cache(maxsize=64)
def environment(folder: Path) -> ImmutableSandboxedEnvironment:
    """A sandbox for one org's templates (its own, never shared with another org's), autoescape for .html only."""
    return _BoundedSandbox(
        loader=_PlainFiles(folder),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        auto_reload=True,
    )


def list_templates(projects_dir: Path, org: str) -> list[TemplateInfo]:
    """The org's templates by name, with which of the two kinds each has."""
    folder = templates_dir(projects_dir, org)
    if folder.is_symlink() or not folder.is_dir():
        return []
    kinds: dict[str, set[str]] = {}
    for entry in folder.iterdir():
        match = _FILE.fullmatch(entry.name)
        if match and not entry.is_symlink() and entry.is_file():
            kinds.setdefault(match.group(1), set()).add(match.group(2))
    return [TemplateInfo(name, "html" in found, "txt" in found) for name, found in sorted(kinds.items())]


def render(projects_dir: Path, org: str, name: str, data: Mapping[str, Any]) -> Rendered:
    """The template's HTML and text parts (either may be absent, not both)."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise TemplateError(f"template name {name!r} must be a lowercase slug (letters, digits, - and _)")
    folder = templates_dir(projects_dir, org)
    env = environment(folder)
    parts: dict[str, str | None] = {}
    for kind in KINDS:
        try:
            template = env.get_template(f"{name}.{kind}")
        except TemplateError as exc:
            if str(exc) == f"no template {name}.{kind}":
                parts[kind] = None
                continue
            raise
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"template {name}.{kind} line {exc.lineno}: {exc.message}") from None
        try:
            out = _within(MAX_RENDER_S, partial(template.render, **dict(data)))
        except TemplateError:
            raise
        except _TooSlow:
            raise TemplateError(f"template {name}.{kind} takes longer than {MAX_RENDER_S:g} s to render") from None
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"template {name}.{kind}: {exc.message}") from None
        except jinja2.TemplateSyntaxError as exc:  # an included template's
            raise TemplateError(f"template {exc.name or name} line {exc.lineno}: {exc.message}") from None
        except jinja2.exceptions.SecurityError:
            raise TemplateError(f"template {name}.{kind} reached for something the sandbox forbids") from None
        except (TypeError, ValueError, ArithmeticError, LookupError, RecursionError) as exc:
            raise TemplateError(f"template {name}.{kind} failed to render ({type(exc).__name__})") from None
        if len(out) > MAX_RENDERED_CHARS:
            raise TemplateError(f"template {name}.{kind} renders to more than {MAX_RENDERED_CHARS} characters")
        parts[kind] = out
    if parts["html"] is None and parts["txt"] is None:
        raise TemplateError(f"no template {name} (neither {name}.html nor {name}.txt)")
    return Rendered(html=parts["html"], text=parts["txt"])
