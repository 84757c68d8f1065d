#!/usr/bin/env bash
# Bring up, on one machine and on loopback only: a PostgreSQL (Debian's binaries), two facebank
# replicas sharing it, and nginx in front of them.
#   deploy/scale-out/up.sh STATE_DIR        (deploy/scale-out/down.sh STATE_DIR stops it all)
# Writes STATE_DIR/endpoints.env: LB_URL, REPLICA_A_URL, REPLICA_B_URL, DATABASE_URL and the
# replicas' pids. Needs `make install` (and weights: `make models`) and Debian's postgresql and
# nginx packages. Set FACEBANK_DATABASE_URL to use an existing PostgreSQL instead.
set -euo pipefail
nginx=$(command -v nginx || echo /usr/sbin/nginx)  # Debian puts it in sbin
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
state=$(mkdir -p "$1" && cd "$1" && pwd)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_postgres() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start_postgres() {
  local bindir port
  bindir=$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -1)")
  port=$(free_port)
  # Its own directory, which the postgres account can reach (PostgreSQL refuses to run as root).
  pg=$(mktemp -d /tmp/facebank-pg-XXXXXX)
  [[ $(id -u) == 0 ]] && chown postgres: "$pg"
  as_postgres "$bindir/initdb" -D "$pg/data" -U facebank --auth=trust -E UTF8 >/dev/null
  as_postgres "$bindir/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w \
    -o "-p $port -k $pg -c listen_addresses=127.0.0.1" start >/dev/null
  printf 'PG_BINDIR=%s\nPG_DIR=%s\n' "$bindir" "$pg" >>"$state/endpoints.env"
  echo "postgresql+psycopg://facebank@127.0.0.1:$port/postgres"
}

start_replica() {  # name port
  FACEBANK_PORT=$2 FACEBANK_DATA_DIR="$state/$1" FACEBANK_DATABASE_URL=$database \
    FACEBANK_TOKEN_SECRET=$secret setsid "$root/.venv/bin/facebank" serve \
    >"$state/$1.log" 2>&1 &
  echo "$!" >"$state/$1.pid"
}

wait_ready() {  # url
  for _ in $(seq 1 240); do
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
      "$1/readyz" 2>/dev/null && return 0
    sleep 0.5
  done
  echo "not ready: $1" >&2
  return 1
}

: >"$state/endpoints.env"
database=${FACEBANK_DATABASE_URL:-$(start_postgres)}
secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')  # shared: NextTokens travel
port_a=$(free_port) port_b=$(free_port) lb=$(free_port)
# One replica first: it creates the schema; the second then starts on a migrated database.
start_replica replica-a "$port_a"
wait_ready "http://127.0.0.1:$port_a"
start_replica replica-b "$port_b"
wait_ready "http://127.0.0.1:$port_b"
sed -e "s|@STATE@|$state|g" -e "s|@LB_PORT@|$lb|g" -e "s|@REPLICA_A@|$port_a|g" \
  -e "s|@REPLICA_B@|$port_b|g" "$here/nginx.conf.template" >"$state/nginx.conf"
"$nginx" -p "$state" -c "$state/nginx.conf"
wait_ready "http://127.0.0.1:$lb"
cat >>"$state/endpoints.env" <<ENV
DATABASE_URL=$database
LB_URL=http://127.0.0.1:$lb
REPLICA_A_URL=http://127.0.0.1:$port_a
REPLICA_B_URL=http://127.0.0.1:$port_b
REPLICA_A_PID=$(cat "$state/replica-a.pid")
REPLICA_B_PID=$(cat "$state/replica-b.pid")
ENV
cat "$state/endpoints.env"
