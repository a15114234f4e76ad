"""`nextmavens email send|templates`: a project's email through the platform service's API (POST
/v1/projects/{org}/{ref}/email, GET .../email/templates), which renders the template, sends with Resend and records the
send in the project's email.messages. ORG/REF defaults to the linked project."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from nextmavens.remote.api import path_of
from nextmavens.remote.output import DevFailure, emit_json, show
from nextmavens.remote.session import api_errors, chosen_project, client_for

PROJECT = click.argument("project", required=False, metavar="[ORG/REF]")
MAX_FILE_BYTES = 2_000_000


@click.group()
def email() -> None:
    """Send a project's email (Resend) and list its templates."""


def _file_text(path: Path | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        data = path.read_bytes()[: MAX_FILE_BYTES + 1]
    except OSError as exc:
        raise DevFailure(f"cannot read the {what} file {path}: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise DevFailure(f"the {what} file {path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DevFailure(f"the {what} file {path} is not UTF-8 text") from None


def _data(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise DevFailure(f"--data is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise DevFailure("--data is a JSON object of the template's variables")
    return value


@email.command("send")
@PROJECT
@click.option("--to", "to", multiple=True, required=True, help="A recipient (repeat for more, up to 50).")
@click.option("--subject", required=True, help="The subject line.")
@click.option("--template", help="A template of the org's templates folder (<name>.html and/or <name>.txt).")
@click.option("--data", help="The template's variables, a JSON object.")
@click.option("--html-file", type=click.Path(path_type=Path, dir_okay=False), help="The HTML body (no template).")
@click.option("--text-file", type=click.Path(path_type=Path, dir_okay=False), help="The text body (no template).")
@click.option("--sender", default=None, help="The local part before @from_domain (default noreply).")
@click.option("--idempotency-key", help="The same key sends at most once: give one to retry safely.")
@click.option("--json", "as_json", is_flag=True, help="Print the service's answer {id, provider_id, status, ...}.")
@api_errors
def send(
    project: str | None,
    to: tuple[str, ...],
    subject: str,
    template: str | None,
    data: str | None,
    html_file: Path | None,
    text_file: Path | None,
    sender: str | None,
    idempotency_key: str | None,
    as_json: bool,
) -> None:
    """Send one email from the project's manifest sender, from a template (--template, --data) or given bodies
    (--html-file, --text-file), recorded in the project's email.messages."""
    org, ref = chosen_project(project)
    body: dict[str, Any] = {"to": list(to), "subject": subject}
    if template is not None:
        body["template"] = template
        body["data"] = _data(data)
    elif data is not None:
        raise DevFailure("--data goes with --template")
    for key, value in (
        ("html", _file_text(html_file, "HTML")),
        ("text", _file_text(text_file, "text")),
        ("sender", sender),
        ("idempotency_key", idempotency_key),
    ):
        if value is not None:
            body[key] = value
    answer = client_for().post(path_of("v1", "projects", org, ref, "email"), body)
    if as_json:
        emit_json(answer)
        return
    verb = "already sent (same idempotency key)" if answer.get("replayed") else "sent"
    show(f"{org}/{ref}: {verb}: message {answer.get('id')}, Resend id {answer.get('provider_id')}, "
         f"idempotency key {answer.get('idempotency_key')}")


@email.command("templates")
@PROJECT
@click.option("--json", "as_json", is_flag=True, help='Print {"templates": [{"name", "html", "text"}]}.')
@api_errors
def templates(project: str | None, as_json: bool) -> None:
    """The templates the project may send with (`list_templates`)."""
    org, ref = chosen_project(project)
    answer = client_for().get(path_of("v1", "projects", org, ref, "email", "templates"))
    if as_json:
        emit_json(answer)
        return
    rows = answer.get("templates") or []
    if not rows:
        show(f"{org}/{ref}: no templates (projects/{org}/templates/<name>.html or .txt)")
    for row in rows:
        kinds = [kind for kind in ("html", "text") if row.get(kind)]
        show(f"{row.get('name')}  ({', '.join(kinds)})")
