#!/usr/bin/env bash
# Stop what up.sh started in STATE_DIR: nginx, the replicas, the PostgreSQL it made.
set -uo pipefail
nginx=$(command -v nginx || echo /usr/sbin/nginx)  # Debian puts it in sbin
state=$1
[[ -f "$state/nginx.pid" ]] && "$nginx" -p "$state" -c "$state/nginx.conf" -s stop 2>/dev/null
for name in replica-a replica-b; do
  [[ -f "$state/$name.pid" ]] && kill "$(cat "$state/$name.pid")" 2>/dev/null
done
bindir=$(grep '^PG_BINDIR=' "$state/endpoints.env" 2>/dev/null | cut -d= -f2)
pg=$(grep '^PG_DIR=' "$state/endpoints.env" 2>/dev/null | cut -d= -f2)
if [[ -n $bindir && -f "$pg/data/postmaster.pid" ]]; then
  if [[ $(id -u) == 0 ]]; then
    runuser -u postgres -- "$bindir/pg_ctl" -D "$pg/data" -m fast stop >/dev/null
  else
    "$bindir/pg_ctl" -D "$pg/data" -m fast stop >/dev/null
  fi
fi
[[ -n $pg ]] && rm -rf "$pg"
exit 0
