"""Studio for a project, as text: the signed Studio cookie and ticket, the per-project Studio's token, and the
connection header postgres-meta reads. Pure (no I/O); the keys come from the caller.

- postgres-meta 0.91.6 (`src/server/routes/index.ts`, its `onRequest` hook) decrypts `x-connection-encrypted`
  with CryptoJS's passphrase AES: OpenSSL's salted format ("Salted__", 8 bytes of salt, then AES-256-CBC with
  PKCS#7 padding, key and IV from EVP_BytesToKey with MD5 and one round), base64 encoded. Studio encrypts its own
  connection string the same way with `PG_META_CRYPTO_KEY` (`apps/studio/lib/api/self-hosted/util.ts`).
- A project's Studio is started with the project's database as `POSTGRES_DB` and, as `POSTGRES_PASSWORD`, a
  token bound to the ref (`studio_token`); the meta gate accepts its header only when both name one project, and
  puts the owner role's connection in its place (`gate_connection`).
- The browser holds `nm_studio` on the Studio name: org, ref, expiry and the dashboard session's stored hash,
  signed; the ticket that sets it has the same form with its own purpose and a short life.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from nextmavens.manifest.models import REF_PATTERN
from nextmavens.naming import STUDIO_ENTER_PATH, project_names

COOKIE = "nm_studio"
ENTER_PATH = STUDIO_ENTER_PATH  # on the Studio name; nginx sends it to the service
TICKET_TTL_S = 60
COOKIE_TTL_S = 12 * 3600  # never longer than a dashboard session; the session is checked on every request too
CONNECTION_HEADER = "x-connection-encrypted"  # what postgres-meta reads
GATE_ANSWER_HEADER = "X-NextMavens-Connection"  # the service's answer to the gate's auth_request
UPSTREAM_HEADER = "X-NextMavens-Studio-Upstream"  # the service's answer to the Studio name's auth_request

_SALTED = b"Salted__"
_NAME = re.compile(REF_PATTERN)
_HASH = re.compile(r"^[0-9a-f]{64}$")


def derive_key(master_key: bytes, purpose: str) -> bytes:
    """A key of its own for each use (cookie, Studio's tokens, Studio's side of the header), from the master key."""
    return hmac.new(master_key, b"nextmavens-studio:" + purpose.encode(), hashlib.sha256).digest()


class StudioKeys:
    """The keys Studio for a project uses, each derived from the master key for its one purpose."""

    def __init__(self, master: bytes) -> None:
        self.grant = derive_key(master, "grant")  # the ticket and the cookie
        self.token = derive_key(master, "token")  # each project's Studio's POSTGRES_PASSWORD
        self.studio_crypto = derive_key(master, "studio-crypto").hex()  # Studio's PG_META_CRYPTO_KEY


# ---------------------------------------------------------------- CryptoJS's passphrase AES


def _key_iv(passphrase: bytes, salt: bytes) -> tuple[bytes, bytes]:
    derived, block = b"", b""
    while len(derived) < 48:
        block = hashlib.md5(block + passphrase + salt, usedforsecurity=False).digest()
        derived += block
    return derived[:32], derived[32:48]


def cryptojs_encrypt(text: str, passphrase: str, salt: bytes | None = None) -> str:
    salt = os.urandom(8) if salt is None else salt
    key, iv = _key_iv(passphrase.encode(), salt)
    padder = padding.PKCS7(128).padder()
    data = padder.update(text.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(_SALTED + salt + encryptor.update(data) + encryptor.finalize()).decode()


def cryptojs_decrypt(encrypted: str, passphrase: str) -> str | None:
    """The text, or None when it is not OpenSSL's salted format under this passphrase."""
    try:
        raw = base64.b64decode(encrypted.strip(), validate=True)
    except ValueError:
        return None
    if not raw.startswith(_SALTED) or len(raw) < 32 or (len(raw) - 16) % 16:
        return None
    key, iv = _key_iv(passphrase.encode(), raw[8:16])
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    data = decryptor.update(raw[16:]) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return (unpadder.update(data) + unpadder.finalize()).decode()
    except ValueError:
        return None


# ---------------------------------------------------------------- the per-project Studio and the gate


def studio_token(key: bytes, ref: str) -> str:
    """What a project's Studio gets as POSTGRES_PASSWORD: no database password, a proof of which project it is."""
    return hmac.new(key, b"studio-token:" + ref.encode(), hashlib.sha256).hexdigest()


# The user names Studio puts in the connection it builds (apps/studio/lib/api/self-hosted/constants.ts:
# POSTGRES_USER_READ_WRITE, default `supabase_admin`, `postgres` in earlier versions; POSTGRES_USER_READ_ONLY,
# default `supabase_read_only_user`, used for its read-only queries). A project's Studio keeps the defaults (the
# pinned version's compose file names neither variable).
STUDIO_READ_WRITE_USER = "postgres"
STUDIO_READ_ONLY_USER = "supabase_read_only_user"
_READ_WRITE_USERS = frozenset({STUDIO_READ_WRITE_USER, "supabase_admin"})


@dataclass(frozen=True)
class StudioLogin:
    ref: str
    read_only: bool  # Studio asked as its read-only user: the project's read-only role, never its owner


def studio_login(connection: str, key: bytes, database_ref: dict[str, str]) -> StudioLogin | None:
    """The project (and which of its logins) a Studio's decrypted connection string proves, or None.
    `database_ref`: database -> ref of the projects Studio may open (active ones)."""
    try:
        parts = urlsplit(connection)
        password = unquote(parts.password or "")
        user = unquote(parts.username or "")
    except ValueError:
        return None
    if parts.scheme not in ("postgres", "postgresql"):
        return None
    if user not in _READ_WRITE_USERS and user != STUDIO_READ_ONLY_USER:
        return None
    ref = database_ref.get(unquote(parts.path.removeprefix("/")))
    if ref is None or not hmac.compare_digest(password.encode(), studio_token(key, ref).encode()):
        return None
    return StudioLogin(ref, read_only=user == STUDIO_READ_ONLY_USER)


def studio_env(ref: str, token: str, studio_crypto_key: str, meta_gate_url: str) -> dict[str, str]:
    """The environment of a project's Studio (names from Studio's facts): its project's database, the token in
    place of a password, its own crypto key (never postgres-meta's), and the meta gate as its postgres-meta. The
    host and port are placeholders: the gate swaps the whole connection."""
    return {
        "HOSTNAME": "::",
        "STUDIO_PG_META_URL": meta_gate_url,
        "POSTGRES_HOST": "studio-gate",
        "POSTGRES_PORT": "5432",
        "POSTGRES_DB": project_names(ref).database,
        "POSTGRES_PASSWORD": token,
        "PG_META_CRYPTO_KEY": studio_crypto_key,
        "DEFAULT_ORGANIZATION_NAME": "NextMavens",
        "DEFAULT_PROJECT_NAME": ref,
    }


def login_role(login: StudioLogin) -> str:
    """The project role postgres-meta logs in as for a Studio's request: read-only asks get the read-only role."""
    names = project_names(login.ref)
    return names.readonly if login.read_only else names.owner


def role_connection(
    host: str, port: int, ref: str, role: str, password: str, application_name: str = "nextmavens-studio"
) -> str:
    """A connection string for postgres-meta: one of the project's own login roles into its database only."""
    return (
        f"postgresql://{quote(role, safe='')}:{quote(password, safe='')}@{host}:{port}/"
        f"{quote(project_names(ref).database, safe='')}?application_name={quote(application_name, safe='')}"
    )


def owner_connection(host: str, port: int, ref: str, password: str) -> str:
    """The connection postgres-meta gets for a project's Studio as its owner role."""
    return role_connection(host, port, ref, project_names(ref).owner, password)


# ---------------------------------------------------------------- the Studio cookie and its ticket


@dataclass(frozen=True)
class StudioGrant:
    org: str
    ref: str
    session_hash: str  # the dashboard session's stored hash (sessions.secret_hash of its cookie)
    expires_at: int  # unix seconds


def _mac(key: bytes, purpose: str, body: str) -> str:
    return hmac.new(key, f"{purpose}|{body}".encode(), hashlib.sha256).hexdigest()


def sign_grant(key: bytes, purpose: str, grant: StudioGrant) -> str:
    body = f"{grant.org}.{grant.ref}.{grant.expires_at}.{grant.session_hash}"
    return f"{body}.{_mac(key, purpose, body)}"


def read_grant(key: bytes, purpose: str, text: str, now: float) -> StudioGrant | None:
    """The grant of a signed value of this purpose, or None when forged, of another purpose, or expired."""
    parts = text.split(".")
    if len(parts) != 5:
        return None
    org, ref, expires, session_hash, mac = parts
    if not hmac.compare_digest(mac.encode(), _mac(key, purpose, ".".join(parts[:4])).encode()):
        return None
    if not (_NAME.match(org) and _NAME.match(ref) and expires.isdigit() and _HASH.match(session_hash)):
        return None
    if int(expires) <= now:
        return None
    return StudioGrant(org, ref, session_hash, int(expires))
