#!/bin/bash
# Starts PostgreSQL with database `thinline`, owned by role `thinline`,
# whose password is POSTGRES_PASSWORD (from an env file readable only by
# the operator; it is never on a command line). The superuser `postgres`
# has no password: only this container's own `postgres` user reaches it,
# over the local socket. The data directory is made on the first start and
# reused afterwards.
set -euo pipefail
bin=$(echo /usr/lib/postgresql/*/bin)
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set on the first start}"
  "$bin/initdb" --pgdata="$PGDATA" --username=postgres --auth-local=peer \
    --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  echo "host thinline thinline 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  quoted=${POSTGRES_PASSWORD//\'/\'\'}
  printf "CREATE ROLE thinline LOGIN PASSWORD '%s'\nCREATE DATABASE thinline OWNER thinline\n" \
    "$quoted" | "$bin/postgres" --single -D "$PGDATA" postgres >/dev/null
fi
unset POSTGRES_PASSWORD
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp \
  -c max_connections=200
