"""What `nextmavens keys show` prints for a project: API URL(s), pooled connection strings, keys.

Pooled connections go through Supavisor as `<role>.<tenant>`: port 6543 for transaction mode, 5432 for
session mode (reference section 5). The role is the project's owner login role. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from nextmavens.edge.settings import EdgeSettings
from nextmavens.keys import ProjectSecrets
from nextmavens.manifest.models import ProjectManifest
from nextmavens.naming import project_names


@dataclass(frozen=True)
class ProjectEndpoints:
    api_url: str
    custom_urls: tuple[str, ...]
    pooled_transaction: str
    pooled_session: str
    anon_key: str
    service_role_key: str

    def __repr__(self) -> str:  # printing the object by mistake must not print secrets
        return f"ProjectEndpoints(api_url={self.api_url!r})"

    def lines(self) -> list[str]:
        """Everything, secrets included: for `keys show` only, which prints them on purpose."""
        return [
            f"API URL:           {self.api_url}",
            *[f"Custom domain URL: {url}" for url in self.custom_urls],
            f"Pooled (transaction): {self.pooled_transaction}",
            f"Pooled (session):     {self.pooled_session}",
            f"anon key:          {self.anon_key}",
            f"service_role key:  {self.service_role_key}",
        ]


def project_endpoints(settings: EdgeSettings, manifest: ProjectManifest, secrets: ProjectSecrets) -> ProjectEndpoints:
    names = project_names(manifest.ref)
    password = secrets.passwords.get(names.owner)
    if password is None:
        raise ValueError(f"no password for {names.owner} in the project's secrets")
    user = quote(f"{names.owner}.{manifest.ref}", safe=".")
    host = settings.pooler_public_host

    def uri(port: int) -> str:
        return f"postgresql://{user}:{quote(password, safe='')}@{host}:{port}/{quote(names.database, safe='')}"

    return ProjectEndpoints(
        api_url=settings.api_url(manifest.ref),
        custom_urls=tuple(f"https://{d}" for d in manifest.domains),
        pooled_transaction=uri(settings.pooler_transaction_port),
        pooled_session=uri(settings.pooler_session_port),
        anon_key=secrets.keys.anon,
        service_role_key=secrets.keys.service_role,
    )
