"""A project's email templates: `projects/<org>/templates/<name>.html` and `<name>.txt` in the manifest repository,
rendered by Jinja2's immutable sandbox (tenant text must never reach Python's internals), HTML autoescaped, strict
about undefined names.

Templates are read only as plain files in plain folders of the org's own `templates/` folder: a name is a slug,
a symbolic link is refused at the moment of opening (the repository's files belong to the service's user; a link
could make the service read, and mail out, any file it can read), and so is a file over MAX_TEMPLATE_BYTES.
`{% include %}` and `{% extends %}` reach the same folder through the same checks.
"""

from __future__ import annotations

import math
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache, partial, wraps
from pathlib import Path
from string import Formatter
from typing import Any, cast

import jinja2
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATES_FOLDER = "templates"
NAME_PATTERN = r"[a-z][a-z0-9_-]{0,63}"
KINDS = ("html", "txt")
MAX_TEMPLATE_BYTES = 256 * 1024
MAX_RENDERED_CHARS = 2 * 1024 * 1024
MAX_RENDER_S = 1.0  # wall time one part may take to render (a loop over loops, a slow filter): refused beyond
MAX_INT_BITS = 4096  # an integer result of `*` or `**` past this is refused before Python computes it
MAX_LIPSUM = 100  # lipsum(): paragraphs and words per paragraph
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


def _refuse(what: str) -> None:
    raise jinja2.exceptions.SecurityError(what)


def _size(obj: Any, limit: int = MAX_RENDERED_CHARS) -> int:
    """About how many characters `str(obj)` would take, counted without building it and given up once past
    `limit` (a list can hold one large string many times over: its text is the product, not the sum)."""
    total = 0
    stack = [obj]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item) * (1 if isinstance(item, str) else 4) + 2
        elif isinstance(item, bool) or item is None or isinstance(item, float):
            total += 8
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, dict):
            total += 2 * len(item) + 2
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 * len(item) + 2
            stack.extend(item)
        else:
            total += 16  # Undefined, loop, namespace, range...: their text does not repeat their contents' size
    return total


def _bounded(obj: Any, what: str) -> None:
    if _size(obj) > MAX_RENDERED_CHARS:
        _refuse(f"{what} too large")


def _check_int_bits(bits: float) -> None:
    if bits > MAX_INT_BITS:
        _refuse(f"integer result over {MAX_INT_BITS} bits")


_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d*)(?:\.(\*|\d*))?")


def _check_format(fmt: Any, args: Any, brace: bool) -> None:
    """A format string's widths and precisions together stay within the output cap, none comes from an argument
    (`%*d`, `{:{}}`), and the arguments' own text is bounded."""
    if not isinstance(fmt, str):
        return
    widths: list[str] = []
    if brace:
        try:
            fields = list(Formatter().parse(fmt))
        except ValueError:
            return  # str.format raises the same error itself
        for _, _, spec, _ in fields:
            if spec and "{" in spec:
                _refuse("format width taken from an argument")
            widths += re.findall(r"\d+", spec or "")
    else:
        for star_or_width, precision in _PRINTF_SPEC.findall(fmt):
            if "*" in (star_or_width, precision):
                _refuse("format width taken from an argument")
            widths += [w for w in (star_or_width, precision) if w]
    if sum(int(w) for w in widths) > MAX_RENDERED_CHARS:
        _refuse("format width too large")
    _bounded(args, "format arguments")


def _estimate_join(sep: Any, items: list[Any]) -> None:
    _bounded(items, "joined items")
    if len(sep) * len(items) > MAX_RENDERED_CHARS:
        _refuse("joined text too large")


def _estimate_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if not isinstance(text, (str, bytes)) or not isinstance(new, (str, bytes)):
        return
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    if len(text) + hits * len(new) > MAX_RENDERED_CHARS:
        _refuse("replaced text too large")


def _check_width(width: Any) -> None:
    if isinstance(width, int) and width > MAX_RENDERED_CHARS:
        _refuse("width too large")


def _check_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Bounds for the str and bytes methods whose result can be far larger than their inputs."""
    bound = getattr(method, "__wrapped__", method)  # str.format arrives wrapped by the sandbox
    owner = getattr(bound, "__self__", None)
    if not isinstance(owner, (str, bytes)):
        return
    name = getattr(bound, "__name__", "")
    values = [*args, *kwargs.values()]
    if name in ("center", "ljust", "rjust", "zfill") and values:
        _check_width(values[0])
    elif name == "expandtabs":
        tab = values[0] if values else 8
        if isinstance(tab, int) and len(owner) * max(tab, 1) > MAX_RENDERED_CHARS:
            _refuse("expanded text too large")
    elif name == "replace" and len(values) >= 2:
        _estimate_replace(owner, *values[:3])
    elif name == "join" and values:
        _estimate_join(owner, list(values[0]))  # a generator arrives as a list (call() below)
    elif name in ("format", "format_map"):
        _check_format(owner, values, brace=True)
    elif name == "translate":
        _refuse("translate() is not available in templates")


def _guard_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """The filter, refusing first the arguments whose result would be far larger than the cap."""
    needs_ctx = getattr(original, "jinja_pass_arg", None)

    @wraps(original)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        given = list(args[1:] if needs_ctx else args)
        value, rest = (given[0], given[1:]) if given else (None, [])
        _bounded(value, f"input of filter {name}")
        if name == "center" and rest:
            _check_width(rest[0])
        elif name == "indent":
            width = rest[0] if rest else kwargs.get("width", 4)
            lines = str(value).count("\n") + 1
            per_line = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
            if len(str(value)) + lines * per_line > MAX_RENDERED_CHARS:
                _refuse("indented text too large")
        elif name == "wordwrap":
            width = rest[0] if rest else kwargs.get("width", 79)
            wrap = rest[2] if len(rest) > 2 else kwargs.get("wrapstring") or "\n"
            _check_width(width)
            if len(str(value)) * (1 + len(str(wrap))) > MAX_RENDERED_CHARS:
                _refuse("wrapped text too large")
        elif name == "replace" and len(rest) >= 2:
            _estimate_replace(str(value), str(rest[0]), str(rest[1]), rest[2] if len(rest) > 2 else -1)
        elif name == "format":
            _check_format(value, [rest, kwargs], brace=False)
        elif name == "truncate":
            _check_width(rest[0] if rest else kwargs.get("length", 255))
        elif name == "join":
            items = list(value) if value is not None else []
            sep = rest[0] if rest else kwargs.get("d", "")
            _estimate_join(str(sep), items)
        elif name in ("batch", "slice"):
            count = rest[0] if rest else kwargs.get("linecount", kwargs.get("slices", 0))
            if isinstance(count, int) and count > MAX_RENDERED_CHARS // 64:
                _refuse(f"{name} count too large")
        return original(*args, **kwargs)

    return guarded


def _bounded_lipsum(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def lipsum(*args: Any, **kwargs: Any) -> Any:
        if any(isinstance(v, int) and v > MAX_LIPSUM for v in [*args, *kwargs.values()]):
            _refuse(f"lipsum arguments over {MAX_LIPSUM}")
        return original(*args, **kwargs)

    return lipsum


def _checked_output(value: Any) -> Any:
    """Each `{{ ... }}` value, before Jinja turns it into text: nested list literals can hold one string 2^30 times
    without any operator the checks above see."""
    _bounded(value, "output value")
    return value


def _bounded_concat(parts: Any) -> str:
    """`environment.concat`: the join of a template's, macro's or block's output, its size counted first
    (a loop can output one large string many times; the join would allocate all of it in one step)."""
    parts = list(parts)
    if sum(len(p) if isinstance(p, str) else _size(p) for p in parts) > MAX_RENDERED_CHARS:
        _refuse("output too large")
    return "".join(parts)


class _BoundedCodeGenerator(CodeGenerator):
    """`a ~ b` compiled through the environment's size check before Jinja joins the parts."""

    def visit_Concat(self, node: Any, frame: Any) -> None:
        if frame.eval_ctx.volatile:
            func_name = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func_name = "markup_join"
        else:
            func_name = "str_join"
        self.write(f"{func_name}(environment.checked_parts((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(")))")


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, also refusing, before Python takes the step, every operation whose result
    would outgrow the caps: an integer past MAX_INT_BITS from `*` or `**`, a string or list past the rendered-size
    cap from `*`, `+`, `%`, `~`, a filter (center, indent, wordwrap, replace, format, join, batch, slice...) or a
    str method (center, ljust, rjust, zfill, expandtabs, replace, join, format). Each would spend time and memory
    in one C step the clock cannot interrupt."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _BoundedCodeGenerator
    concat = staticmethod(_bounded_concat)  # type: ignore[assignment]

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_checked_output, **options)
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}
        self.globals["lipsum"] = _bounded_lipsum(cast(Callable[..., Any], self.globals["lipsum"]))

    @staticmethod
    def checked_parts(parts: tuple[Any, ...]) -> tuple[Any, ...]:
        _bounded(parts, "joined text")
        return parts

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        ints = isinstance(left, int) and isinstance(right, int)
        if operator == "**" and ints and right > 0:
            _check_int_bits(right * math.log2(max(2, abs(left))))
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > MAX_INT_BITS:
            _refuse("exponent too large")  # floats overflow quickly, but huge negative int powers are slow too
        if operator == "*" and ints:
            _check_int_bits(left.bit_length() + right.bit_length())
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, bytes, list, tuple)) and isinstance(times, int):
                    _bounded(seq, "repeated value")
                    if _size(seq) * max(times, 0) > MAX_RENDERED_CHARS:
                        _refuse("repetition too large")
        if operator == "+" and isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            if _size(left) + _size(right) > MAX_RENDERED_CHARS:
                _refuse("sum too large")
        if operator == "%" and isinstance(left, str):
            _check_format(left, right, brace=False)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        bound = getattr(__obj, "__self__", None)
        if isinstance(bound, (str, bytes)) and getattr(__obj, "__name__", "") == "join" and len(args) == 1:
            args = (list(args[0]),)  # counted once, joined from the same list
        _check_method(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)


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
