"""Sealed secrets and the record of issued API keys (tables `secrets` and `api_keys`).

Values arrive and leave sealed (nonce, ciphertext): sealing and opening are the caller's, with the master key.
"""

from __future__ import annotations

import psycopg

Sealed = tuple[bytes, bytes]  # (nonce, ciphertext)


def any_sealed(control: psycopg.Connection) -> bool:
    """Whether anything is sealed yet (with some master key)."""
    return control.execute("SELECT 1 FROM secrets LIMIT 1").fetchone() is not None


def sealed(control: psycopg.Connection, scope: str, name: str) -> Sealed | None:
    row = control.execute(
        "SELECT nonce, ciphertext FROM secrets WHERE scope = %s AND name = %s", (scope, name)
    ).fetchone()
    return None if row is None else (bytes(row[0]), bytes(row[1]))


def all_sealed(control: psycopg.Connection) -> list[tuple[str, str, bytes, bytes]]:
    """(scope, name, nonce, ciphertext) of every stored secret."""
    return [
        (str(scope), str(name), bytes(nonce), bytes(ciphertext))
        for scope, name, nonce, ciphertext in control.execute("SELECT scope, name, nonce, ciphertext FROM secrets")
    ]


def store_sealed(control: psycopg.Connection, scope: str, name: str, value: Sealed) -> None:
    """Store, replacing any earlier value."""
    control.execute(
        "INSERT INTO secrets (scope, name, nonce, ciphertext) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (scope, name) DO UPDATE SET nonce = excluded.nonce,"
        " ciphertext = excluded.ciphertext, created_at = now()",
        (scope, name, *value),
    )


def add_sealed_if_missing(control: psycopg.Connection, scope: str, name: str, value: Sealed) -> None:
    """Store only when no value exists: never replaces one (a password may already be given to a role)."""
    control.execute(
        "INSERT INTO secrets (scope, name, nonce, ciphertext) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (scope, name) DO NOTHING",
        (scope, name, *value),
    )


def names_in_scope(control: psycopg.Connection, scope: str, prefix: str) -> list[str]:
    """Names stored in `scope` that start with `prefix` (no values)."""
    rows = control.execute(
        "SELECT name FROM secrets WHERE scope = %s AND starts_with(name, %s) ORDER BY name", (scope, prefix)
    )
    return [str(name) for (name,) in rows]


def delete_sealed(control: psycopg.Connection, scope: str, name: str) -> None:
    control.execute("DELETE FROM secrets WHERE scope = %s AND name = %s", (scope, name))


def delete_scope(control: psycopg.Connection, scope: str) -> None:
    control.execute("DELETE FROM secrets WHERE scope = %s", (scope,))


def record_key(
    control: psycopg.Connection, ref: str, role: str, issued_at: int, expires_at: int, fingerprint: str
) -> None:
    control.execute(
        "INSERT INTO api_keys (ref, role, issued_at, expires_at, fingerprint) VALUES (%s, %s, %s, %s, %s)",
        (ref, role, issued_at, expires_at, fingerprint),
    )


def revoke_keys(control: psycopg.Connection, ref: str) -> None:
    """Mark every not yet revoked key of the project revoked now."""
    control.execute("UPDATE api_keys SET revoked_at = now() WHERE ref = %s AND revoked_at IS NULL", (ref,))
