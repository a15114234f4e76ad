"""The developer CLI's side of the platform service: its HTTP client (`api`) and the login it uses
(`credentials`). Standard library only, so a laptop's `nextmavens` starts fast and needs no PostgreSQL client.

    from nextmavens.remote.credentials import resolve_login
    from nextmavens.remote.api import ApiClient, RemoteError

    login = resolve_login()           # NEXTMAVENS_URL + NEXTMAVENS_TOKEN, else the stored login, else None
    client = ApiClient(login.url, login.token)
    client.get("/v1/me")              # parsed JSON; RemoteError(status, code, message) otherwise
"""
