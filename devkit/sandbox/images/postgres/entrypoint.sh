#!/bin/sh
# Initialise PGDATA on first start (superuser and password from the environment), then run postgres as the
# postgres user. Scripts in /docker-entrypoint-initdb.d (*.sql, *.sh) run once, on first start.
# Like supabase/postgres: pg_stat_statements, pgaudit and pg_cron preloaded (pg_cron's jobs live in the
# `postgres` database), and a supabase_admin superuser with POSTGRES_PASSWORD, the role the compose's
# postgres-meta, Realtime and Supavisor connect as. The arguments follow `postgres`: the image's CMD
# `-D /etc/postgresql` (as supabase/postgres's) overrides the `-D "$PGDATA"` put before them.
set -eu
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-postgres}"
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

case "${1:-postgres}" in
  postgres) shift || true ;;
  -*) ;;
  *) exec "$@" ;;
esac
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 0700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "POSTGRES_PASSWORD must be set" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  chown postgres "$pwfile"
  as_pg initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  cat >> "$PGDATA/postgresql.conf" <<CONF
listen_addresses = '*'
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
password_encryption = scram-sha-256
shared_preload_libraries = 'pg_stat_statements, pgaudit, pg_cron'
cron.database_name = 'postgres'
CONF
  cat >> "$PGDATA/pg_hba.conf" <<HBA
host all all 0.0.0.0/0 scram-sha-256
host all all ::/0 scram-sha-256
host replication all 0.0.0.0/0 scram-sha-256
HBA
  as_pg pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$POSTGRES_DB" != "postgres" ]; then
    as_pg psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\"" >/dev/null
  fi
  if [ "$POSTGRES_USER" != "supabase_admin" ]; then
    # psql 15 reads the password from its environment (\getenv) and quotes it (:'pw'): never in an argv
    printf '%s\n' '\getenv pw PW' "CREATE ROLE supabase_admin LOGIN SUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS PASSWORD :'pw';" \
      | PW="$POSTGRES_PASSWORD" as_pg psql -v ON_ERROR_STOP=1 -q -U "$POSTGRES_USER" -d postgres
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sql) as_pg psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f "$f" ;;
      *.sh) . "$f" ;;
    esac
  done
  as_pg pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups -- postgres -D "$PGDATA" "$@"
