"""The developer CLI's side of the platform service, standard library and click only, so a laptop's `nextmavens`
starts fast and needs no PostgreSQL client:

- api: the HTTP client (bearer token, JSON get/post/patch, a line stream for server-sent events) and RemoteError;
- credentials: the login (NEXTMAVENS_URL + NEXTMAVENS_TOKEN, else the stored 0600 file) and `uses_api()`, the rule
  for commands that exist on both sides;
- session: what a command starts from (the client, ORG/REF or the linked project, errors as exit codes);
- output: JSON to stdout, messages to stderr, colour rules, the documented exit codes;
- commands: login, logout, whoami, projects, project, link, create-project.

    from nextmavens.remote.session import api_errors, chosen_project, client_for

    @click.command()
    @api_errors                       # RemoteError/LoginError -> message and exit code
    def example() -> None:
        org, ref = chosen_project(None)   # the folder's linked project
        client_for().get(path_of("v1", "projects", org, ref))
"""
