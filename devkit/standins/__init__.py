"""Local stand-ins for outside services the tests and benchmarks cannot reach, one per upstream program:
:mod:`.telegram` (the Telegram Bot API). The stand-in for the programs of the Supabase stack is the sandbox
image's (devkit/sandbox/images/standin/standin.py)."""
