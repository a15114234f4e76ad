"""`nextmavens whatsapp`: a project's WhatsApp instances in the shared Evolution API (show, connect, send, delete).

Instances are created and kept in shape by `apply`; these commands read them, pair a phone with one, send through
one, and remove one that is no longer wanted. Evolution is reached through the host's edge settings
(--edge-config), where its global key lives.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from nextmavens import ui
from nextmavens.cliparts import (
    Failure,
    connection_options,
    edge_option,
    known_project,
    make_engine,
    run_engine,
    split_key,
)
from nextmavens.manifest.models import INSTANCE_NAME_PATTERN, REF_PATTERN
from nextmavens.naming import evolution_instance_name
from nextmavens.whatsapp.pairing import ConnectAnswer, InvalidMessage, Paired, check_number, check_text
from nextmavens.whatsapp.removal import remove_from_evolution
from nextmavens.whatsapp.view import instance_rows

if TYPE_CHECKING:
    # The edge's modules are imported by the commands that use them: the CLI starts faster without them.
    from nextmavens.edge.clients.evolution import EvolutionApi
    from nextmavens.edge.whatsappinstances import ObservedInstance


def _evolution(edge_config: Path | None) -> EvolutionApi | None:
    if edge_config is None:
        return None
    from nextmavens.edge.hostruntime import evolution_api
    from nextmavens.edge.step import load_edge

    return evolution_api(load_edge(edge_config))


def _required_evolution(edge_config: Path | None, doing: str) -> EvolutionApi:
    api = _evolution(edge_config)
    if api is None:
        raise Failure(
            f"no Evolution API to {doing}: pass --edge-config (its settings name Evolution and its key), and check "
            "that they set evolution_api_url and the key's file"
        )
    return api


def instance_name(project: str, instance: str) -> str:
    """The Evolution name of ORG/REF's instance, both checked as manifests spell them."""
    org, ref = split_key(project)
    if not (re.fullmatch(REF_PATTERN, org) and re.fullmatch(REF_PATTERN, ref)):
        raise Failure(f"{project!r} is not ORG/REF (lowercase letters, digits and single hyphens each)")
    if not re.fullmatch(INSTANCE_NAME_PATTERN, instance):
        raise Failure(f"{instance!r} is not an instance name (lowercase letters, digits and single hyphens)")
    return evolution_instance_name(ref, instance)


@click.group()
def whatsapp() -> None:
    """A project's WhatsApp instances (created by apply from the manifest's `whatsapp.instances`)."""


@whatsapp.command("show")
@click.argument("project")
@connection_options
@edge_option
@click.option("--json", "as_json", is_flag=True)
def show(
    project: str, dsn: str | None, master_key: Path, lock_timeout: float, edge_config: Path | None, as_json: bool
) -> None:
    """Instances, state, number, webhook URL, each instance's token and webhook secret, and the project's
    forwarding secret (printed on purpose, like `keys show`). Without --edge-config, Evolution is not asked and the
    state is `unknown`."""
    engine = make_engine(dsn, master_key, lock_timeout)

    def read() -> tuple[str, dict[str, tuple[str, str]], str | None]:
        with engine.secrets() as store:
            ref = known_project(store, project)
            sealed = {}
            for name in store.whatsapp_instances(ref):
                pair = store.whatsapp_secrets(ref, name)
                if pair is not None:
                    sealed[name] = pair
            return ref, sealed, store.whatsapp_forward_secret(ref)

    ref, sealed, forward_secret = run_engine(read)
    from nextmavens.edge.clients.http import AdminApiError
    from nextmavens.edge.whatsappinstances import observed_from_row

    api = _evolution(edge_config)
    observed: dict[str, ObservedInstance] | None = None
    webhook_urls: dict[str, str] = {}
    if api is not None:
        try:
            observed = {o.evolution_name: o for o in map(observed_from_row, api.fetch_instances())}
            for evolution_name, instance in observed.items():
                if evolution_name.startswith(evolution_instance_name(ref, "")):
                    webhook = api.find_webhook(evolution_name, [instance.token])
                    webhook_urls[evolution_name] = str((webhook or {}).get("url") or "")
        except AdminApiError as exc:
            ui.err.print(f"[yellow]warning[/]: {escape(str(exc))}; state unknown", soft_wrap=True)
            observed, webhook_urls = None, {}
    rows = instance_rows(ref, sealed, observed, webhook_urls)
    if as_json:
        click.echo(json.dumps({"forward_secret": forward_secret, "instances": rows}, indent=2))
        return
    if not rows:
        ui.out.print(f"{project}: no WhatsApp instances")
    # Signs what the platform forwards to the instances' webhook_url: the project's app checks it.
    ui.out.print(f"forward_secret: {escape(forward_secret or '-')}", soft_wrap=True)
    for row in rows:
        ui.out.print(f"[bold]{escape(row['name'])}[/] ({escape(row['evolution_name'])})", soft_wrap=True)
        for label in ("state", "number", "webhook_url", "token", "webhook_secret"):
            ui.out.print(f"  {label}: {escape(str(row[label]) or '-')}", soft_wrap=True)


@whatsapp.command("delete")
@click.argument("project")
@click.argument("instance")
@click.option("--confirm", required=True, help="Repeat ORG/PROJECT/INSTANCE to confirm.")
@connection_options
@edge_option
def delete(
    project: str,
    instance: str,
    confirm: str,
    dsn: str | None,
    master_key: Path,
    lock_timeout: float,
    edge_config: Path | None,
) -> None:
    """Log the instance out of WhatsApp and delete it from Evolution, with its sealed token and webhook secret.
    If the manifest still declares it, the next apply creates it again, with new secrets (pair it again)."""
    if confirm != f"{project}/{instance}":
        raise Failure(f"--confirm must be exactly {project}/{instance}; nothing was deleted")
    from nextmavens.edge.clients.http import AdminApiError

    api = _evolution(edge_config)
    if api is None:
        raise Failure("no Evolution API to delete from: pass --edge-config (its settings name Evolution and its key)")
    engine = make_engine(dsn, master_key, lock_timeout)
    detail = [{"project": project, "action": "delete", "kind": "whatsapp", "target": instance}]

    def remove() -> list[str]:
        with engine.changing("whatsapp delete", detail) as (_, store):
            ref = known_project(store, project)
            name = evolution_instance_name(ref, instance)
            done = remove_from_evolution(api, name)
            if store.whatsapp_secrets(ref, instance) is not None:
                store.forget_whatsapp(ref, instance)
                done.append("its token and webhook secret forgotten")
            return done

    try:
        done = run_engine(remove)
    except AdminApiError as exc:
        raise Failure(f"{exc}; check with: nextmavens whatsapp show {project}") from None
    ui.out.print(f"{escape(project)}: " + "; ".join(escape(line) for line in done) + ".", soft_wrap=True)


def pair_through_evolution(
    project: str,
    name: str,
    show: Callable[[ConnectAnswer], None],
    number: str | None,
    timeout: float,
    edge_config: Path | None,
) -> Paired:
    from nextmavens.edge.clients.http import AdminApiError
    from nextmavens.whatsapp import connecting

    target = connecting.EvolutionTarget(_required_evolution(edge_config, "pair with"), name)
    try:
        return connecting.wait_for_pairing(
            target, show, number=number, timeout_s=timeout, interval_s=connecting.POLL_INTERVAL_S
        )
    except AdminApiError as exc:
        raise Failure(
            f"{exc}; run the same connect command again, or check Evolution with: nextmavens whatsapp "
            f"show {project} --edge-config FILE"
        ) from None


@whatsapp.command("send")
@click.argument("project")
@click.argument("instance")
@click.argument("number")
@click.argument("text")
@edge_option
def send(project: str, instance: str, number: str, text: str, edge_config: Path | None) -> None:
    """Send TEXT to NUMBER (digits, country code first) through a connected instance; prints the message id."""
    from nextmavens.edge.clients.http import AdminApiError

    name = instance_name(project, instance)
    try:
        check_number(number, "NUMBER")
        check_text(text, "TEXT")
    except InvalidMessage as exc:
        raise Failure(f"{exc}; nothing was sent") from None
    api = _required_evolution(edge_config, "send through")
    try:
        message_id = api.send_text(name, number, text)
    except AdminApiError as exc:
        raise Failure(f"{exc}; nothing was sent (is the instance connected? nextmavens whatsapp connect)") from None
    click.echo(message_id)
