"""Files the product reads secrets from and the files it writes: private from the first byte, whole or absent.

A secret file must be its owner's alone (no group or other bits) and hold something: an empty password or
key is refused rather than used. A written file appears under its name whole, with its final mode already
set before any content reaches the disk, and survives a crash once the call returns.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


class SecretFileError(Exception):
    """A secret file that is missing, readable or writable by others, or empty; the message names it."""


def read_secret_file(path: Path, what: str = "secret file") -> str:
    """The stripped content of a private (0600 or stricter) file; `what` names it in the errors."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise SecretFileError(f"{what} {path} does not exist") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(
            f"{what} {path} is accessible by group or others (mode {mode:04o}, must be 0600); run: chmod 600 {path}"
        )
    value = path.read_text().strip()
    if not value:
        raise SecretFileError(f"{what} {path} is empty")
    return value


def write_atomic(path: Path, content: str | bytes, mode: int = 0o600, *, exclusive: bool = False) -> None:
    """Write `content` to `path` through a temporary file beside it: created private, given `mode` before the
    first byte, synced, then renamed over `path`. With `exclusive` it is linked instead, so an existing file
    is never replaced (FileExistsError). On any error the temporary file goes and `path` is as it was."""
    data = content.encode() if isinstance(content, str) else content
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
    temp = Path(name)
    try:
        try:
            os.fchmod(fd, mode)  # exactly `mode` whatever the umask, before any content
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            os.link(temp, path)
        else:
            os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    _sync_folder(path.parent)


def create_private_file(path: Path, mode: int = 0o600) -> None:
    """Create `path` empty with `mode`, refusing to touch an existing file (FileExistsError): a name reserved
    for content another program writes later."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))


def _sync_folder(folder: Path) -> None:
    # The new name must survive a crash as well as the content.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
