"""Secrets in the control database: generated once, stored AES-GCM encrypted, read back on demand."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable

import psycopg

from nextmavens.control.crypto import Sealer
from nextmavens.control.store import projects
from nextmavens.control.store import secrets as sealed
from nextmavens.keys import (
    DAY_S,
    LEGACY_KEY_LIFETIME_S,
    ApiKeys,
    ProjectSecrets,
    issue_api_keys,
    key_lifetime_days,
    new_jwt_secret,
    new_password,
)
from nextmavens.naming import WHATSAPP_FORWARD_SECRET, project_names, whatsapp_secret_names


class SecretStore:
    def __init__(self, control: psycopg.Connection, sealer: Sealer) -> None:
        self._control = control
        self._sealer = sealer

    def get(self, scope: str, name: str) -> str | None:
        found = sealed.sealed(self._control, scope, name)
        return None if found is None else self._sealer.open(*found, f"{scope}/{name}")

    def put(self, scope: str, name: str, value: str) -> None:
        sealed.store_sealed(self._control, scope, name, self._sealer.seal(value, f"{scope}/{name}"))

    def get_or_create(self, scope: str, name: str, generate: Callable[[], str] | None = None) -> str:
        """The stored value, or a new one (`generate`, by default a password) stored first. Never replaces an
        existing value, so an apply interrupted and re-run cannot lose a password already given to a role."""
        existing = self.get(scope, name)
        if existing is not None:
            return existing
        if generate is None:
            generate = new_jwt_secret if name == "jwt_secret" else new_password
        value = generate()
        sealed.add_sealed_if_missing(self._control, scope, name, self._sealer.seal(value, f"{scope}/{name}"))
        stored = self.get(scope, name)
        assert stored is not None
        return stored

    def ensure_project(
        self,
        ref: str,
        org: str,
        name: str,
        state: str,
        roles: tuple[str, ...],
        whatsapp_instances: tuple[str, ...] = (),
    ) -> None:
        """Generate whatever the project lacks: JWT secret, key issue time, one password per login role, each
        WhatsApp instance's Evolution token and webhook secret (made here, whether or not Evolution can be
        reached now, so the edge step only ever reads them) and, with any instance, the project's forwarding
        secret (made before any `webhook_url` is declared, so the app can hold it before the first row comes)."""
        with self._control.transaction():
            projects.add_project_if_missing(self._control, ref, org, name, state)
            jwt_secret = self.get_or_create(ref, "jwt_secret")
            for role in roles:
                self.get_or_create(ref, f"password:{role}")
            for instance in whatsapp_instances:
                token_name, webhook_secret_name = whatsapp_secret_names(instance)
                self.get_or_create(ref, token_name)
                self.get_or_create(ref, webhook_secret_name, new_jwt_secret)
            if whatsapp_instances:
                self.get_or_create(ref, WHATSAPP_FORWARD_SECRET, new_jwt_secret)
            if projects.lock_keys_issued_at(self._control, ref) is None:
                self._store_keys(ref, self._new_keys(jwt_secret, int(time.time())))

    def _new_keys(self, secret: str, now: int) -> ApiKeys:
        """Keys valid for the configured lifetime (NEXTMAVENS_KEY_LIFETIME_DAYS), read when keys are issued."""
        return issue_api_keys(secret, now=now, expires_at=now + key_lifetime_days(os.environ) * DAY_S)

    def _store_keys(self, ref: str, keys: ApiKeys) -> None:
        projects.set_key_times(self._control, ref, keys.issued_at, keys.expires_at)
        self._record_keys(ref, keys)

    def project_secrets(self, ref: str) -> ProjectSecrets | None:
        times = projects.key_times(self._control, ref)
        jwt_secret = self.get(ref, "jwt_secret")
        if times is None or times[0] is None or jwt_secret is None:
            return None
        issued_at = times[0]
        expires_at = issued_at + LEGACY_KEY_LIFETIME_S if times[1] is None else times[1]
        passwords = {}
        for role in project_names(ref).login_roles:
            password = self.get(ref, f"password:{role}")
            if password is not None:
                passwords[role] = password
        keys = issue_api_keys(jwt_secret, now=issued_at, expires_at=expires_at)
        return ProjectSecrets(jwt_secret=jwt_secret, keys=keys, passwords=passwords)

    def project_org(self, ref: str) -> str | None:
        """The org of an applied, not destroyed project."""
        return projects.project_org(self._control, ref)

    def whatsapp_secrets(self, ref: str, instance: str) -> tuple[str, str] | None:
        """(Evolution token, webhook secret) of a declared instance, once the database step made them."""
        token_name, webhook_secret_name = whatsapp_secret_names(instance)
        token, webhook_secret = self.get(ref, token_name), self.get(ref, webhook_secret_name)
        if token is None or webhook_secret is None:
            return None
        return token, webhook_secret

    def whatsapp_forward_secret(self, ref: str) -> str | None:
        """The key rows forwarded to the project's app are signed with, once the database step made it."""
        return self.get(ref, WHATSAPP_FORWARD_SECRET)

    def whatsapp_instances(self, ref: str) -> list[str]:
        """Instances of the project whose secrets are sealed (declared now or before)."""
        prefix = whatsapp_secret_names("")[0]
        return [name.removeprefix(prefix) for name in sealed.names_in_scope(self._control, ref, prefix)]

    def forget_whatsapp(self, ref: str, instance: str) -> None:
        """After the instance is deleted from Evolution: a declared one gets new secrets at the next apply."""
        with self._control.transaction():
            for name in whatsapp_secret_names(instance):
                sealed.delete_sealed(self._control, ref, name)

    def set_app_secret(self, ref: str, app: str, name: str, value: str) -> None:
        """Seal the value of an app's declared secret (`nextmavens secrets set`), replacing any earlier one."""
        self.put(ref, app_secret_name(app, name), value)

    def app_secret_names(self, ref: str, app: str) -> list[str]:
        """Names of the app's secrets that have a value (no values)."""
        prefix = app_secret_name(app, "")
        return [name.removeprefix(prefix) for name in sealed.names_in_scope(self._control, ref, prefix)]

    def app_secrets(self, ref: str, app: str, names: Iterable[str]) -> dict[str, str]:
        """The values of the named secrets that are set (a release reads them to write its 0600 file)."""
        values = {}
        for name in names:
            value = self.get(ref, app_secret_name(app, name))
            if value is not None:
                values[name] = value
        return values

    def forget_project(self, ref: str) -> None:
        """After destroy: its secrets go, its record stays (marked destroyed) for the audit trail."""
        with self._control.transaction():
            sealed.delete_scope(self._control, ref)
            sealed.revoke_keys(self._control, ref)
            projects.mark_destroyed(self._control, ref)

    def rotate_keys(self, ref: str) -> ApiKeys:
        """A new JWT secret and keys (valid for the configured lifetime); the old keys are recorded as
        revoked. Signing with a new secret is what makes the old keys (and old user sessions) fail wherever
        the secret is checked, once the edge holds it: the caller converges the edge next."""
        with self._control.transaction():
            old = self.project_secrets(ref)
            if old is None:
                raise LookupError(f"project {ref!r} has no keys yet; run apply first")
            sealed.revoke_keys(self._control, ref)
            secret = new_jwt_secret()
            keys = self._new_keys(secret, max(int(time.time()), old.keys.issued_at + 1))
            self.put(ref, "jwt_secret", secret)
            self._store_keys(ref, keys)
        return keys

    def _record_keys(self, ref: str, keys: ApiKeys) -> None:
        for role, token in (("anon", keys.anon), ("service_role", keys.service_role)):
            sealed.record_key(self._control, ref, role, keys.issued_at, keys.expires_at, key_fingerprint(token))


def app_secret_name(app: str, name: str) -> str:
    """Where an app's secret is sealed, in its project's scope: `app:<app>:<NAME>` (app names hold no ':')."""
    return f"app:{app}:{name}"


def key_fingerprint(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:32]
