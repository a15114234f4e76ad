"""Pydantic models of the project and organization manifests.

Strict on purpose: an unknown key is an error (a typo must never be silently ignored), and YAML's loose
typing (`"5"`, `yes`) is not coerced. Pure: no I/O; the loader feeds these plain values.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from nextmavens.naming import INSTANCE_NAME_PATTERN as INSTANCE_NAME_PATTERN
from nextmavens.naming import REF_PATTERN as REF_PATTERN
from nextmavens.naming import RESERVED_REF_PREFIXES, RESERVED_REFS, pg_name
from nextmavens.validation import check_domain, reject_repeats

# REF_PATTERN and INSTANCE_NAME_PATTERN live in nextmavens.naming (free of pydantic: the developer commands read
# them at start-up); the models and the modules that import them from here use the same two.
SCHEMA_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
# Python's `$` also matches before a trailing newline: every check in Python code uses fullmatch.
# URLs are plain ASCII from RFC 3986's unreserved and reserved sets plus `%`, without `$`: manifest URLs
# reach env files that docker compose reads, where `${VAR}` would pull in compose's own environment.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!&'()*+,;=%]")
# Unicode categories never allowed in manifest text: control, format (bidi overrides, zero-width),
# surrogates, and line/paragraph separators. They break SQL literals, logs and terminals at apply time.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

# Extensions a project may ask for. The engine creates each declared one in the project's `extensions`
# schema, owned by its layer role. A database owner may also create *trusted* extensions itself (every contrib
# one here but pg_stat_statements; the others as their control files say): the planner reports a declared
# extension it finds owned by another role or in another schema as an error, and never takes it over.
ALLOWED_EXTENSIONS = (
    "uuid-ossp",
    "pgcrypto",
    "pg_trgm",
    "citext",
    "hstore",
    "unaccent",
    "btree_gin",
    "btree_gist",
    "fuzzystrmatch",
    "intarray",
    "ltree",
    "tablefunc",
    "pg_stat_statements",
    "vector",
    "postgis",
    "pgjwt",
)
# Schemas the Supabase layer owns in every project database, plus PostgreSQL's own.
RESERVED_SCHEMAS = frozenset(
    {
        "public",
        "auth",
        "storage",
        "extensions",
        "graphql",
        "graphql_public",
        "pgbouncer",
        "realtime",
        "_realtime",
        "vault",
        "pgsodium",
        "information_schema",
        "whatsapp",  # the platform's, with the project's WhatsApp messages (engine/sqlgen.whatsapp_statements)
        "email",  # the platform's, with the project's sent and received email (engine/emailsql.py)
    }
)
WHATSAPP_EVENTS = (
    "APPLICATION_STARTUP",
    "QRCODE_UPDATED",
    "MESSAGES_SET",
    "MESSAGES_UPSERT",
    "MESSAGES_UPDATE",
    "MESSAGES_DELETE",
    "SEND_MESSAGE",
    "CONTACTS_SET",
    "CONTACTS_UPSERT",
    "CONTACTS_UPDATE",
    "PRESENCE_UPDATE",
    "CHATS_SET",
    "CHATS_UPSERT",
    "CHATS_UPDATE",
    "CHATS_DELETE",
    "GROUPS_UPSERT",
    "GROUP_UPDATE",
    "GROUP_PARTICIPANTS_UPDATE",
    "CONNECTION_UPDATE",
    "CALL",
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def check_text(value: str) -> str:
    """Free text (names): printable characters only, so a NUL or an escape sequence is refused here,
    not by PostgreSQL or a terminal in the middle of an apply."""
    for ch in value:
        if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES:
            raise ValueError(f"must not contain control or invisible characters (found U+{ord(ch):04X})")
    return value


def check_url(value: str) -> str:
    if "$" in value:
        raise ValueError("a URL must not contain '$' (docker compose would expand it from its own environment)")
    bad = next((ch for ch in value if not _URL_CHARS.fullmatch(ch)), None)
    if bad is not None:
        shown = repr(bad) if bad.isprintable() and not bad.isspace() else f"U+{ord(bad):04X}"
        raise ValueError(
            f"a URL must not contain the character {shown} (URLs are ASCII: percent-encode anything else, "
            "use punycode for host names)"
        )
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise ValueError(f"must be an http(s) URL with a host name, got {value!r}")
    return value


def check_redirect_url(value: str) -> str:
    check_url(value)
    if "," in value:
        # GoTrue reads its allow list as one comma-separated variable: a comma would add a second URL.
        raise ValueError("a redirect URL must not contain ',' (percent-encode it as %2C)")
    return value


# The same rules for editors, in the JSON Schema only: the validators above give the clearer messages.
URL_SCHEMA_PATTERN = r"^https?://[A-Za-z0-9\-._~:/?#\[\]@!&'()*+,;=%]+$"
TEXT_SCHEMA_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]*$"

Url = Annotated[str, AfterValidator(check_url), Field(json_schema_extra={"pattern": URL_SCHEMA_PATTERN})]
RedirectUrl = Annotated[
    str,
    AfterValidator(check_redirect_url),
    Field(json_schema_extra={"pattern": URL_SCHEMA_PATTERN.replace(",", "")}),
]
Domain = Annotated[str, AfterValidator(check_domain)]
Text = Annotated[
    str,
    Field(min_length=1, max_length=120, json_schema_extra={"pattern": TEXT_SCHEMA_PATTERN}),
    AfterValidator(check_text),
]


class Pooler(Strict):
    """Supavisor pool for the project's database."""

    size: Annotated[int, Field(ge=1, le=100, description="Server connections in the pool")] = 10
    mode: Literal["transaction", "session"] = "transaction"


class Database(Strict):
    extensions: list[Literal[ALLOWED_EXTENSIONS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["uuid-ossp", "pgcrypto"],
        description="Extensions created in the project's `extensions` schema (from an allowlist)",
    )
    schemas: list[Annotated[str, Field(pattern=SCHEMA_NAME_PATTERN, max_length=63)]] = Field(
        default_factory=list,
        description="Extra schemas owned by the project's owner role, exposed to the API roles",
    )
    connection_limit: Annotated[int, Field(ge=5, le=500)] = 60
    pooler: Pooler = Field(default_factory=Pooler)

    @field_validator("extensions")
    @classmethod
    def _unique_extensions(cls, value: list[str]) -> list[str]:
        reject_repeats(value, "extension")
        return value

    @field_validator("schemas")
    @classmethod
    def _schemas_not_reserved(cls, value: list[str]) -> list[str]:
        reject_repeats(value, "schema")
        for name in value:
            if name in RESERVED_SCHEMAS or name.startswith(("pg_", "supabase_")):
                raise ValueError(f"schema {name!r} is reserved")
        return value


class RateLimit(Strict):
    """Requests allowed per consumer (Kong rate-limiting, local policy). At least one window is set."""

    second: Annotated[int, Field(ge=1)] | None = None
    minute: Annotated[int, Field(ge=1)] | None = None
    hour: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _one_window(self) -> RateLimit:
        if self.second is None and self.minute is None and self.hour is None:
            raise ValueError("a rate limit needs at least one of second, minute, hour")
        return self


class RateLimits(Strict):
    anon: RateLimit = Field(default_factory=lambda: RateLimit(second=20, hour=20000))
    service_role: RateLimit = Field(default_factory=lambda: RateLimit(second=100))


class Api(Strict):
    jwt_expiry: Annotated[int, Field(ge=300, le=604800, description="Seconds a user session JWT lives")] = 3600
    max_rows: Annotated[int, Field(ge=1, le=100000)] = 1000
    rate_limits: RateLimits = Field(default_factory=RateLimits)


class Auth(Strict):
    site_url: str = Field(
        description="The app's URL; GoTrue's redirect default", json_schema_extra={"pattern": URL_SCHEMA_PATTERN}
    )
    redirect_urls: list[RedirectUrl] = Field(default_factory=list)
    disable_signup: bool = False

    @field_validator("site_url")
    @classmethod
    def _site_url(cls, value: str) -> str:
        return check_url(value)


class WhatsAppInstance(Strict):
    name: Annotated[str, Field(pattern=INSTANCE_NAME_PATTERN, max_length=40)]
    webhook_url: Url | None = None
    events: list[Literal[WHATSAPP_EVENTS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["MESSAGES_UPSERT", "CONNECTION_UPDATE"]
    )


class WhatsApp(Strict):
    instances: list[WhatsAppInstance] = Field(default_factory=list)

    @field_validator("instances")
    @classmethod
    def _unique(cls, value: list[WhatsAppInstance]) -> list[WhatsAppInstance]:
        reject_repeats([i.name for i in value], "WhatsApp instance")
        return value


# An address the platform sends from or receives at: ASCII, lowercase (addresses are compared as written, so
# `Info@` and `info@` can never belong to two projects), a local part of RFC 5322's dot-atom characters.
EMAIL_LOCAL_PATTERN = r"[a-z0-9!#%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#%&'*+/=?^_`{|}~-]+)*"
EMAIL_ADDRESS_SCHEMA_PATTERN = rf"^{EMAIL_LOCAL_PATTERN}@[a-z0-9.-]+$"


def check_email_address(value: str) -> str:
    """A lowercase ASCII address `local@domain` whose domain passes check_domain."""
    local, at, domain = value.rpartition("@")
    if not at or len(value) > 254 or len(local) > 64 or not re.fullmatch(EMAIL_LOCAL_PATTERN, local, re.ASCII):
        raise ValueError(
            f"{value!r} is not an email address the platform accepts (lowercase ASCII local@domain, the local part "
            "of letters, digits and .!#%&'*+/=?^_`{|}~- without leading, trailing or double dots)"
        )
    check_domain(domain)
    return value


EmailAddress = Annotated[
    str,
    AfterValidator(check_email_address),
    Field(max_length=254, json_schema_extra={"pattern": EMAIL_ADDRESS_SCHEMA_PATTERN}),
]


class Email(Strict):
    """Email through the platform: sent with Resend from `from_domain` (verified in the platform's Resend account),
    received by the inbound mail worker at `inbound_addresses`. Declaring it gives the project's database the
    `email` schema."""

    from_domain: Domain = Field(description="The domain mail is sent from; one project per domain")
    from_name: Text = Field(description="The sender's display name")
    reply_to: EmailAddress | None = None
    inbound_addresses: list[EmailAddress] = Field(
        default_factory=list, description="Addresses whose mail lands in email.inbound; one project per address"
    )
    send_per_minute: Annotated[int, Field(ge=1, le=6000)] = Field(
        default=60,
        description="Emails the project may send a minute (a burst of as many, then one every 60/n s); "
        "beyond: 429 with Retry-After",
    )

    @field_validator("from_name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        # the name is written into a `From: Name <address>` header: these would end or split it
        bad = next((ch for ch in value if ch in '<>"\\,;@'), None)
        if bad is not None:
            raise ValueError(f"from_name must not contain {bad!r} (it is written into the From header)")
        return value

    @field_validator("inbound_addresses")
    @classmethod
    def _unique_inbound(cls, value: list[str]) -> list[str]:
        reject_repeats(value, "inbound address")
        return value


# A file pattern of the offload policy, relative to the project's storage folder: `*`, `?`, `[...]` and `**`,
# no `..`, no leading `/`, no backslash.
OFFLOAD_PATTERN = r"^[A-Za-z0-9_.*?\[\]!/-]{1,200}$"


# A table column of the project's database named by the offload policy (plain lowercase SQL names).
SQL_NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"


class OffloadReference(Strict):
    """A text column of the project's database holding files' paths (relative to its storage folder, as the pass
    names them): once a file's upload is verified, each row holding its path gets its URL instead, committed as the
    project's owner role before the file is deleted."""

    schema_: Annotated[str, Field(pattern=SQL_NAME_PATTERN)] = Field(alias="schema")
    table: Annotated[str, Field(pattern=SQL_NAME_PATTERN)]
    column: Annotated[str, Field(pattern=SQL_NAME_PATTERN)]

    @field_validator("schema_")
    @classmethod
    def _project_schema(cls, value: str) -> str:
        if value.startswith("pg_") or value == "information_schema":
            raise ValueError(f"schema {value!r} is PostgreSQL's own, not the project's")
        return value


class MediaOffload(Strict):
    """Moving the project's large files to Cloudinary: off unless declared."""

    paths: list[Annotated[str, Field(pattern=OFFLOAD_PATTERN)]] = Field(
        min_length=1, description="Glob patterns of the files to offload, relative to the project's storage folder"
    )
    older_than_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        description="Only files not modified for this many days"
    )
    references: list[OffloadReference] = Field(
        default_factory=list,
        max_length=20,
        description="Columns ({schema, table, column}) holding files' relative paths, rewritten to their URLs",
    )

    @field_validator("paths")
    @classmethod
    def _unique_paths(cls, value: list[str]) -> list[str]:
        reject_repeats(value, "offload path")
        for pattern in value:
            if pattern.startswith("/") or ".." in pattern.split("/"):
                raise ValueError(f"offload path {pattern!r} must stay inside the storage folder (no leading /, no ..)")
        return value


class Backup(Strict):
    schedule: Literal["hourly", "daily", "weekly"] = "daily"
    retention_days: Annotated[int, Field(ge=1, le=3650)] = 14


class Storage(Strict):
    enabled: bool = False
    file_size_limit_mb: Annotated[int, Field(ge=1, le=5000)] = 50


class Resources(Strict):
    memory_mb: Annotated[int, Field(ge=32, le=16384)] | None = Field(
        default=None, description="Footprint hint for memory admission; default: the sum of its services"
    )


APP_NAME_PATTERN = r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$"
# Environment and secret names: what a POSIX shell and every runtime read without quoting.
ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]*$"
# Names the platform sets in every app container itself.
RESERVED_ENV = frozenset({"PORT", "HOSTNAME", "HOME", "PATH"})
APP_BUILDS = ("auto", "dockerfile", "node", "python", "static")
# A git ref or a path inside the source: no leading '-' (never an option to git), no '..', no spaces.
_GIT_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
_SOURCE_PATH = re.compile(r"/[A-Za-z0-9._/-]{1,400}")
_RELATIVE_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}")
_HEALTH_PATH = re.compile(r"/[A-Za-z0-9\-._~/%?=&]{0,199}")
ENV_VALUE_MAX = 4096
BUILD_SCHEMA_PATTERN = r"^(auto|dockerfile|node|python|static|dockerfile:[A-Za-z0-9_][A-Za-z0-9._/-]*)$"


def _no_dot_dot(value: str, what: str) -> None:
    if ".." in value.split("/") or "//" in value:
        raise ValueError(f"{what} {value!r} must not contain '..' or empty path parts")


def check_app_source(value: str) -> str:
    """`upload` (the developer CLI sends a `git archive`), an absolute path on the host, or a git URL with an
    optional `#ref` (default: the remote's HEAD)."""
    if value == "upload":
        return value
    if value.startswith("/"):
        if not _SOURCE_PATH.fullmatch(value):
            raise ValueError(f"source path {value!r} may hold only letters, digits, '.', '_', '-' and '/'")
        _no_dot_dot(value, "source path")
        return value
    url, _, ref = value.partition("#")
    if not url.startswith(("https://", "http://")):
        raise ValueError("source must be 'upload', an absolute path on the host, or an http(s) git URL[#ref]")
    check_url(url)
    if "@" in url.split("/", 3)[2]:
        raise ValueError("a git URL must not hold credentials (user@ or user:password@)")
    if ref and not _GIT_REF.fullmatch(ref):
        raise ValueError(f"git ref {ref!r} may hold only letters, digits, '.', '_', '-' and '/', not first")
    if ref:
        _no_dot_dot(ref, "git ref")
    return value


def check_app_build(value: str) -> str:
    """One of APP_BUILDS, or `dockerfile:<path inside the source>`."""
    if value in APP_BUILDS:
        return value
    kind, _, path = value.partition(":")
    if kind != "dockerfile" or not path:
        raise ValueError(f"build must be one of {', '.join(APP_BUILDS)} or dockerfile:<path>, got {value!r}")
    if not _RELATIVE_PATH.fullmatch(path):
        raise ValueError(f"dockerfile path {path!r} must be relative, of letters, digits, '.', '_', '-', '/'")
    _no_dot_dot(path, "dockerfile path")
    return value


def check_health_path(value: str) -> str:
    if not _HEALTH_PATH.fullmatch(value):
        raise ValueError(f"health_path {value!r} must start with '/' and hold only URL path characters")
    return value


def check_env_value(value: str) -> str:
    check_text(value)
    if len(value) > ENV_VALUE_MAX:
        raise ValueError(f"an env value is at most {ENV_VALUE_MAX} characters")
    return value


EnvName = Annotated[str, Field(pattern=ENV_NAME_PATTERN, max_length=100)]


class App(Strict):
    """An app the platform builds and runs for the project (`nextmavens deploy`), served by nginx on its domains."""

    name: Annotated[str, Field(pattern=APP_NAME_PATTERN, min_length=1, max_length=30)]
    source: Annotated[
        str,
        AfterValidator(check_app_source),
        Field(
            description="'upload', an absolute path on the host, or an http(s) git URL with an optional #ref",
            max_length=500,
        ),
    ] = "upload"
    build: Annotated[
        str,
        AfterValidator(check_app_build),
        Field(
            description="auto (detect), dockerfile, dockerfile:<path>, node, python or static",
            json_schema_extra={"pattern": BUILD_SCHEMA_PATTERN},
        ),
    ] = "auto"
    port: Annotated[int, Field(ge=1, le=65535, description="The port the app listens on inside its container")] = 3000
    health_path: Annotated[
        str,
        AfterValidator(check_health_path),
        Field(description="Answers 2xx when the app is ready", json_schema_extra={"pattern": r"^/"}),
    ] = "/"
    env: dict[EnvName, Annotated[str, AfterValidator(check_env_value)]] = Field(
        default_factory=dict, description="Plain values (they are in git; secrets go in `secrets`)"
    )
    secrets: list[EnvName] = Field(
        default_factory=list,
        description="Names whose values are set with `nextmavens secrets set ORG/REF APP NAME`",
    )
    domains: list[Domain] = Field(default_factory=list, description="Names nginx serves the app on")
    memory_mb: Annotated[int, Field(ge=32, le=16384, description="Memory limit; counted by memory admission")] = 256
    retain: Annotated[int, Field(ge=1, le=20, description="Old releases kept for rollback")] = 3

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name in RESERVED_ENV:
                raise ValueError(f"env {name!r} is set by the platform")
        return value

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: list[str]) -> list[str]:
        reject_repeats(value, "secret")
        for name in value:
            if name in RESERVED_ENV:
                raise ValueError(f"secret {name!r} is set by the platform")
        return value

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        reject_repeats(value, "domain")
        return value

    @model_validator(mode="after")
    def _env_or_secret(self) -> App:
        both = sorted(set(self.env) & set(self.secrets))
        if both:
            raise ValueError(f"{', '.join(both)}: a name is either in env or in secrets, not both")
        return self


class ProjectManifest(Strict):
    """`projects/<org>/<ref>.yaml`."""

    ref: Annotated[str, Field(pattern=REF_PATTERN, min_length=3, max_length=63)]
    name: Text
    state: Literal["active", "suspended", "absent"] = "active"
    database: Database = Field(default_factory=Database)
    api: Api = Field(default_factory=Api)
    auth: Auth
    domains: list[Domain] = Field(default_factory=list, description="Custom domains served by this project")
    whatsapp: WhatsApp = Field(default_factory=WhatsApp)
    email: Email | None = Field(default=None, description="Email sending and receiving (off unless declared)")
    media_offload: MediaOffload | None = Field(
        default=None, description="Large files moved to Cloudinary (off unless declared)"
    )
    backup: Backup = Field(default_factory=Backup)
    storage: Storage = Field(default_factory=Storage)
    resources: Resources = Field(default_factory=Resources)
    apps: list[App] = Field(default_factory=list, description="Apps built and run for the project")

    @field_validator("apps")
    @classmethod
    def _apps(cls, value: list[App]) -> list[App]:
        reject_repeats([a.name for a in value], "app")
        seen: dict[str, str] = {}
        for app in value:
            for domain in app.domains:
                if domain in seen:
                    raise ValueError(f"domain {domain!r} is served by both app {seen[domain]!r} and app {app.name!r}")
                seen[domain] = app.name
        return value

    @field_validator("ref")
    @classmethod
    def _ref_not_reserved(cls, value: str) -> str:
        if value in RESERVED_REFS or pg_name(value) in RESERVED_REFS or value.startswith(RESERVED_REF_PREFIXES):
            raise ValueError(f"ref {value!r} is reserved")
        return value

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        reject_repeats(value, "domain")
        return value


class Member(Strict):
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254), AfterValidator(check_text)]
    role: Literal["owner", "admin", "developer"]


class OrgManifest(Strict):
    """`projects/<org>/org.yaml` (optional)."""

    name: Text
    members: list[Member] = Field(default_factory=list)

    @field_validator("members")
    @classmethod
    def _unique_members(cls, value: list[Member]) -> list[Member]:
        reject_repeats([m.email.lower() for m in value], "member email")
        return value
