"""The developer's login: the platform service's URL and an access token (nmp_...).

Resolution order: NEXTMAVENS_URL and NEXTMAVENS_TOKEN (both set: CI, scripts), else the file `nextmavens login`
wrote in the user's config directory (platformdirs: ~/.config/nextmavens/login.json on Linux), else none.
The file is created with mode 0600 in a folder of mode 0700 and replaced atomically; it is never readable by
others, not even for a moment.

`uses_api()` is the rule for commands that exist on both sides: they go through the API when a login is present
and NEXTMAVENS_DSN is not set (the operator's host-side commands keep using the control database directly).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

URL_ENV = "NEXTMAVENS_URL"
TOKEN_ENV = "NEXTMAVENS_TOKEN"
DSN_ENV = "NEXTMAVENS_DSN"
CONFIG_DIR_ENV = "NEXTMAVENS_CONFIG_DIR"  # tests and unusual setups: the folder instead of the user's config dir
LOGIN_FILE = "login.json"

NOT_LOGGED_IN = (
    f"not logged in: run `nextmavens login --url https://api.<your domain>` (or set {URL_ENV} and {TOKEN_ENV})"
)


class LoginError(Exception):
    """No usable login; the message says what to do."""


@dataclass(frozen=True)
class Login:
    url: str
    token: str
    source: str  # "environment" or the file's path
    token_id: str | None = None  # the token's public id (tok_...), stored by `login` so `logout` can name it

    def __repr__(self) -> str:  # never the token
        return f"Login(url={self.url!r}, source={self.source!r})"


def config_dir() -> Path:
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override)
    from platformdirs import user_config_path

    return user_config_path("nextmavens", appauthor=False)


def login_path() -> Path:
    return config_dir() / LOGIN_FILE


def resolve_login() -> Login | None:
    """The environment's pair, else the stored login, else None. One of the pair alone is an error."""
    url, token = os.environ.get(URL_ENV, "").strip(), os.environ.get(TOKEN_ENV, "").strip()
    if url and token:
        return Login(url, token, "environment")
    if url or token:
        missing = TOKEN_ENV if url else URL_ENV
        raise LoginError(f"{URL_ENV} and {TOKEN_ENV} go together: {missing} is not set")
    return read_login(login_path())


def environment_login() -> bool:
    """Both NEXTMAVENS_URL and NEXTMAVENS_TOKEN are set (they override the stored login)."""
    return bool(os.environ.get(URL_ENV, "").strip() and os.environ.get(TOKEN_ENV, "").strip())


def require_login() -> Login:
    login = resolve_login()
    if login is None:
        raise LoginError(NOT_LOGGED_IN)
    return login


def uses_api() -> bool:
    """Commands that exist on both sides go through the API: a login is present and NEXTMAVENS_DSN is not set."""
    if os.environ.get(DSN_ENV):
        return False
    try:
        return resolve_login() is not None
    except LoginError:
        return True  # half an environment pair: the API path reports it


def read_login(path: Path) -> Login | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        problem = type(exc).__name__
        raise LoginError(f"cannot read the stored login {path} ({problem}): run `nextmavens login`") from None
    url, token, token_id = (data.get(key) if isinstance(data, dict) else None for key in ("url", "token", "token_id"))
    if not (isinstance(url, str) and isinstance(token, str) and url and token):
        raise LoginError(f"the stored login {path} lacks url or token: run `nextmavens login`")
    return Login(url, token, str(path), token_id if isinstance(token_id, str) and token_id else None)


def store_login(url: str, token: str, path: Path | None = None, token_id: str | None = None) -> Path:
    """Writes the login: a new file created 0600 (never widened, never chmod'ed after writing), then renamed over
    the old one; the folder is created 0700."""
    target = path or login_path()
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        staging.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump({"url": url, "token": token, **({"token_id": token_id} if token_id else {})}, handle)
            handle.write("\n")
        os.replace(staging, target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return target


def forget_login(path: Path | None = None) -> bool:
    """Removes the stored login; False when there was none."""
    try:
        (path or login_path()).unlink()
    except FileNotFoundError:
        return False
    return True
