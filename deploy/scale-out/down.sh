#!/usr/bin/env bash
# Stop what up.sh started in STATE_DIR: nginx, the replicas, the PostgreSQL it made; returns
# once they have exited. The database is kept for the next up.sh on STATE_DIR unless
#   deploy/scale-out/down.sh STATE_DIR --delete-data
set -uo pipefail
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}  # Debian puts it in sbin
state=$1
delete=${2:-}

wait_gone() {  # pid: SIGTERM given; SIGKILL after 60 s (the replicas snapshot their indexes)
  for _ in $(seq 1 120); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.5
  done
  kill -KILL "$1" 2>/dev/null
}

[[ -f "$state/nginx.pid" ]] && "$nginx" -p "$state" -c "$state/nginx.conf" -s stop 2>/dev/null
for name in replica-a replica-b; do
  if [[ -f "$state/$name.pid" ]]; then
    pid=$(cat "$state/$name.pid")
    kill "$pid" 2>/dev/null && wait_gone "$pid"
    rm -f "$state/$name.pid"
  fi
done
bindir=$(grep '^PG_BINDIR=' "$state/endpoints.env" 2>/dev/null | cut -d= -f2)
pg=$(grep '^PG_DIR=' "$state/endpoints.env" 2>/dev/null | cut -d= -f2)
if [[ -n $bindir && -f "$pg/data/postmaster.pid" ]]; then
  if [[ $(id -u) == 0 ]]; then
    runuser -u postgres -- "$bindir/pg_ctl" -D "$pg/data" -m fast -w stop >/dev/null
  else
    "$bindir/pg_ctl" -D "$pg/data" -m fast -w stop >/dev/null
  fi
fi
if [[ $delete == --delete-data ]]; then
  [[ -n $pg ]] && rm -rf "$pg"
  rm -rf "$state/replica-a" "$state/replica-b" "$state/kept.env"
  echo "stopped; the database and the replicas' data are deleted"
else
  echo "stopped; the database is kept${pg:+ in $pg} for the next up.sh on $state (--delete-data deletes it)"
fi
exit 0
