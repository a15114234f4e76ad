"""JSON Schemas of the manifests, exported to `schema/` so editors validate the YAML as it is typed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel

from nextmavens.manifest.models import OrgManifest, ProjectManifest

SCHEMAS: dict[str, type[BaseModel]] = {"project.schema.json": ProjectManifest, "org.schema.json": OrgManifest}


def schema_documents() -> dict[str, str]:
    documents = {}
    for filename, model in SCHEMAS.items():
        schema: dict[str, Any] = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = filename
        documents[filename] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return documents


@click.command("schema")
@click.option("--out", type=click.Path(path_type=Path), default="schema", show_default=True)
@click.option("--check", is_flag=True, help="Exit 1 if the files on disk are not up to date.")
def schema_command(out: Path, check: bool) -> None:
    """Write (or check) the manifests' JSON Schemas."""
    stale = []
    for filename, text in schema_documents().items():
        path = out / filename
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
            continue
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        click.echo(f"wrote {path}")
    if stale:
        raise click.ClickException(f"out of date: {', '.join(stale)}; run: nextmavens schema")
