"""The workshop: tools for developing and testing NextMavens, never installed on a production host.

Its own distribution (nextmavens-devkit, pyproject.toml beside this file), apart from the product wheel; the
product (`nextmavens`) never imports it. Its command groups join the `nextmavens` command line through the
entry-point group `nextmavens.commands`.

- :mod:`devkit.sandbox`: the local test host (Debian 13 under systemd-nspawn) and its locally built images,
  among them the one stand-in for the upstream programs that cannot be pulled here (images/standin/standin.py).
- :mod:`devkit.localdb`: a throwaway local PostgreSQL (the test suite's servers, `nextmavens localdb`).
- :mod:`devkit.standins`: the stand-in for the Telegram Bot API (backups' tests and benchmarks).
"""
