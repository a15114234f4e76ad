"""Human output: rich tables, colour only on a terminal. Never given a secret except by `keys show`.

Rich reads `[...]` in strings as markup: tenant text (names, refs, values quoted in errors) is escaped
before it is printed, so `[/x]` shows as itself instead of raising MarkupError or restyling the output.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nextmavens.engine.plan import Plan

# Wide when piped, so plans in logs and CI output stay one change per line.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)

_ACTION_STYLE = {
    "create": "green",
    "grant": "green",
    "update": "yellow",
    "record": "cyan",
    "revoke": "red",
    "terminate": "red",
}


def print_plan(plan: Plan) -> None:
    if plan.changes:
        table = Table(title=f"Plan: {len(plan.changes)} change(s)", title_justify="left")
        for column in ("project", "action", "kind", "target", "detail"):
            table.add_column(column, overflow="fold")
        for change in plan.changes:
            style = _ACTION_STYLE.get(change.action, "")
            action = escape(change.action)
            table.add_row(
                escape(change.project),
                f"[{style}]{action}[/]" if style else action,
                escape(change.kind),
                escape(change.target),
                escape(change.detail),
            )
        out.print(table)
    else:
        out.print("No changes: the cluster matches the manifests.")
    for notice in plan.notices:
        out.print(f"[magenta]{escape(notice.kind)}[/] {escape(notice.project)}: {escape(notice.detail)}")
    for error in plan.errors:
        err.print(f"[red]error[/] {escape(str(error))}")


def fail(message: str) -> None:
    err.print(f"[red]error:[/] {escape(message)}", markup=True, soft_wrap=True)


def say(text: str) -> None:
    """A line of plain text that may hold tenant text: printed as it is, never read as markup."""
    out.print(text, markup=False, soft_wrap=True)


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()
