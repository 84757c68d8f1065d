#!/usr/bin/env bash
# Bring up, on one machine and on loopback only: a PostgreSQL (Debian's binaries), two facebank
# replicas sharing it, and nginx in front of them.
#   deploy/scale-out/up.sh STATE_DIR        (deploy/scale-out/down.sh STATE_DIR stops it all)
# Writes STATE_DIR/endpoints.env: LB_URL, REPLICA_A_URL, REPLICA_B_URL, DATABASE_URL and the
# replicas' pids. Needs `make install` and `make models`, and Debian's postgresql and nginx
# packages (`apt-get install postgresql nginx`); every one is checked before anything starts,
# and whatever was started is stopped again if a later step fails. Set FACEBANK_DATABASE_URL to
# use an existing PostgreSQL instead, NGINX to name another nginx binary, and LB_PORT,
# REPLICA_A_PORT, REPLICA_B_PORT, PG_PORT to choose the ports (default: free ones). Everything it
# keeps is inside STATE_DIR, the PostgreSQL cluster too (STATE_DIR/postgres: as root, STATE_DIR
# and the folders above it must let the postgres account through, since PostgreSQL refuses to run
# as root). Run again on the same STATE_DIR after down.sh, it starts on the same database: the
# data is kept until `down.sh STATE_DIR --delete-data`.
set -euo pipefail
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}  # Debian puts it in sbin
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
state=$(mkdir -p "$1" && cd "$1" && pwd)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_postgres() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
recorded() { grep "^$1=" "$state/kept.env" 2>/dev/null | cut -d= -f2- || true; }

check_prerequisites() {
  local missing=()
  [[ -x $nginx ]] || missing+=("nginx ($nginx): apt-get install nginx")
  [[ -x $root/.venv/bin/facebank ]] || missing+=("$root/.venv/bin/facebank: make install")
  command -v python3 >/dev/null || missing+=("python3")
  if [[ -z ${FACEBANK_DATABASE_URL:-} ]] && ! compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
    missing+=("PostgreSQL's server (/usr/lib/postgresql/*/bin): apt-get install postgresql")
  elif [[ -z ${FACEBANK_DATABASE_URL:-} && $(id -u) == 0 ]] && ! runuser -u postgres -- test -x "$state"; then
    missing+=("a STATE_DIR the postgres account can enter (PostgreSQL refuses root; $state is closed to it): use one under /srv or /var/tmp, or chmod o+x it and the folders above")
  fi
  if ((${#missing[@]})); then
    printf 'missing, nothing was started:\n' >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
  fi
}

start_postgres() {  # a new cluster, or the one a previous run kept in this state directory
  local bindir port pg
  bindir=$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -1)")
  port=${PG_PORT:-$(free_port)}
  pg=$state/postgres
  if [[ ! -d $pg/data ]]; then
    mkdir -p "$pg"
    [[ $(id -u) == 0 ]] && chown postgres: "$pg"
    as_postgres "$bindir/initdb" -D "$pg/data" -U facebank --auth=trust -E UTF8 >/dev/null
    printf 'PG_DIR=%s\n' "$pg" >"$state/kept.env"
  fi
  printf 'PG_BINDIR=%s\nPG_DIR=%s\n' "$bindir" "$pg" >>"$state/endpoints.env"
  # TCP on loopback only: a socket path under a deep STATE_DIR can pass the kernel's limit.
  as_postgres "$bindir/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" start >/dev/null
  echo "postgresql+psycopg://facebank@127.0.0.1:$port/postgres"
}

start_replica() {  # name port
  FACEBANK_PORT=$2 FACEBANK_DATA_DIR="$state/$1" FACEBANK_DATABASE_URL=$database \
    FACEBANK_TOKEN_SECRET=$secret setsid "$root/.venv/bin/facebank" serve \
    >"$state/$1.log" 2>&1 &
  echo "$!" >"$state/$1.pid"
}

wait_ready() {  # url [pid]: fails at once if that process has exited
  for _ in $(seq 1 240); do
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
      "$1/readyz" 2>/dev/null && return 0
    if [[ -n ${2:-} ]] && ! kill -0 "$2" 2>/dev/null; then
      echo "exited before it was ready: $1 (its log: $state/*.log)" >&2
      return 1
    fi
    sleep 0.5
  done
  echo "not ready: $1" >&2
  return 1
}

undo() {
  echo "a step failed: stopping what was started (the data is kept)" >&2
  "$here/down.sh" "$state" >/dev/null 2>&1 || true
}

check_prerequisites
: >"$state/endpoints.env"
trap undo ERR
database=${FACEBANK_DATABASE_URL:-$(start_postgres)}
# Shared, so that NextTokens travel between replicas; kept, so that they survive a restart.
secret=$(recorded TOKEN_SECRET)
if [[ -z $secret ]]; then
  secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  printf 'TOKEN_SECRET=%s\n' "$secret" >>"$state/kept.env"
fi
chmod 600 "$state/kept.env"
port_a=${REPLICA_A_PORT:-$(free_port)} port_b=${REPLICA_B_PORT:-$(free_port)}
lb=${LB_PORT:-$(free_port)}
# One replica first: it creates the schema; the second then starts on a migrated database.
start_replica replica-a "$port_a"
wait_ready "http://127.0.0.1:$port_a" "$(cat "$state/replica-a.pid")"
start_replica replica-b "$port_b"
wait_ready "http://127.0.0.1:$port_b" "$(cat "$state/replica-b.pid")"
sed -e "s|@STATE@|$state|g" -e "s|@LB_PORT@|$lb|g" -e "s|@REPLICA_A@|$port_a|g" \
  -e "s|@REPLICA_B@|$port_b|g" "$here/nginx.conf.template" >"$state/nginx.conf"
"$nginx" -p "$state" -c "$state/nginx.conf"
wait_ready "http://127.0.0.1:$lb"
trap - ERR
cat >>"$state/endpoints.env" <<ENV
DATABASE_URL=$database
LB_URL=http://127.0.0.1:$lb
REPLICA_A_URL=http://127.0.0.1:$port_a
REPLICA_B_URL=http://127.0.0.1:$port_b
REPLICA_A_PID=$(cat "$state/replica-a.pid")
REPLICA_B_PID=$(cat "$state/replica-b.pid")
ENV
cat "$state/endpoints.env"
