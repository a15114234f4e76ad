"""Human output: rich tables, colour only on a terminal. Never given a secret except by `keys show`."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from nextmavens.edge.apply import EdgeReport
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
            table.add_row(
                change.project,
                f"[{style}]{change.action}[/]" if style else change.action,
                change.kind,
                change.target,
                change.detail,
            )
        out.print(table)
    else:
        out.print("No changes: the cluster matches the manifests.")
    for notice in plan.notices:
        out.print(f"[magenta]{notice.kind}[/] {notice.project}: {notice.detail}")
    for error in plan.errors:
        err.print(f"[red]error[/] {error}")


def fail(message: str) -> None:
    err.print(f"[red]error:[/] {message}", markup=True, soft_wrap=True)


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def print_edge_report(report: EdgeReport) -> None:
    for line in report.done:
        out.print(f"  edge: {line}")
    for line in report.warnings:
        out.print(f"  [yellow]edge warning[/]: {line}")
    for line in report.errors:
        err.print(f"  [red]edge error[/]: {line}")
