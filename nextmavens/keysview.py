"""What `keys show` prints for a project: URL, keys, connection strings. Pure."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from psycopg.conninfo import conninfo_to_dict

from nextmavens.edge.settings import EdgeSettings
from nextmavens.keys import ProjectSecrets
from nextmavens.naming import project_names

# Supavisor's ports (transaction and session mode) on the host, when no edge settings name them.
POOLER_TRANSACTION_PORT = 6543
POOLER_SESSION_PORT = 5432


def project_access(
    ref: str, secrets: ProjectSecrets, dsn: str, api_domain: str | None, edge: EdgeSettings | None = None
) -> dict[str, str]:
    """With the host's edge settings, the public URL and pooler; without, the DSN's host and the default ports."""
    names = project_names(ref)
    server = conninfo_to_dict(dsn)
    host = str(server.get("host") or "localhost")
    port = str(server.get("port") or 5432)
    password = quote(secrets.passwords.get(names.owner, ""), safe="")
    pooler_host, transaction_port, session_port = host, POOLER_TRANSACTION_PORT, POOLER_SESSION_PORT
    if edge is not None:
        pooler_host = edge.pooler_public_host
        transaction_port, session_port = edge.pooler_transaction_port, edge.pooler_session_port
    pooled = f"postgresql://{names.owner}.{ref}:{password}@{pooler_host}"
    return {
        "project": ref,
        "api_url": api_url(ref, api_domain, edge),
        "anon_key": secrets.keys.anon,
        "service_role_key": secrets.keys.service_role,
        "keys_expire_at": iso_time(secrets.keys.expires_at),
        "jwt_secret": secrets.jwt_secret,
        "database_url": f"postgresql://{names.owner}:{password}@{host}:{port}/{names.database}",
        "pooler_transaction_url": f"{pooled}:{transaction_port}/{names.database}",
        "pooler_session_url": f"{pooled}:{session_port}/{names.database}",
    }


def api_url(ref: str, api_domain: str | None, edge: EdgeSettings | None = None) -> str:
    """The project's public API URL: from the host's edge settings, else the API domain, else a placeholder."""
    if edge is not None:
        return edge.api_url(ref)
    if api_domain:
        return f"https://{ref}.{api_domain}"
    return f"https://{ref}.<api domain> (set NEXTMAVENS_API_DOMAIN or pass --edge-config)"


def iso_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
