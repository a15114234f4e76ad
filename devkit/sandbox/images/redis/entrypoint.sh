#!/bin/sh
# Run redis-server as the redis user. Arguments after "redis-server" pass through (e.g. --appendonly yes);
# REDIS_PASSWORD, when set, becomes requirepass in a 0600 config file.
set -eu
case "${1:-redis-server}" in
  redis-server) shift || true ;;
  -*) ;;
  *) exec "$@" ;;
esac
conf=/run/redis-sandbox.conf
umask 077
{
  echo "bind 0.0.0.0 ::"
  echo "protected-mode no"
  echo "dir /data"
  if [ -n "${REDIS_PASSWORD:-}" ]; then
    printf 'requirepass "%s"\n' "$REDIS_PASSWORD"
  fi
} > "$conf"
chown redis:redis "$conf" /data
exec setpriv --reuid=redis --regid=redis --init-groups -- redis-server "$conf" "$@"
