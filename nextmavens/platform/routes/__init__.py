"""The /v1 endpoints, one module per resource; every route authenticates, then calls auth.guard."""

from typing import Annotated

from fastapi import Path

from nextmavens.manifest.models import REF_PATTERN

# Org slugs and project refs as the manifests allow them: anything else is refused before any lookup.
OrgSlug = Annotated[str, Path(pattern=REF_PATTERN, max_length=63)]
ProjectRef = Annotated[str, Path(pattern=REF_PATTERN, max_length=63)]
