"""The master key and AES-GCM sealing of secrets stored in the control database."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from nextmavens.files import SecretFileError, read_secret_file, write_atomic

# Where the engine keeps its master key on a host (NEXTMAVENS_MASTER_KEY overrides it).
DEFAULT_MASTER_KEY = "/etc/nextmavens/master.key"

KEY_BYTES = 32
NONCE_BYTES = 12


class MasterKeyError(Exception):
    pass


def load_or_create_master_key(path: Path) -> bytes:
    """Read the master key; create it (0600) when the file does not exist.

    A key file readable or writable by group or others is refused: whoever reads it reads every secret.
    """
    if path.exists():
        return load_master_key(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
    # Linked into place whole: a reader never sees a partial key, and of two processes creating it at once
    # the first link wins and the other reads that key.
    try:
        write_atomic(path, base64.b64encode(key).decode() + "\n", 0o600, exclusive=True)
    except FileExistsError:
        return load_master_key(path)
    return key


def load_master_key(path: Path) -> bytes:
    try:
        text = read_secret_file(path, "master key file")
    except SecretFileError as exc:
        raise MasterKeyError(str(exc)) from None
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError:
        raise MasterKeyError(f"master key file {path} does not hold a base64 key") from None
    if len(key) != KEY_BYTES:
        raise MasterKeyError(f"master key file {path} must hold {KEY_BYTES} bytes, found {len(key)}")
    return key


class Sealer:
    """Encrypts and decrypts secret values; `context` (scope/name) is authenticated with each one."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "Sealer(<key hidden>)"

    def seal(self, plaintext: str, context: str) -> tuple[bytes, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        return nonce, self._aead.encrypt(nonce, plaintext.encode(), context.encode())

    def open(self, nonce: bytes, ciphertext: bytes, context: str) -> str:
        return self._aead.decrypt(nonce, ciphertext, context.encode()).decode()
