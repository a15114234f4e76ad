"""`nextmavens logs`: a project's service log through the platform service (GET /v1/projects/{org}/{ref}/logs,
server-sent events), printed line by line as it arrives.

Ctrl-C (SIGINT) or SIGTERM ends it with exit 130 and no traceback; a reader that closes the pipe (`| head`) ends it
with exit 0. The service bounds every stream (time, bytes, lines): a followed stream ended at the time bound is
opened again from where it ended (logtimes.py); at another bound stderr says why it ended.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from datetime import UTC, datetime
from types import FrameType

import click

from nextmavens.devcli.events import read_events
from nextmavens.devcli.logtimes import line_time, printed_already, resume_since
from nextmavens.remote.api import path_of
from nextmavens.remote.output import say
from nextmavens.remote.session import api_errors, chosen_project, client_for

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C

# A following stream is quiet while the log is; the service sends a comment every 15 s, so a minute of nothing
# means the connection is gone.
READ_TIMEOUT_S = 60.0
BOUNDS = {
    "max_seconds": "the service's time limit for one stream",
    "max_bytes": "the service's size limit for one stream",
    "max_lines": "the service's line limit for one stream",
}


def _service(value: str) -> str:
    if value in ("rest", "auth", "storage") or re.fullmatch(r"app:[a-z][a-z0-9]*(-[a-z0-9]+)*", value):
        return value
    raise click.BadParameter(f"{value!r}: rest, auth, storage or app:<name>")


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@click.command("logs")
@click.argument("project", required=False, metavar="[ORG/REF]")
@click.option(
    "--service",
    default="rest",
    show_default=True,
    callback=lambda ctx, param, value: _service(value),
    help="rest, auth, storage, or app:<name> (the app's active release).",
)
@click.option("--since", default=None, help="Only lines since: 10m, 2h, 1d or an RFC 3339 time.")
@click.option("--follow", is_flag=True, help="Keep printing new lines until stopped (Ctrl-C: exit 130).")
@click.option("--json", "as_json", is_flag=True, help='JSON lines: {"line": ...} each, then {"end": {"reason", ...}}.')
@api_errors
def logs(project: str | None, service: str, since: str | None, follow: bool, as_json: bool) -> None:
    """Print the project's service log (stdout and stderr, docker's timestamp first). ORG/REF defaults to the
    linked project. Exit 0 at the log's end, 130 when stopped by Ctrl-C or SIGTERM; otherwise as every developer
    command (nextmavens/remote/output.py)."""
    org, ref = chosen_project(project)
    client = client_for()
    params = {"service": service, "follow": "true" if follow else "false"}
    if since is not None:
        params["since"] = since
    # Both signals end it the same way, whatever the disposition it inherited: a process started in the
    # background of a non-interactive shell begins with SIGINT ignored, and Python then leaves it so.
    previous = {stop: signal.signal(stop, _stop) for stop in (signal.SIGINT, signal.SIGTERM)}
    end: dict[str, object] | None = None
    last: str | None = None  # the time of the last line printed
    resumed = False
    try:
        path = path_of("v1", "projects", org, ref, "logs")
        while True:
            started = datetime.now(UTC)
            end = None
            for event in read_events(client.stream_lines(path, params, read_timeout=READ_TIMEOUT_S)):
                if event.name == "end":
                    end = json.loads(event.data)
                    break
                if resumed and printed_already(event.data, last):
                    continue
                last = line_time(event.data) or last
                click.echo(json.dumps({"line": event.data}) if as_json else event.data)
                sys.stdout.flush()
            # Following outlives the service's time bound for one stream: the next one resumes where it ended.
            if not (follow and end is not None and end.get("reason") == "max_seconds"):
                break
            params["since"], resumed = resume_since(last, started), True
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader went away: what is still buffered goes nowhere instead of failing again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)
    if as_json and end is not None:
        click.echo(json.dumps({"end": end}))
    reason = str((end or {}).get("reason") or "")
    if reason in BOUNDS:
        say(f"The stream ended at {BOUNDS[reason]}; run it again (with --since) for more.")
    elif end is None:
        say("The stream ended without its last event (the connection closed).")
