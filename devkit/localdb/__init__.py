"""A throwaway local PostgreSQL: :mod:`.server` (initdb, pg_ctl, a free loopback port) and :mod:`.cli` (the
`nextmavens localdb` command group)."""
