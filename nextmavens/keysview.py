"""What `keys show` prints for a project: URL, keys, connection strings. Pure."""

from __future__ import annotations

from urllib.parse import quote

from psycopg.conninfo import conninfo_to_dict

from nextmavens.keys import ProjectSecrets
from nextmavens.naming import project_names

# Supavisor's ports (transaction and session mode) on the host; served once the pooler stack runs.
POOLER_TRANSACTION_PORT = 6543
POOLER_SESSION_PORT = 5432


def project_access(ref: str, secrets: ProjectSecrets, dsn: str, api_domain: str | None) -> dict[str, str]:
    names = project_names(ref)
    server = conninfo_to_dict(dsn)
    host = str(server.get("host") or "localhost")
    port = str(server.get("port") or 5432)
    password = quote(secrets.passwords.get(names.owner, ""), safe="")
    api_url = (
        f"https://{ref}.{api_domain}"
        if api_domain
        else f"https://{ref}.<api domain> (placeholder: set NEXTMAVENS_API_DOMAIN; served once the gateway runs)"
    )
    return {
        "project": ref,
        "api_url": api_url,
        "anon_key": secrets.keys.anon,
        "service_role_key": secrets.keys.service_role,
        "jwt_secret": secrets.jwt_secret,
        "database_url": f"postgresql://{names.owner}:{password}@{host}:{port}/{names.database}",
        "pooler_transaction_url": (
            f"postgresql://{names.owner}.{ref}:{password}@{host}:{POOLER_TRANSACTION_PORT}/{names.database}"
        ),
        "pooler_session_url": (
            f"postgresql://{names.owner}.{ref}:{password}@{host}:{POOLER_SESSION_PORT}/{names.database}"
        ),
    }
