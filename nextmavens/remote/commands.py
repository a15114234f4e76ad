"""The developer commands: log in to the platform service, see and create projects, link a folder to one.

They run on a laptop through the service's API (nextmavens.remote.api) with the login nextmavens.remote.credentials
resolves; they never import the engine, so they start fast (nextmavens.entry runs them without loading the host
commands). Output and exit codes: nextmavens.remote.output.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from nextmavens.remote import credentials
from nextmavens.remote.api import ApiClient, RemoteError, path_of
from nextmavens.remote.output import EXIT_LOGIN, DevFailure, done, emit_json, failure_of, say, show
from nextmavens.remote.session import api_errors, chosen_project, client_for

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON only, on stdout.")


@click.command()
@click.option(
    "--url",
    help="The platform service, e.g. https://platform.example.com (default: NEXTMAVENS_URL, else the stored login's).",
)
@click.option(
    "--token",
    help="An access token (nmp_...). Asked for with hidden input when left out: a token on the command line "
    "stays in the shell's history.",
)
@json_option
@api_errors
def login(url: str | None, token: str | None, as_json: bool) -> None:
    """Check a token with the service (GET /v1/me) and store the URL and token for later commands (mode 0600)."""
    stored = _stored_login()
    url = url or os.environ.get(credentials.URL_ENV) or (stored.url if stored else None)
    url = (url or click.prompt("Platform URL", err=True)).strip()
    url = ApiClient(url, "").url  # checked (and normalized) before the token is asked for
    if token is None:
        token = click.prompt("Access token (nmp_...)", hide_input=True, err=True)
    token = token.strip()
    if not token.startswith("nmp_"):
        raise DevFailure("that is not an access token: they start with nmp_ (ask an owner of your org for one)")
    try:
        me = ApiClient(url, token).get("/v1/me")
    except RemoteError as exc:
        if exc.status == 401:
            raise DevFailure(
                f"{url} refused the token (invalid, expired or revoked); nothing was stored", EXIT_LOGIN
            ) from None
        raise
    path = credentials.store_login(url, token, token_id=me["token"]["id"])
    if as_json:
        emit_json({"url": url, "stored_at": str(path), **me})
    done(f"Logged in to {url} as {me['member']} ({_roles(me)}); stored in {path}")
    if credentials.environment_login():
        say(f"note: {credentials.URL_ENV} and {credentials.TOKEN_ENV} are set and take precedence over this login")


@click.command()
def logout() -> None:
    """Revoke the stored login's token on the service (DELETE /v1/me/token), then remove the stored login. When
    the service cannot be reached or refuses, the login is removed all the same and the message says the token
    was not revoked and how to revoke it (exit 4 or 1)."""
    path = credentials.login_path()
    try:
        stored = credentials.read_login(path)
        unreadable = None
    except credentials.LoginError as exc:
        stored, unreadable = None, str(exc)
    if stored is None and unreadable is None:
        say(f"No stored login ({path} does not exist)")
    failure = None if stored is None else _revoke(stored)
    if stored is not None or unreadable is not None:
        credentials.forget_login(path)
    if credentials.environment_login():
        say(f"note: {credentials.URL_ENV} and {credentials.TOKEN_ENV} are still set: commands keep using them")
    if unreadable is not None:
        raise DevFailure(
            f"removed {path}, which could not be read, so no token was revoked; if it held one, ask an owner of your "
            "org to revoke it (`nextmavens token list` and `nextmavens token revoke ID` on the host)"
        )
    if failure is not None:
        assert stored is not None
        which = f"token {stored.token_id}" if stored.token_id else "the token"
        raise DevFailure(
            f"removed {path}, but {which} was NOT revoked ({failure.message}); it stays valid until it expires. "
            f"Revoke it once {stored.url} answers: an owner of your org runs `nextmavens token revoke "
            f"{stored.token_id or 'ID'}` on the host, or another login of yours sends DELETE /v1/tokens/"
            f"{stored.token_id or 'ID'}",
            failure_of(failure).exit_code,
        )
    if stored is not None:
        done(f"Logged out: the token is revoked and {path} removed")


def _revoke(login: credentials.Login) -> RemoteError | None:
    """Revokes the login's token; None when done, or when the service already refuses it (invalid, expired or
    revoked: nothing left to revoke)."""
    try:
        ApiClient(login.url, login.token).delete("/v1/me/token")
    except RemoteError as exc:
        if exc.status == 401:
            say("The token was already invalid, expired or revoked.")
            return None
        return exc
    return None


@click.command()
@json_option
@api_errors
def whoami(as_json: bool) -> None:
    """The member the login speaks for, the service, the orgs and roles it reaches, and the token's scope."""
    login = credentials.require_login()
    me = client_for(login).get("/v1/me")
    if as_json:
        emit_json({"url": login.url, **me})
        return
    token = me["token"]
    scope = token.get("project") or token.get("org") or "all your orgs"
    show(f"{me['member']} at {login.url}")
    show(f"orgs: {_roles(me)}")
    expires = token.get("expires_at") or "never"
    read_only = ", read-only" if token["read_only"] else ""
    show(f"token {token['id']} ({token['name']}): {scope}{read_only}; expires {expires}")
    if login.source == "environment":
        say(f"(from {credentials.URL_ENV} and {credentials.TOKEN_ENV})")


@click.command()
@json_option
@api_errors
def projects(as_json: bool) -> None:
    """The projects your login sees: declared in the manifests, applied, or both."""
    answer = client_for().get("/v1/projects")
    if as_json:
        emit_json(answer)
        return
    rows = [
        (f"{p['org']}/{p['ref']}", p["name"], p.get("applied_state") or "not applied", p.get("last_applied_at") or "-")
        for p in answer["projects"]
    ]
    if not rows:
        say("No projects visible to this login.")
        return
    _table(("PROJECT", "NAME", "STATE", "LAST APPLIED"), rows)


@click.command()
@click.argument("project", required=False, metavar="[ORG/REF]")
@json_option
@api_errors
def project(project: str | None, as_json: bool) -> None:
    """One project: state, API URL, health, last backup, and its anon key when your role allows.
    ORG/REF defaults to the folder's linked project."""
    org, ref = chosen_project(project)
    client = client_for()
    detail = client.get(path_of("v1", "projects", org, ref))
    keys = _keys_or_none(client, org, ref)
    if as_json:
        emit_json({**detail, "anon_key": keys["anon_key"] if keys else None})
        return
    show(f"{org}/{ref}: {detail['name']}")
    show(f"state: {detail.get('applied_state') or 'not applied'} (declared: {detail.get('declared_state') or '-'})")
    show(f"API URL: {detail['api_url']}")
    if keys:
        show(f"anon key: {keys['anon_key']}")
    backup = detail.get("last_good_backup")
    show(f"last good backup: {backup['finished_at'] if backup else 'none'}")


@click.command()
@click.argument("project", metavar="ORG/REF")
@api_errors
def link(project: str) -> None:
    """Link this folder to ORG/REF (.nextmavens/project), so later commands need no ORG/REF."""
    from nextmavens.projectlink import write_link

    org, ref = chosen_project(project)
    client_for().get(path_of("v1", "projects", org, ref))  # 404 when the login cannot see it
    path = write_link(Path.cwd(), f"{org}/{ref}")
    done(f"Linked {Path.cwd()} to {org}/{ref} ({path})")


@click.command("create-project")
@click.argument("project", metavar="ORG/REF")
@click.option("--name", required=True, help="The project's display name.")
@click.option("--site-url", required=True, help="The app's URL (GoTrue's SITE_URL): where sign-in links lead.")
@click.option("--redirect-url", "redirect_urls", multiple=True, help="Another allowed redirect URL (repeatable).")
@click.option("--disable-signup", is_flag=True, help="Only invited users may sign up.")
@click.option("--link", "link_here", is_flag=True, help="Also link this folder to the new project.")
@json_option
@api_errors
def create_project(
    project: str,
    name: str,
    site_url: str,
    redirect_urls: tuple[str, ...],
    disable_signup: bool,
    link_here: bool,
    as_json: bool,
) -> None:
    """Create a project through the service: its manifest is written, applied and committed as you (an admin or
    owner of the org). Prints the API URL, the anon key and what to do next."""
    org, ref = chosen_project(project)
    client = client_for()
    body = {
        "org": org,
        "ref": ref,
        "name": name,
        "site_url": site_url,
        "redirect_urls": list(redirect_urls),
        "disable_signup": disable_signup,
    }
    if not as_json:
        say(f"Creating {org}/{ref} (written, applied and committed by the service; this takes a few seconds)...")
    created = client.post("/v1/projects", body)
    keys = _keys_or_none(client, org, ref)
    api_url = keys["api_url"] if keys else client.get(path_of("v1", "projects", org, ref)).get("api_url")
    linked = None
    if link_here:
        from nextmavens.projectlink import write_link

        linked = str(write_link(Path.cwd(), f"{org}/{ref}"))
    if as_json:
        emit_json({**created, "api_url": api_url, "anon_key": keys["anon_key"] if keys else None, "linked": linked})
    else:
        done(f"Created {org}/{ref}" + (f" (commit {created['commit'][:12]})" if created.get("commit") else ""))
        show(f"API URL:  {api_url}")
        if keys:
            show(f"anon key: {keys['anon_key']}")
    if created.get("warning"):
        say(f"note: {created['warning']}", "yellow")
    if not keys:
        say(f"The anon key is not readable yet: run `nextmavens project {org}/{ref}` once the project is applied.")
    if not as_json:
        steps = [] if linked else [f"nextmavens link {org}/{ref}        # this folder's commands need no ORG/REF"]
        steps += [
            "your app: SUPABASE_URL=<API URL>, SUPABASE_ANON_KEY=<anon key>",
            "nextmavens db new <name>               # a migration in supabase/migrations/, then nextmavens db migrate",
        ]
        say("Next steps:\n" + "\n".join(f"  {step}" for step in steps))


def _keys_or_none(client: ApiClient, org: str, ref: str) -> dict[str, Any] | None:
    """The project's API URL and anon key, or None when the role does not allow it (403) or it is not applied
    yet (409)."""
    try:
        keys: dict[str, Any] = client.get(path_of("v1", "projects", org, ref, "keys"))
    except RemoteError as exc:
        if exc.status in (403, 409):
            return None
        raise
    return keys


def _stored_login() -> credentials.Login | None:
    try:
        return credentials.read_login(credentials.login_path())
    except credentials.LoginError:
        return None  # a broken file: `login` replaces it


def _roles(me: dict[str, Any]) -> str:
    return ", ".join(f"{org} {role}" for org, role in sorted(me["orgs"].items())) or "no org"


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        show("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


DEVELOPER_COMMANDS: tuple[click.Command, ...] = (login, logout, whoami, projects, project, link, create_project)
