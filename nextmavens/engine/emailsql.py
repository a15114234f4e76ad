"""SQL of a project's email schema (the layout email/store.py writes): sent mail (`messages`), Resend's delivery
reports as received (`events`, one row per Svix message id), received mail (`inbound`).

Part of the layer (sqlgen.layer_statements): run as LAYER_ROLE inside the layer's transaction. Builds statements
only; it runs nothing. Nothing here is dropped or replaced: the tables hold the project's data.
"""

from __future__ import annotations

from psycopg import sql

from nextmavens.engine.desired import EMAIL_TABLES, EMAIL_WRITERS
from nextmavens.engine.tenantsql import Statement, create_schema, grant_writers, secure_table
from nextmavens.naming import EMAIL_SCHEMA, ProjectNames

# Statuses a sent message goes through; email/store.py moves a message only forward in this order.
EMAIL_STATUSES = ("queued", "sent", "delivered", "delivery_delayed", "bounced", "complained", "failed")

_STATUS_CHECK = "CHECK (status IN (" + ", ".join(f"'{s}'" for s in EMAIL_STATUSES) + "))"
_EMAIL_COLUMNS = {
    "messages": f"""
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    to_addresses text[] NOT NULL,
    subject text NOT NULL,
    template text,
    status text NOT NULL DEFAULT 'queued' {_STATUS_CHECK},
    provider_id text UNIQUE,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    status_at timestamptz NOT NULL DEFAULT now()""",
    "events": """
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    svix_id text NOT NULL UNIQUE,
    type text NOT NULL,
    provider_id text,
    payload jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()""",
    "inbound": """
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id text NOT NULL,
    to_address text NOT NULL,
    from_address text NOT NULL,
    subject text,
    message_id text,
    text text,
    html text,
    headers jsonb NOT NULL DEFAULT '[]',
    attachments jsonb NOT NULL DEFAULT '[]',
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (to_address, delivery_id)""",
}
assert set(_EMAIL_COLUMNS) == set(EMAIL_TABLES)


def email_statements(names: ProjectNames) -> list[Statement]:
    """The email schema, run as LAYER_ROLE inside the layer's transaction; every statement may run again."""
    out = create_schema(EMAIL_SCHEMA)
    for table in EMAIL_TABLES:
        out.append(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                sql.Identifier(EMAIL_SCHEMA, table), sql.SQL(_EMAIL_COLUMNS[table])
            )
        )
        out += secure_table(EMAIL_SCHEMA, table, (*EMAIL_WRITERS, names.owner))
    out += grant_writers(EMAIL_SCHEMA, EMAIL_TABLES, (names.owner, *EMAIL_WRITERS))
    return out
