"""The developer's commands that work through the platform service's API from a laptop: `db` (new, migrate,
migrations) and `logs`; `whatsapp connect` picks the API by the same rule (remote/credentials.uses_api).

They speak as every developer command does (nextmavens/remote/output.py: JSON only on stdout, messages on
stderr, the same exit codes); `logs` adds 130, stopped by Ctrl-C (SIGINT) or SIGTERM.
"""
