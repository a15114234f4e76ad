"""The developer's commands that work through the platform service's API from a laptop: `db` (new, migrate,
migrations) and `logs`; `whatsapp connect` picks the API the same way (see session.uses_api).

Exit codes: 0 done (also: nothing to do); 1 an expected failure (message on stderr, naming what to do);
2 a usage error (click's); 130 stopped by Ctrl-C (SIGINT) or SIGTERM while following logs.
"""
